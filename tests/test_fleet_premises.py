"""Fleets by premises: premises shapes with a count, planned with the premises planner, in
`fleetPlan` and in the fleet file; the summary counts the premises, and the premises and meters
blocked by prerequisites."""

from __future__ import annotations

import csv
import io

from tests.harness import asgi_client

FLEET = """query($items: [FleetItemInput!]!, $premises: [FleetPremisesInput!]) {
  fleetPlan(items: $items, premises: $premises) {
    summary { meters upToDate upgradable blocked metersByStepCount { steps meters }
      blockedByReason { reason meters }
      premises premisesBlockedByPrerequisites metersBlockedByPrerequisites }
    entries { index problem }
    premises { index premisesCount problem plan { steps { order device { id } carriedOutBy
      waitsFor } blocked { device { id } reason } notUpdatableOverTheAir { id } } } } }"""

# The demo's Kestrel premises (a hub whose newest firmware its ESME's latest needs, and a PPMID)
# and a Brightwater one (whose ESME's prerequisite no premises can meet).
KESTREL = [
    {"deviceId": "device:9", "firmwareVersion": "7F080002"},
    {"deviceId": "device:11", "firmwareVersion": "640A0302"},
    {"manufacturerIdentifier": "0E3F", "modelIdentifier": "1999", "hardwareVersion": "0100",
     "firmwareVersion": "6D090202"},
]  # fmt: skip
BRIGHTWATER = [
    {"deviceId": "device:3", "firmwareVersion": "76020100"},
    {"deviceId": "device:8", "firmwareVersion": "64070301"},
    {"deviceId": "device:7", "firmwareVersion": "6D060201"},
]


async def test_fleet_plans_count_premises_and_what_prerequisites_block(gql):
    body = await gql(
        "LARGE_SUPPLIER",
        FLEET,
        {
            "items": [{"deviceId": "device:1", "firmwareVersion": "7F000000", "meterCount": 10}],
            "premises": [
                {"devices": KESTREL, "premisesCount": 1000},
                {"devices": BRIGHTWATER, "premisesCount": 200},
                {"devices": [], "premisesCount": 5},
                {"devices": KESTREL, "premisesCount": 0},
                {"devices": KESTREL},
            ],
        },
    )
    assert "errors" not in body, body
    fleet = body["data"]["fleetPlan"]
    assert fleet["summary"] == {
        "meters": 10 + 3 * 1000 + 3 * 200 + 3,
        "upToDate": 0,
        "upgradable": 10 + 3 * 1000 + 2 * 200 + 3,
        "blocked": 200,
        "metersByStepCount": [
            {"steps": 1, "meters": 2 * 1000 + 2 * 200 + 2},  # the meters, the PPMIDs, a hub
            {"steps": 2, "meters": 10 + 1000 + 1},  # device:1, and Kestrel's hubs
        ],
        "blockedByReason": [{"reason": "PREREQUISITE_NOT_MET", "meters": 200}],
        "premises": 1201,
        "premisesBlockedByPrerequisites": 200,
        "metersBlockedByPrerequisites": 200,
    }
    premises = fleet["premises"]
    assert [(p["index"], p["premisesCount"], p["problem"]) for p in premises] == [
        (0, 1000, None),
        (1, 200, None),
        (2, 5, "a premises needs at least one device"),
        (3, 0, "premisesCount must be at least 1"),
        (4, 1, None),
    ]
    kestrel = premises[0]["plan"]
    assert [(s["device"]["id"], s["carriedOutBy"], s["waitsFor"]) for s in kestrel["steps"]] == [
        ("device:9", "DCC", []),
        ("device:9", "DCC", [1]),
        ("device:11", "SUPPLIER", [2]),
        ("device:10", "SUPPLIER", [2]),
    ]
    assert premises[4]["plan"] == kestrel
    assert premises[1]["plan"]["blocked"] == [
        {"device": {"id": "device:8"}, "reason": "PREREQUISITE_NOT_MET"}
    ]
    assert premises[2]["plan"] is None and premises[3]["plan"] is None


async def test_a_fleet_without_premises_answers_as_before(gql):
    body = await gql(
        "SMALL_SUPPLIER",
        FLEET,
        {"items": [{"deviceId": "device:1", "firmwareVersion": "7F000000", "meterCount": 3}]},
    )
    fleet = body["data"]["fleetPlan"]
    assert fleet["premises"] == []
    assert (fleet["summary"]["meters"], fleet["summary"]["premises"]) == (3, 0)


