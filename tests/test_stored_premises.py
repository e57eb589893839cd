"""A stored fleet's premises shapes (issue 30, item 3): stored by `replaceFleet` and `PUT /fleet`
with the groups, read back by `myFleet` by their owner, and planned in its plan exactly as
`fleetPlan` plans the same premises; a shape that cannot be stored stores nothing."""

from __future__ import annotations

from tests.test_fleet_premises import BRIGHTWATER, KESTREL
from tests.test_fleet_upload import put, supplier

PLAN = """entries { index firmwareVersion meterCount problem device { id } }
  summary { meters upToDate upgradable blocked metersByStepCount { steps meters }
    blockedByReason { reason meters }
    premises premisesBlockedByPrerequisites metersBlockedByPrerequisites }
  premises { index premisesCount problem plan { steps { order device { id } carriedOutBy
    waitsFor } blocked { device { id } reason } notUpdatableOverTheAir { id } } }"""
MY_FLEET = f"""{{ myFleet {{ meters groups {{ device {{ id }} firmwareVersion meterCount }}
  premises {{ premisesCount devices {{ device {{ id }} firmwareVersion }} }}
  plan {{ {PLAN} }} }} }}"""
REPLACE = """mutation($input: ReplaceFleetInput!) { replaceFleet(input: $input) { __typename
  ... on ReplaceFleetSuccess { fleet { meters premises { premisesCount
    devices { device { id } firmwareVersion } } plan { summary { meters premises } } } }
  ... on InvalidFleetError { code message field problems { index problem }
    premisesProblems { index problem } }
  ... on MutationError { code message field } } }"""
FLEET_PLAN = f"""query($items: [FleetItemInput!]!, $premises: [FleetPremisesInput!]) {{
  fleetPlan(items: $items, premises: $premises) {{ {PLAN} }} }}"""
ITEMS = [
    {"deviceId": "device:1", "firmwareVersion": "7F000000", "meterCount": 10},
    {"deviceId": "device:2", "firmwareVersion": "7F010000", "meterCount": 3},
]
PREMISES = [
    {"devices": KESTREL, "premisesCount": 1000},
    {"devices": BRIGHTWATER, "premisesCount": 200},
]
# KESTREL as stored: every device by id (its third was named by identifiers), versions upper case.
KESTREL_STORED = [
    {"device": {"id": "device:9"}, "firmwareVersion": "7F080002"},
    {"device": {"id": "device:11"}, "firmwareVersion": "640A0302"},
    {"device": {"id": "device:10"}, "firmwareVersion": "6D090202"},
]
BRIGHTWATER_STORED = [
    {"device": {"id": d["deviceId"]}, "firmwareVersion": d["firmwareVersion"]} for d in BRIGHTWATER
]


async def replace(
    isolated, items: list[dict], premises: list[dict] | None = None, **extra: str
) -> dict:
    variables = {"input": {"items": items, "premises": premises, **extra}}
    body = await isolated.gql("LARGE_SUPPLIER", REPLACE, variables, party_id="P-NORTH")
    assert "errors" not in body, body
    return body["data"]["replaceFleet"]


async def my_fleet(isolated, party: str = "P-NORTH") -> dict:
    body = await isolated.gql("LARGE_SUPPLIER", MY_FLEET, party_id=party)
    assert "errors" not in body, body
    return body["data"]["myFleet"]


async def test_premises_are_stored_and_planned_as_fleet_plan_plans_them(isolated) -> None:
    result = await replace(isolated, ITEMS, PREMISES)
    assert result["__typename"] == "ReplaceFleetSuccess", result
    stored = [
        {"premisesCount": 1000, "devices": KESTREL_STORED},
        {"premisesCount": 200, "devices": BRIGHTWATER_STORED},
    ]
    assert result["fleet"]["premises"] == stored
    assert result["fleet"]["plan"]["summary"] == {
        "meters": 13 + 3 * 1000 + 3 * 200,
        "premises": 1200,
    }
    fleet = await my_fleet(isolated)
    assert fleet["meters"] == 13  # the groups' meters; the premises' are in the plan's summary
    assert fleet["premises"] == stored
    planned = await isolated.gql(
        "LARGE_SUPPLIER", FLEET_PLAN, {"items": ITEMS, "premises": PREMISES}
    )
    assert "errors" not in planned, planned
    assert fleet["plan"] == planned["data"]["fleetPlan"]  # entries, summary and premises alike
    summary = fleet["plan"]["summary"]
    assert (summary["premises"], summary["premisesBlockedByPrerequisites"]) == (1200, 200)
    assert summary["metersBlockedByPrerequisites"] == 200
    # Kestrel's hub first, by the DCC; its meter and PPMID after it.
    steps = fleet["plan"]["premises"][0]["plan"]["steps"]
    assert [(s["device"]["id"], s["carriedOutBy"]) for s in steps] == [
        ("device:9", "DCC"),
        ("device:9", "DCC"),
        ("device:11", "SUPPLIER"),
        ("device:10", "SUPPLIER"),
    ]


async def test_the_same_shape_twice_is_one_and_a_replacement_is_whole(isolated) -> None:
    same = [{"devices": KESTREL, "premisesCount": 7}, {"devices": KESTREL}]
    fleet = (await replace(isolated, [], same))["fleet"]
    assert fleet["premises"] == [{"premisesCount": 8, "devices": KESTREL_STORED}]
    assert fleet["plan"]["summary"] == {"meters": 3 * 8, "premises": 8}
    await replace(isolated, ITEMS)  # no premises: the stored ones go with the old groups
    fleet = await my_fleet(isolated)
    assert fleet["premises"] == [] and fleet["plan"]["premises"] == []
    assert fleet["plan"]["summary"]["premises"] == 0
    assert await isolated.scalar("SELECT count(*) FROM fleet_premises") == 0


