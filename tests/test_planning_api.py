"""Upgrade planning through the API: the semantics on the demo CPL, fleet plans, and graphs
kept across requests with the snapshot of the data revision."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from sqlalchemy import event

from bench.generate import load_synthetic_cpl
from resolvers.planning.fleet_plan import MAX_FLEET_ITEMS
from resolvers.planning.slices import SLICE
from server.app import create_app, create_services
from tests.harness import HEAVY, asgi_client, fresh_database

PATH = """query($d: ID!, $f: String!, $t: String) { upgradePath(deviceId: $d, fromVersion: $f,
  toVersion: $t) { reachable reason device { id } from { version status } target { version }
  steps { id status from { version } to { version status } } } }"""
FLEET = """query($items: [FleetItemInput!]!) { fleetPlan(items: $items) {
  entries { index firmwareVersion meterCount problem device { id }
    plan { reachable reason steps { id } } }
  summary { meters upToDate upgradable blocked metersByStepCount { steps meters } } } }"""


async def plan(gql, device: str, start: str, target: str | None = None) -> dict:
    body = await gql("SMALL_SUPPLIER", PATH, {"d": device, "f": start, "t": target})
    assert "errors" not in body, body
    return body["data"]["upgradePath"]


def versions(result: dict) -> list[str]:
    return [result["from"]["version"], *(s["to"]["version"] for s in result["steps"])]


async def test_fewest_steps_and_the_documented_tie_break(gql):
    # device:1 has two routes of two steps to its latest; the lower pathway ids win.
    result = await plan(gql, "device:1", "7f000000")
    assert result["reachable"] is True and result["reason"] is None
    assert result["target"] == {"version": "64000300"}
    assert [s["id"] for s in result["steps"]] == ["pathway:1", "pathway:2"]
    assert versions(result) == ["7F000000", "76000100", "64000300"]
    assert all(s["status"] == "PUBLISHED" for s in result["steps"])


async def test_withdrawn_firmware_is_never_stepped_onto_but_may_be_left(gql):
    result = await plan(gql, "device:2", "7F010000")
    assert result["reachable"] and "76010100" not in versions(result)[1:]
    assert all(s["to"]["status"] == "ACTIVE" for s in result["steps"])
    assert versions(result) == ["7F010000", "6D010200", "64010300", "5B010400"]
    leaving = await plan(gql, "device:2", "76010100")
    assert leaving["from"]["status"] == "WITHDRAWN" and leaving["reachable"]
    assert versions(leaving) == ["76010100", "6D010200", "64010300", "5B010400"]


async def test_withdrawn_pathways_are_not_edges(gql):
    result = await plan(gql, "device:3", "7F020000")
    assert versions(result) == ["7F020000", "76020100", "6D020200"]


@pytest.mark.parametrize(
    ("device", "start", "target", "reason"),
    [
        ("device:4", "7F030000", None, "NO_PATHWAY"),
        ("device:1", "DEADBEEF", None, "UNKNOWN_FROM_VERSION"),
        ("device:1", "7F000000", "DEADBEEF", "UNKNOWN_TARGET_VERSION"),
        ("device:2", "7F010000", "76010100", "TARGET_NOT_ACTIVE"),
        ("device:1", "64000300", "7F000000", "NO_PATHWAY"),
    ],
)
async def test_blocked_plans_say_why(gql, device, start, target, reason):
    result = await plan(gql, device, start, target)
    assert (result["reachable"], result["reason"], result["steps"]) == (False, reason, [])


async def test_already_at_the_target(gql):
    result = await plan(gql, "device:1", "64000300")
    assert (result["reachable"], result["reason"], result["steps"]) == (True, None, [])


async def test_chosen_target(gql):
    result = await plan(gql, "device:1", "7F000000", "6d000200")
    assert versions(result) == ["7F000000", "6D000200"]


@pytest.mark.parametrize("device", ["device:999", "firmware:1", "junk"])
async def test_unknown_device_is_null_with_not_found(gql, device):
    body = await gql("SMALL_SUPPLIER", PATH, {"d": device, "f": "7F000000"})
    assert body["data"] == {"upgradePath": None}
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_latest_firmware_is_the_planners_default_target(gql):
    devices = await gql(
        "NETWORK_PARTY",
        "{ devices { nodes { id latestFirmware { version } firmware { version } } } }",
    )
    nodes = devices["data"]["devices"]["nodes"]
    assert len(nodes) == 12
    for device in nodes:
        result = await plan(gql, device["id"], device["firmware"][0]["version"])
        assert result["target"] == device["latestFirmware"]


async def test_fleet_plan_entries_problems_and_summary(gql):
    items = [
        {"deviceId": "device:1", "firmwareVersion": "7F000000", "meterCount": 1000},
        {"manufacturerIdentifier": "0a1b", "modelIdentifier": "1000", "hardwareVersion": "0100",
         "firmwareVersion": "7f000000", "meterCount": 10},
        {"deviceId": "device:1", "firmwareVersion": "64000300", "meterCount": 7},
        {"deviceId": "device:4", "firmwareVersion": "7F030000", "meterCount": 20},
        {"deviceId": "device:999", "firmwareVersion": "7F000000", "meterCount": 3},
        {"deviceId": "device:1", "firmwareVersion": "DEADBEEF", "meterCount": 4},
        {"deviceId": "device:1", "firmwareVersion": "xyz", "meterCount": 5},
        {"firmwareVersion": "7F000000", "meterCount": 6},
        {"deviceId": "device:1", "manufacturerIdentifier": "0A1B", "modelIdentifier": "1000",
         "hardwareVersion": "0100", "firmwareVersion": "7F000000", "meterCount": 8},
        {"manufacturerIdentifier": "0E3F", "modelIdentifier": "FFFF", "hardwareVersion": "0100",
         "firmwareVersion": "7F000000"},
        {"deviceId": "device:1", "firmwareVersion": "7F000000", "meterCount": 0},
    ]  # fmt: skip
    body = await gql("LARGE_SUPPLIER", FLEET, {"items": items})
    assert "errors" not in body
    entries = body["data"]["fleetPlan"]["entries"]
    assert [e["index"] for e in entries] == list(range(len(items)))
    assert (
        entries[0]["plan"]
        == entries[1]["plan"]
        == {
            "reachable": True,
            "reason": None,
            "steps": [{"id": "pathway:1"}, {"id": "pathway:2"}],
        }
    )
    assert (
        entries[1]["device"] == {"id": "device:1"} and entries[1]["firmwareVersion"] == "7F000000"
    )
    assert entries[2]["plan"]["steps"] == [] and entries[2]["plan"]["reachable"]
    assert entries[3]["plan"]["reason"] == "NO_PATHWAY"
    for index in (4, 5, 6, 7, 8, 9, 10):
        assert entries[index]["plan"] is None and entries[index]["problem"], index
    assert entries[4]["device"] is None
    assert body["data"]["fleetPlan"]["summary"] == {
        "meters": 1000 + 10 + 7 + 20 + 3 + 4 + 5 + 6 + 8 + 1,
        "upToDate": 7,
        "upgradable": 1010,
        "blocked": 20 + 3 + 4 + 5 + 6 + 8 + 1,
        "metersByStepCount": [{"steps": 0, "meters": 7}, {"steps": 2, "meters": 1010}],
    }


async def test_fleet_plan_refuses_more_than_50000_items(client, token):
    items = [{"deviceId": "device:1", "firmwareVersion": "7F000000"}] * 50_001
    response = await client.post(
        "/graphql",
        json={"query": FLEET, "variables": {"items": items}},
        headers={"Authorization": f"Bearer {token('SMALL_SUPPLIER')}"},
    )
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "50,000" in body["errors"][0]["message"]


async def test_fleet_plan_refuses_meters_beyond_an_int(gql):
    items = [{"deviceId": "device:1", "firmwareVersion": "7F000000", "meterCount": 2**31 - 1}] * 2
    body = await gql("SMALL_SUPPLIER", FLEET, {"items": items})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def counting(engine) -> list[str]:
    statements: list[str] = []
    event.listen(
        engine.sync_engine,
        "before_cursor_execute",
        lambda conn, cursor, sql, *args: statements.append(sql),
    )
    return statements


def graph_loads(statements: list[str]) -> int:
    return sum(1 for s in statements if "upgrade_pathway" in s and "FROM" in s.upper())


async def test_graphs_are_cached_by_data_revision(isolated, monkeypatch):
    monkeypatch.setattr(isolated.services.responses, "max_bytes", 0)  # the snapshot, alone
    statements = counting(isolated.services.engine)
    variables = {"d": "device:5", "f": "7F040001"}
    first = await isolated.gql("SSC", PATH, variables)
    before = len(first["data"]["upgradePath"]["steps"])
    statements.clear()
    await isolated.gql("SSC", PATH, variables)
    assert graph_loads(statements) == 0  # the graph and the steps from the snapshot
    shortcut = """mutation { publishUpgradePathway(input: { deviceId: "device:5",
        fromVersion: "7F040001", toVersion: "5B040401" }) { __typename } }"""
    assert (await isolated.gql("SECAS", shortcut))["data"]["publishUpgradePathway"] == {
        "__typename": "PublishUpgradePathwaySuccess"
    }
    after = await isolated.gql("SSC", PATH, variables)
    assert before > 1 and len(after["data"]["upgradePath"]["steps"]) == 1


FLEET_SUMMARY = """query($items: [FleetItemInput!]!) { fleetPlan(items: $items) {
  entries { index problem plan { reachable reason } } summary { meters blocked } } }"""


async def test_a_fleet_plan_builds_each_graph_once_whatever_its_size(settings, token, tmp_path):
    async with fresh_database(tmp_path) as url:
        cpl = await load_synthetic_cpl(
            url, devices=1000, firmware_per_device=5, pathways_per_device=6
        )
        # Count execution: no response cache, and the revision read once (by the first query).
        own = replace(
            settings, database_url=url, response_cache_bytes=0, revision_max_age_seconds=3600
        )
        services = create_services(own)
        statements = counting(services.engine)
        headers = {"Authorization": f"Bearer {token('LARGE_SUPPLIER')}"}
        counts = []
        async with asgi_client(create_app(own, services)) as client:
            # The revision's snapshot of the CPL is loaded once, by the first query.
            await client.post(
                "/graphql", json={"query": "{ manufacturers { id } }"}, headers=headers
            )
            for devices, size in ((10, 100), (1000, 10_000)):
                snapshot = await services.snapshots.current()
                snapshot.graphs.clear()  # no graph built yet, each time
                items = [
                    {
                        "deviceId": f"device:{d.device_id}",
                        "firmwareVersion": d.firmware_versions[i % len(d.firmware_versions)],
                        "meterCount": 3,
                    }
                    for i in range(size)
                    for d in [cpl.devices[i % devices]]
                ]
                statements.clear()
                response = await client.post(
                    "/graphql",
                    json={"query": FLEET_SUMMARY, "variables": {"items": items}},
                    headers=headers,
                )
                body = response.json()
                assert "errors" not in body
                assert body["data"]["fleetPlan"]["summary"]["meters"] == 3 * size
                entries = body["data"]["fleetPlan"]["entries"]
                assert len(entries) == size and all(e["problem"] is None for e in entries)
                counts.append(len(statements))
                assert len(snapshot.graphs) == devices  # each device's graph built once
        await services.engine.dispose()
    # No statement at either size: the first query read the revision and the snapshot, and the
    # graphs are built from the snapshot in memory.
    assert counts == [0, 0]


async def test_an_odd_device_id_in_a_fleet_is_a_problem_not_a_failure(gql):
    items = [
        {"deviceId": "device:²", "firmwareVersion": "7F000000"},
        {"deviceId": "device:99999999999", "firmwareVersion": "7F000000"},
        {"deviceId": "device:1", "firmwareVersion": "7F000000"},
    ]
    body = await gql("SMALL_SUPPLIER", FLEET, {"items": items})
    entries = body["data"]["fleetPlan"]["entries"]
    assert entries[0]["problem"] and entries[1]["problem"] and entries[2]["plan"]["reachable"]


async def test_fleet_relations_resolve_the_same_through_fragments(gql):
    items = [{"deviceId": "device:1", "firmwareVersion": "7F000000"},
             {"deviceId": "device:2", "firmwareVersion": "76010100"}]  # fmt: skip
    direct = await gql(
        "SMALL_SUPPLIER",
        """query($items: [FleetItemInput!]!) { fleetPlan(items: $items) { entries {
            device { id } plan { from { version } target { version } steps { id } } } } }""",
        {"items": items},
    )
    spread = await gql(
        "SMALL_SUPPLIER",
        """query($items: [FleetItemInput!]!) { fleetPlan(items: $items) { ...F } }
        fragment F on FleetPlan { entries { ... on FleetPlanEntry { device { id }
            plan { ...P } } } }
        fragment P on UpgradePlan { from { version } target { version } steps { id } }""",
        {"items": items},
    )
    assert direct == spread and "errors" not in direct
    assert direct["data"]["fleetPlan"]["entries"][1]["plan"]["from"] == {"version": "76010100"}


async def test_a_full_fleet_plan_leaves_the_event_loop_to_others(settings, token, tmp_path):
    """Row 5 of issue 24: a fleet plan of the documented size is seconds of CPU. It gives the
    loop a turn every `SLICE` items of each pass, so a trivial query sent after it is answered
    before it, and a task counting loop turns meanwhile counts a turn per slice. Five slices by
    default; the documented 50,000 items with `CPL_TEST_HEAVY=1`."""
    size = MAX_FLEET_ITEMS if HEAVY else 5 * SLICE
    async with fresh_database(tmp_path) as url:
        cpl = await load_synthetic_cpl(
            url, devices=100, firmware_per_device=5, pathways_per_device=6
        )
        own = replace(settings, database_url=url, response_cache_bytes=0)
        services = create_services(own)
        headers = {"Authorization": f"Bearer {token('LARGE_SUPPLIER')}"}
        items = [
            {"deviceId": f"device:{d.device_id}", "firmwareVersion": d.firmware_versions[i % 5]}
            for i in range(size)
            for d in [cpl.devices[i % len(cpl.devices)]]
        ]
        fleet = {"query": FLEET_SUMMARY, "variables": {"items": items}}
        trivial = {"query": "{ viewer { partyId } }"}
        async with asgi_client(create_app(own, services)) as client:
            await client.post("/graphql", json=fleet, headers=headers)  # snapshot and graphs
            turns, planning = 0, True

            async def count_turns() -> None:
                nonlocal turns
                while planning:
                    turns += 1
                    await asyncio.sleep(0)

            counter = asyncio.create_task(count_turns())
            plan = asyncio.create_task(client.post("/graphql", json=fleet, headers=headers))
            quick = asyncio.create_task(client.post("/graphql", json=trivial, headers=headers))
            done, _ = await asyncio.wait({plan, quick}, return_when=asyncio.FIRST_COMPLETED)
            assert done == {quick} and quick.result().json()["data"]["viewer"]["partyId"]
            answer = (await plan).json()
            planning = False
            await counter
        await services.engine.dispose()
    assert answer["data"]["fleetPlan"]["summary"]["meters"] == size
    # Six passes over the items take a turn every SLICE items: items converted, items made,
    # checked, planned, plans viewed, entries made.
    assert turns >= 6 * (size // SLICE)