async def test_too_many_premises_devices_in_one_call_are_refused(gql):
    shape = {"devices": KESTREL * 10}
    body = await gql("SMALL_SUPPLIER", FLEET, {"items": [], "premises": [shape] * 1700})
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


FILE = (
    "group,device_id,firmware_version,meter_count,premises,premises_count\n"
    "g1,device:1,7F000000,10,,\n"
    'g2,,,,"device:9=7F080002; device:11=640A0302; 0E3F/1999/0100=6D090202",1000\n'
    'g3,,,,"device:3=76020100;device:8=64070301;device:7=6D060201",200\n'
    "g4,,,,device:9,3\n"
    "g5,,,,,\n"
    'g6,,,,"device:9=7F080002; device:11=640A0302; 0E3F/1999/0100=6D090202",many\n'
)


async def test_the_fleet_file_plans_a_premises_column(app, token):
    async with asgi_client(app) as client:
        response = await client.post(
            "/fleet-plan.csv",
            content=FILE,
            headers={
                "Authorization": f"Bearer {token('LARGE_SUPPLIER')}",
                "Content-Type": "text/csv",
            },
        )
    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["group"] for row in rows] == ["g1", "g2", "g3", "g4", "g5", "g6"]
    assert (rows[0]["reachable"], rows[0]["step_count"]) == ("true", "2")
    kestrel = rows[1]
    assert (kestrel["problem"], kestrel["reachable"], kestrel["step_count"]) == ("", "true", "4")
    assert kestrel["path"] == (
        "1 DCC device:9 7F080002>76080102; 2 DCC device:9 76080102>6D080202 after 1; "
        "3 SUPPLIER device:11 640A0302>5B0A0402 after 2; "
        "4 SUPPLIER 0E3F/1999/0100 6D090202>64090302 after 2"
    )
    brightwater = rows[2]
    assert (brightwater["reachable"], brightwater["reason"]) == ("false", "PREREQUISITE_NOT_MET")
    assert (
        "device:8 blocked PREREQUISITE_NOT_MET: 5B070401, which requires a CHF"
        in (brightwater["path"])
    )
    assert rows[3]["problem"].startswith("premises must list devices as <device>=")
    assert rows[4]["problem"].startswith("give device_id, or manufacturer_identifier")
    assert rows[5]["problem"] == "premises_count must be a whole number"


async def test_a_file_of_premises_only_needs_no_device_columns(app, token):
    body = "group,premises\na,device:9=6D080202;device:11=5B0A0402\nb,\n"
    async with asgi_client(app) as client:
        response = await client.post(
            "/fleet-plan.csv",
            content=body,
            headers={
                "Authorization": f"Bearer {token('SMALL_SUPPLIER')}",
                "Content-Type": "text/csv",
            },
        )
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["group", "premises", "problem", "reachable", "reason", "target_version",
                       "step_count", "path"]  # fmt: skip
    assert rows[1][2:] == ["", "true", "", "", "0", ""]  # up to date: nothing to do
    assert rows[2][2] == "give premises, or firmware_version and a device"


async def test_the_fleet_files_summary_counts_each_premises_device_in_its_outcome(app, token):
    async with asgi_client(app) as client:
        response = await client.post(
            "/fleet-plan.csv?summary=true",
            content=FILE,
            headers={
                "Authorization": f"Bearer {token('LARGE_SUPPLIER')}",
                "Content-Type": "text/csv",
            },
        )
    assert response.status_code == 200, response.text
    lines = {(r["outcome"], r["reason"]): r for r in csv.DictReader(io.StringIO(response.text))}
    # g1: 10 meters, 2 steps; g2: 1000 premises of 3 upgradable devices; g3: 200 premises of a
    # hub and a PPMID upgradable and a meter blocked by its prerequisite; g4-g6: problems.
    assert lines["upgradable", ""] == {
        "outcome": "upgradable", "reason": "", "rows": "6", "meters": str(10 + 3000 + 400)
    }  # fmt: skip
    assert lines["blocked", "PREREQUISITE_NOT_MET"]["meters"] == "200"
    assert lines["problem", ""]["rows"] == "3"
