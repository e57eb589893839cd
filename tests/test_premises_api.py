"""Premises plans through the API, on the demo CPL: its Kestrel premises (a hub whose newest
firmware a meter's latest needs), a PPMID after the hub, an IHD reported and not planned, and
Brightwater's meter whose prerequisite no premises can meet."""

from __future__ import annotations

PLAN = """query($devices: [PremisesDeviceInput!]!) { premisesPlan(devices: $devices) {
  steps { order index carriedOutBy waitsFor device { id deviceType }
    pathway { id from { version } to { version } } }
  blocked { index device { id } firmwareVersion reason detail }
  notUpdatableOverTheAir { id deviceType } } }"""

# The demo's Kestrel devices (manufacturer 0E3F): device:9 a CHF 7F080002 → 76080102 → 6D080202,
# device:10 a PPMID, device:11 an ESME whose latest 5B0A0402 needs the CHF on 6D080202,
# device:12 a GSME. device:3 is Northwind's CHF, device:8 Brightwater's ESME.
KESTREL = [
    {"deviceId": "device:11", "firmwareVersion": "640A0302"},
    {"deviceId": "device:9", "firmwareVersion": "7F080002"},
    {"manufacturerIdentifier": "0e3f", "modelIdentifier": "1999", "hardwareVersion": "0100",
     "firmwareVersion": "6d090202"},
]  # fmt: skip


async def premises(gql, devices: list[dict], category: str = "SMALL_SUPPLIER") -> dict:
    body = await gql(category, PLAN, {"devices": devices})
    assert "errors" not in body, body
    return body["data"]["premisesPlan"]


def steps(plan: dict) -> list[tuple]:
    return [
        (
            s["order"],
            s["device"]["id"],
            s["pathway"]["from"]["version"],
            s["pathway"]["to"]["version"],
            s["carriedOutBy"],
            s["waitsFor"],
        )
        for s in plan["steps"]
    ]


async def test_the_hubs_steps_by_the_dcc_come_first_then_the_meter_then_the_ppmid(gql):
    plan = await premises(gql, KESTREL)
    assert steps(plan) == [
        (1, "device:9", "7F080002", "76080102", "DCC", []),
        (2, "device:9", "76080102", "6D080202", "DCC", [1]),
        (3, "device:11", "640A0302", "5B0A0402", "SUPPLIER", [2]),  # needs the hub's newest
        (4, "device:10", "6D090202", "64090302", "SUPPLIER", [2]),  # a PPMID after the hub
    ]
    assert [s["index"] for s in plan["steps"]] == [1, 1, 0, 2]
    assert plan["blocked"] == [] and plan["notUpdatableOverTheAir"] == []


async def test_every_party_category_reads_the_same_plan(gql):
    first = await premises(gql, KESTREL)
    for category in ("LARGE_SUPPLIER", "NETWORK_PARTY", "OTHER_SEC_PARTY", "MANUFACTURER"):
        assert await premises(gql, KESTREL, category) == first
    assert await premises(gql, KESTREL, "SSC") == first
    assert await premises(gql, KESTREL, "SECAS") == first


async def test_a_hub_already_on_its_newest_firmware_lets_the_meter_go_at_once(gql):
    plan = await premises(
        gql,
        [
            {"deviceId": "device:11", "firmwareVersion": "7F0A0002"},
            {"deviceId": "device:9", "firmwareVersion": "6D080202"},
        ],
    )
    assert [(s["device"]["id"], s["waitsFor"]) for s in plan["steps"]] == [
        ("device:11", []),
        ("device:11", [1]),
        ("device:11", [2]),
        ("device:11", [3]),
    ]


async def test_without_its_hub_the_meters_latest_is_blocked_and_says_which_and_why(gql):
    plan = await premises(gql, [{"deviceId": "device:11", "firmwareVersion": "640A0302"}])
    assert plan["steps"] == []
    (block,) = plan["blocked"]
    assert (block["device"], block["reason"]) == ({"id": "device:11"}, "PREREQUISITE_NOT_MET")
    assert block["detail"] == (
        "5B0A0402, which requires a CHF 0E3F/1888/0100 running 6D080202: "
        "no CHF of the CPL is listed at the premises"
    )