async def test_a_premises_that_cannot_be_stored_stores_nothing(isolated) -> None:
    await replace(isolated, ITEMS, PREMISES)
    bad = [
        {"devices": KESTREL},
        {"devices": [KESTREL[0], {"deviceId": "device:999", "firmwareVersion": "7F000000"}]},
        {"devices": [], "premisesCount": 2},
        {"devices": KESTREL, "premisesCount": 0},
        {"devices": [{"deviceId": "device:9", "firmwareVersion": "DEADBEEF"}]},
    ]
    result = await replace(isolated, ITEMS, bad)
    assert result["__typename"] == "InvalidFleetError", result
    assert (result["code"], result["field"], result["problems"]) == ("VALIDATION", "premises", [])
    assert result["message"] == "4 premises of the fleet cannot be stored; nothing was stored."
    assert result["premisesProblems"] == [
        {"index": 1, "problem": "device 1: no device has this deviceId"},
        {"index": 2, "problem": "a premises needs at least one device"},
        {"index": 3, "problem": "premisesCount must be at least 1"},
        {"index": 4, "problem": "device 0: firmwareVersion is not on the CPL for this device"},
    ]
    bad_item = [{"deviceId": "device:1", "firmwareVersion": "DEADBEEF"}]
    result = await replace(isolated, bad_item, bad[2:3])
    assert (result["field"], len(result["problems"]), len(result["premisesProblems"])) == (
        "items",
        1,
        1,
    )
    assert result["message"].startswith("2 items and premises of the fleet cannot be stored")
    fleet = await my_fleet(isolated)
    assert [p["premisesCount"] for p in fleet["premises"]] == [1000, 200]  # untouched


async def test_a_retry_answers_the_stored_premises_and_other_premises_conflict(isolated) -> None:
    first = await replace(isolated, ITEMS, PREMISES, idempotencyKey="shapes-1")
    assert first["__typename"] == "ReplaceFleetSuccess", first
    assert await replace(isolated, ITEMS, PREMISES, idempotencyKey="shapes-1") == first
    other = await replace(isolated, ITEMS, PREMISES[:1], idempotencyKey="shapes-1")
    assert (other["__typename"], other["code"]) == ("ConflictError", "CONFLICT")
    assert await isolated.scalar("SELECT count(*) FROM fleet_premises") == 2


async def test_only_the_owner_reads_its_premises(isolated) -> None:
    await replace(isolated, [], PREMISES)
    assert await my_fleet(isolated, party="P-SOUTH") is None
    body = await isolated.gql("SSC", "{ myFleet { premises { premisesCount } } }")
    assert body["data"] == {"myFleet": None}
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


FILE = (
    "device_id,firmware_version,meter_count,premises,premises_count\n"
    "device:1,7F000000,10,,\n"
    "device:2,7F010000,3,,\n"
    ',,,"device:9=7F080002; device:11=640A0302; 0E3F/1999/0100=6D090202",1000\n'
    ',,,"device:3=76020100;device:8=64070301;device:7=6D060201",200\n'
)


async def test_put_fleet_stores_a_premises_column(isolated) -> None:
    response = await put(isolated.client, FILE, supplier(isolated.token))
    assert response.status_code == 200, response.text
    answer = response.json()
    fleet = await my_fleet(isolated)
    summary = fleet["plan"]["summary"]
    assert {k: answer[k] for k in ("rows", "groups", "premisesShapes", "premises")} == {
        "rows": 4,
        "groups": 2,
        "premisesShapes": 2,
        "premises": 1200,
    }
    assert {k: answer[k] for k in ("meters", "upToDate", "upgradable", "blocked")} == {
        k: summary[k] for k in ("meters", "upToDate", "upgradable", "blocked")
    }
    assert fleet["premises"] == [
        {"premisesCount": 1000, "devices": KESTREL_STORED},
        {"premisesCount": 200, "devices": BRIGHTWATER_STORED},
    ]
    planned = await isolated.gql(
        "LARGE_SUPPLIER", FLEET_PLAN, {"items": ITEMS, "premises": PREMISES}
    )
    assert fleet["plan"] == planned["data"]["fleetPlan"]


async def test_put_fleet_names_a_premises_rows_problems_and_stores_nothing(isolated) -> None:
    assert (await put(isolated.client, FILE, supplier(isolated.token))).status_code == 200
    bad = (
        "device_id,firmware_version,meter_count,premises,premises_count\n"
        "device:1,7F000000,10,,\n"
        ',,,"device:9=7F080002; device:999=640A0302",5\n'
        ",,,device:9=7F080002,0\n"
        ",,,device:9,3\n"
    )
    response = await put(isolated.client, bad, supplier(isolated.token))
    assert response.status_code == 400, response.text
    problems = response.json()["errors"][0]["extensions"]["problems"]
    assert problems[:2] == [
        {"row": 3, "problem": "device 1: no device has this device_id"},
        {"row": 4, "problem": "premises_count must be at least 1"},
    ]
    assert problems[2]["row"] == 5 and problems[2]["problem"].startswith("premises must list")
    fleet = await my_fleet(isolated)
    assert [p["premisesCount"] for p in fleet["premises"]] == [1000, 200]  # untouched