async def test_a_prerequisite_that_cannot_be_met_blocks_only_its_meter(gql):
    plan = await premises(
        gql,
        [
            {"deviceId": "device:3", "firmwareVersion": "76020100"},
            {"deviceId": "device:8", "firmwareVersion": "64070301"},
            {"deviceId": "device:7", "firmwareVersion": "6D060201"},
        ],
    )
    # The DCC moves the hub to its newest, so Brightwater's ESME, which asks for the hub on
    # 76020100, can never step onto its latest; the PPMID goes after the hub.
    assert steps(plan) == [
        (1, "device:3", "76020100", "6D020200", "DCC", []),
        (2, "device:7", "6D060201", "64060301", "SUPPLIER", [1]),
    ]
    (block,) = plan["blocked"]
    assert (block["index"], block["reason"], block["firmwareVersion"]) == (
        1,
        "PREREQUISITE_NOT_MET",
        "64070301",
    )
    assert block["detail"] == (
        "5B070401, which requires a CHF 0A1B/1222/0100 running 76020100: "
        "the CHF 0A1B/1222/0100 will run 6D020200"
    )


async def test_a_ppmid_without_a_hub_and_a_device_not_on_the_cpl_are_blocked(gql):
    plan = await premises(
        gql,
        [
            {"deviceId": "device:10", "firmwareVersion": "7F090002"},
            {"deviceId": "device:999", "firmwareVersion": "7F090002"},
            {"deviceId": "nonsense", "firmwareVersion": "7F090002"},
            {"deviceId": "device:1", "firmwareVersion": "0000FFFF"},
        ],
    )
    assert plan["steps"] == []
    assert [(b["index"], b["device"], b["reason"]) for b in plan["blocked"]] == [
        (0, {"id": "device:10"}, "PREREQUISITE_NOT_MET"),
        (1, None, "UNKNOWN_FROM_VERSION"),
        (2, None, "UNKNOWN_FROM_VERSION"),
        (3, {"id": "device:1"}, "UNKNOWN_FROM_VERSION"),
    ]
    details = [b["detail"] for b in plan["blocked"]]
    assert details[0].startswith("PPMID and HCALCS firmware is updated over the air only once")
    assert details[1:] == [
        "no device has this deviceId",
        "deviceId is not a valid device id",
        "firmware 0000FFFF is not on the CPL for the ESME 0A1B/1000/0100",
    ]


async def test_a_premises_of_too_many_devices_is_refused(gql):
    devices = [{"deviceId": "device:1", "firmwareVersion": "7F000000"}] * 33
    body = await gql("SMALL_SUPPLIER", PLAN, {"devices": devices})
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


ADD_DEVICE = """mutation($input: AddDeviceInput!) { addDevice(input: $input) {
  ... on AddDeviceSuccess { device { id } } } }"""
ADD_FIRMWARE = """mutation($input: AddFirmwareInput!) { addFirmware(input: $input) {
  ... on AddFirmwareSuccess { firmware { id } } } }"""


async def test_an_ihd_is_reported_not_planned(isolated):
    added = await isolated.gql(
        "SECAS",
        ADD_DEVICE,
        {"input": {"manufacturerIdentifier": "0E3F", "modelIdentifier": "1CCC",
                   "hardwareVersion": "0100", "modelName": "Lantern IHD", "deviceType": "IHD"}},
    )  # fmt: skip
    ihd = added["data"]["addDevice"]["device"]["id"]
    for version, day in (("11111111", "2020-01-01"), ("22222222", "2021-01-01")):
        body = await isolated.gql(
            "SECAS",
            ADD_FIRMWARE,
            {"input": {"deviceId": ihd, "version": version, "addedToCplOn": day}},
        )
        assert body["data"]["addFirmware"]["firmware"]
    plan = await premises(
        isolated.gql, [*KESTREL, {"deviceId": ihd, "firmwareVersion": "11111111"}]
    )
    assert plan["notUpdatableOverTheAir"] == [{"id": ihd, "deviceType": "IHD"}]
    assert ihd not in {s["device"]["id"] for s in plan["steps"]}
    assert plan["blocked"] == [] and len(plan["steps"]) == 4
