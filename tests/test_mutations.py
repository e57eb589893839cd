"""Manufacturer portals' mutations: who may, validation as data, transactions, concurrency,
idempotency and history. Each module-level test writes to a database of its own module."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import CATEGORIES

ERR = "... on MutationError { code message field }"

ADD_DEVICE = f"""mutation($input: AddDeviceInput!) {{ addDevice(input: $input) {{
  __typename ... on AddDeviceSuccess {{ device {{ id modelIdentifier hardwareVersion modelName
    zigbeeStackVersion manufacturer {{ manufacturerIdentifier }} }} }} {ERR} }} }}"""
ADD_FIRMWARE = f"""mutation($input: AddFirmwareInput!) {{ addFirmware(input: $input) {{
  __typename ... on AddFirmwareSuccess {{ firmware {{ id version status imageHash addedToCplOn }} }}
  {ERR} }} }}"""
PUBLISH = f"""mutation($input: PublishUpgradePathwayInput!) {{
  publishUpgradePathway(input: $input) {{
  __typename ... on PublishUpgradePathwaySuccess {{ pathway {{ id revision status notes publishedBy
    from {{ version }} to {{ version }} }} }} {ERR} }} }}"""
CORRECT = f"""mutation($input: CorrectUpgradePathwayInput!) {{
  correctUpgradePathway(input: $input) {{
  __typename ... on CorrectUpgradePathwaySuccess {{ pathway {{ id revision notes from {{ version }}
    to {{ version }} }} }} {ERR} }} }}"""
WITHDRAW_PATHWAY = f"""mutation($input: WithdrawUpgradePathwayInput!) {{
  withdrawUpgradePathway(input: $input) {{ __typename
  ... on WithdrawUpgradePathwaySuccess {{ pathway {{ id status revision }} }} {ERR} }} }}"""
WITHDRAW_FIRMWARE = f"""mutation($input: WithdrawFirmwareInput!) {{
  withdrawFirmware(input: $input) {{ __typename
  ... on WithdrawFirmwareSuccess {{ firmware {{ id status withdrawnOn upgradesTo {{ status }} }} }}
  {ERR} }} }}"""
ZIGBEE = f"""mutation($input: SetZigbeeInformationInput!) {{ setZigbeeInformation(input: $input) {{
  __typename ... on SetZigbeeInformationSuccess {{ device {{ id zigbeeBand zigbeeStackVersion }} }}
  {ERR} }} }}"""

# Demo device 1 (manufacturer 0A1B): 7F000000 → 76000100 → 64000300 and 7F000000 → 6D000200 →
# 64000300. Device 5 belongs to manufacturer 0C2D.
MUTATIONS = {
    "addDevice": (
        ADD_DEVICE,
        {
            "manufacturerIdentifier": "0A1B",
            "modelIdentifier": "AB01",
            "modelName": "Forbidden",
            "hardwareVersion": "0001",
            "deviceType": "IHD",
        },
    ),
    "addFirmware": (ADD_FIRMWARE, {"deviceId": "device:1", "version": "ABCDEF01"}),
    "publishUpgradePathway": (
        PUBLISH,
        {"deviceId": "device:1", "fromVersion": "76000100", "toVersion": "6D000200"},
    ),
    "correctUpgradePathway": (
        CORRECT,
        {"pathwayId": "pathway:1", "expectedRevision": 1, "reason": "x", "notes": "n"},
    ),
    "withdrawUpgradePathway": (WITHDRAW_PATHWAY, {"pathwayId": "pathway:1", "reason": "x"}),
    "withdrawFirmware": (WITHDRAW_FIRMWARE, {"firmwareId": "firmware:1", "reason": "x"}),
    "setZigbeeInformation": (ZIGBEE, {"deviceId": "device:1", "zigbeeStackVersion": "leak"}),
}


async def counts(isolated) -> tuple[int, ...]:
    return (
        await isolated.scalar("SELECT count(*) FROM device"),
        await isolated.scalar("SELECT count(*) FROM firmware"),
        await isolated.scalar("SELECT count(*) FROM upgrade_pathway"),
        await isolated.scalar("SELECT count(*) FROM audit_event"),
        await isolated.scalar("SELECT revision FROM data_revision"),
        await isolated.scalar("SELECT count(*) FROM upgrade_pathway WHERE revision > 1"),
        await isolated.scalar("SELECT count(*) FROM firmware WHERE status = 'WITHDRAWN'"),
    )


def payload(body: dict) -> dict:
    """The mutation's payload; the only errors allowed are the SSC-only fields read back."""
    for error in body.get("errors", []):
        assert error["extensions"]["code"] == "FORBIDDEN", body
        assert error["path"][-1] in ("zigbeeStackVersion", "zigbeeChipsetVendor"), body
    return next(iter(body["data"].values()))


# --- who may ----------------------------------------------------------------------------------


@pytest.mark.parametrize("category", [c for c in CATEGORIES if c not in ("MANUFACTURER", "SECAS")])
@pytest.mark.parametrize("mutation", MUTATIONS)
async def test_other_categories_are_forbidden_and_nothing_is_written(isolated, category, mutation):
    query, variables = MUTATIONS[mutation]
    before = await counts(isolated)
    body = await isolated.gql(category, query, {"input": variables})
    assert body["data"] == {mutation: None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert await counts(isolated) == before


@pytest.mark.parametrize("mutation", MUTATIONS)
async def test_a_manufacturer_is_forbidden_on_anothers_devices(isolated, mutation):
    query, variables = MUTATIONS[mutation]
    before = await counts(isolated)
    body = await isolated.gql("MANUFACTURER", query, {"input": variables}, manufacturer_id="0C2D")
    assert body["data"] == {mutation: None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert "leak" not in str(body)
    assert await counts(isolated) == before


async def test_manufacturer_adds_a_device_of_its_own(isolated):
    before = await counts(isolated)
    body = await isolated.gql(
        "MANUFACTURER",
        ADD_DEVICE,
        {
            "input": {
                "manufacturerIdentifier": "0a1b",
                "modelIdentifier": "beef",
                "modelName": "  Harbour IHD  ",
                "hardwareVersion": "00a1",
                "deviceType": "IHD",
                "zigbeeBand": "DUAL_BAND",
                "zigbeeStackVersion": "ZB-PRO 2030",
                "zigbeeChipsetVendor": "Quietstone",
            }
        },
        manufacturer_id="0A1B",
    )
    result = payload(body)
    assert result["__typename"] == "AddDeviceSuccess"
    device = result["device"]
    assert (device["modelIdentifier"], device["hardwareVersion"]) == ("BEEF", "00A1")
    assert device["modelName"] == "Harbour IHD"
    assert device["manufacturer"]["manufacturerIdentifier"] == "0A1B"
    assert device["zigbeeStackVersion"] is None  # the writer reads it back as null
    after = await counts(isolated)
    assert after[0] == before[0] + 1 and after[3] == before[3] + 1 and after[4] == before[4] + 1
    ssc = await isolated.gql(
        "SSC", f'{{ device(id: "{device["id"]}") {{ zigbeeStackVersion zigbeeChipsetVendor }} }}'
    )
    assert ssc["data"]["device"] == {
        "zigbeeStackVersion": "ZB-PRO 2030",
        "zigbeeChipsetVendor": "Quietstone",
    }


async def test_secas_acts_on_anyones_device(isolated):
    body = await isolated.gql(
        "SECAS", ADD_FIRMWARE, {"input": {"deviceId": "device:5", "version": "0badc0de"}}
    )
    firmware = payload(body)["firmware"]
    assert firmware["version"] == "0BADC0DE" and firmware["status"] == "ACTIVE"


# --- validation as data -------------------------------------------------------------------------


def device(model: str, name: str, hardware: str) -> dict:
    return {
        "manufacturerIdentifier": "0A1B",
        "modelIdentifier": model,
        "modelName": name,
        "hardwareVersion": hardware,
        "deviceType": "ESME",
    }


INVALID = [
    (ADD_DEVICE, device("XYZ1", "m", "0001"), "VALIDATION", "modelIdentifier"),
    (ADD_DEVICE, device("1000", "m", "0100"), "CONFLICT", "modelIdentifier"),
    (ADD_DEVICE, device("1001", " ", "0100"), "VALIDATION", "modelName"),
    (ADD_FIRMWARE, {"deviceId": "device:1", "version": "7f000000"}, "CONFLICT", "version"),
    (ADD_FIRMWARE, {"deviceId": "device:1", "version": "7F00000"}, "VALIDATION", "version"),
    (ADD_FIRMWARE, {"deviceId": "device:1", "version": "11111111", "imageHash": "ab"},
     "VALIDATION", "imageHash"),
    (ADD_FIRMWARE, {"deviceId": "device:999", "version": "11111111"}, "NOT_FOUND", "deviceId"),
    (ADD_FIRMWARE, {"deviceId": "nonsense", "version": "11111111"}, "NOT_FOUND", "deviceId"),
    (PUBLISH, {"deviceId": "device:1", "fromVersion": "76000100", "toVersion": "76000100"},
     "VALIDATION", "toVersion"),
    (PUBLISH, {"deviceId": "device:1", "fromVersion": "7F000000", "toVersion": "76000100"},
     "CONFLICT", "toVersion"),
    (PUBLISH, {"deviceId": "device:1", "fromVersion": "7F000000", "toVersion": "99999999"},
     "NOT_FOUND", "toVersion"),
    (PUBLISH, {"deviceId": "device:1", "fromVersion": "99999999", "toVersion": "76000100"},
     "NOT_FOUND", "fromVersion"),
    (PUBLISH, {"deviceId": "device:2", "fromVersion": "7F010000", "toVersion": "76010100"},
     "VALIDATION", "toVersion"),  # 76010100 is WITHDRAWN
    (CORRECT, {"pathwayId": "pathway:1", "expectedRevision": 1, "reason": "  ", "notes": "n"},
     "VALIDATION", "reason"),
    (CORRECT, {"pathwayId": "pathway:999", "expectedRevision": 1, "reason": "r", "notes": "n"},
     "NOT_FOUND", "pathwayId"),
    (CORRECT, {"pathwayId": "pathway:1", "expectedRevision": 7, "reason": "r", "notes": "n"},
     "CONFLICT", "expectedRevision"),
    (WITHDRAW_PATHWAY, {"pathwayId": "pathway:1", "reason": ""}, "VALIDATION", "reason"),
    (WITHDRAW_FIRMWARE, {"firmwareId": "firmware:1", "reason": ""}, "VALIDATION", "reason"),
    (ZIGBEE, {"deviceId": "device:1"}, "VALIDATION", "zigbeeBand"),
    (ZIGBEE, {"deviceId": "device:1", "zigbeeChipsetVendor": "Q" * 101}, "VALIDATION",
     "zigbeeChipsetVendor"),
]  # fmt: skip


@pytest.mark.parametrize(("query", "variables", "code", "field"), INVALID)
async def test_bad_input_is_a_clear_error_and_changes_nothing(
    isolated, query, variables, code, field
):
    before = await counts(isolated)
    result = payload(await isolated.gql("SECAS", query, {"input": variables}))
    assert (result["code"], result["field"]) == (code, field)
    assert (
        result["__typename"]
        == {
            "VALIDATION": "ValidationError",
            "NOT_FOUND": "NotFoundError",
            "CONFLICT": "ConflictError",
        }[code]
    )
    assert result["message"] and "QQQQ" not in result["message"]
    assert await counts(isolated) == before


async def test_a_pathway_that_closes_a_cycle_is_refused_naming_the_cycle(isolated):
    before = await counts(isolated)
    result = payload(
        await isolated.gql(
            "MANUFACTURER",
            PUBLISH,
            {"input": {"deviceId": "device:1", "fromVersion": "64000300", "toVersion": "7f000000"}},
        )
    )
    assert result["code"] == "CONFLICT"
    assert "cycle" in result["message"]
    assert "7F000000 → 76000100 → 64000300 → 7F000000" in result["message"]
    assert await counts(isolated) == before


# --- corrections, concurrency, idempotency ------------------------------------------------------


async def test_publish_then_correct_with_revisions_and_history(isolated):
    published = payload(
        await isolated.gql(
            "MANUFACTURER",
            PUBLISH,
            {
                "input": {
                    "deviceId": "device:4",
                    "fromVersion": "7F030000",
                    "toVersion": "76030100",
                    "notes": "first",
                }
            },
        )
    )["pathway"]
    assert (published["revision"], published["status"]) == (1, "PUBLISHED")
    assert published["publishedBy"] == "DEV-MANUFACTURER"
    stale = payload(
        await isolated.gql(
            "MANUFACTURER",
            CORRECT,
            {"input": {"pathwayId": published["id"], "expectedRevision": 0, "reason": "r",
                       "notes": "x"}},
        )
    )  # fmt: skip
    assert stale["code"] == "CONFLICT"
    corrected = payload(
        await isolated.gql(
            "MANUFACTURER",
            CORRECT,
            {
                "input": {
                    "pathwayId": published["id"],
                    "expectedRevision": 1,
                    "reason": "Bricks meters on 7F030000",
                    "toVersion": "6d030200",
                    "notes": "second",
                }
            },
        )
    )["pathway"]
    assert corrected["revision"] == 2
    assert corrected["to"]["version"] == "6D030200" and corrected["notes"] == "second"
    history = await isolated.gql(
        "LARGE_SUPPLIER",
        """{ devices(filter: { modelIdentifier: "1333" }) { nodes { firmware {
            upgradesTo { id history { action reason actorPartyId actorPartyCategory
            changes { field before after redacted } } } } } } }""",
    )
    events = next(
        pathway["history"]
        for firmware in history["data"]["devices"]["nodes"][0]["firmware"]
        for pathway in firmware["upgradesTo"]
        if pathway["id"] == published["id"]
    )
    assert [e["action"] for e in events] == ["PATHWAY_PUBLISHED", "PATHWAY_CORRECTED"]
    correction = events[1]
    assert correction["reason"] == "Bricks meters on 7F030000"
    assert correction["actorPartyCategory"] == "MANUFACTURER"
    assert {
        "field": "to",
        "before": "76030100",
        "after": "6D030200",
        "redacted": False,
    } in correction["changes"]
    assert {"field": "revision", "before": "1", "after": "2", "redacted": False} in correction[
        "changes"
    ]


async def test_two_concurrent_corrections_exactly_one_wins(isolated):
    pathway = payload(
        await isolated.gql(
            "SECAS",
            PUBLISH,
            {"input": {"deviceId": "device:6", "fromVersion": "7F050001", "toVersion": "6D050201"}},
        )
    )["pathway"]

    def correction(notes: str) -> dict:
        return {
            "input": {
                "pathwayId": pathway["id"],
                "expectedRevision": 1,
                "reason": "race",
                "notes": notes,
            }
        }

    results = await asyncio.gather(
        *(isolated.gql("SECAS", CORRECT, correction(f"writer {i}")) for i in range(4))
    )
    kinds = sorted(payload(r)["__typename"] for r in results)
    assert kinds == ["ConflictError"] * 3 + ["CorrectUpgradePathwaySuccess"]
    revision = await isolated.scalar(
        "SELECT revision FROM upgrade_pathway WHERE id = :id", id=int(pathway["id"].split(":")[1])
    )
    assert revision == 2


async def test_idempotent_retry_returns_the_first_result_and_writes_nothing(isolated):
    variables = {
        "input": {"deviceId": "device:9", "version": "C0FFEE01", "idempotencyKey": "retry-1"}
    }
    first = payload(
        await isolated.gql("MANUFACTURER", ADD_FIRMWARE, variables, manufacturer_id="0E3F")
    )
    before = await counts(isolated)
    again = payload(
        await isolated.gql("MANUFACTURER", ADD_FIRMWARE, variables, manufacturer_id="0E3F")
    )
    assert again == first
    assert await counts(isolated) == before
    changed = {"input": {**variables["input"], "version": "C0FFEE02"}}
    reused = payload(
        await isolated.gql("MANUFACTURER", ADD_FIRMWARE, changed, manufacturer_id="0E3F")
    )
    assert (reused["code"], reused["field"]) == ("CONFLICT", "idempotencyKey")
    assert await counts(isolated) == before
    # The key belongs to the Party: another Party's identical key is its own.
    other = payload(await isolated.gql("SECAS", ADD_FIRMWARE, changed))
    assert other["__typename"] == "AddFirmwareSuccess"


async def test_withdraw_firmware_keeps_its_pathways_and_blocks_new_ones_to_it(isolated):
    body = await isolated.gql(
        "SECAS", WITHDRAW_FIRMWARE, {"input": {"firmwareId": "firmware:30", "reason": "Recalled"}}
    )
    firmware = payload(body)["firmware"]
    assert firmware["status"] == "WITHDRAWN" and firmware["withdrawnOn"]
    assert [p["status"] for p in firmware["upgradesTo"]] == ["PUBLISHED"]  # the demo's one
    again = payload(
        await isolated.gql(
            "SECAS", WITHDRAW_FIRMWARE, {"input": {"firmwareId": "firmware:30", "reason": "x"}}
        )
    )
    assert again["code"] == "CONFLICT"


async def test_withdraw_pathway(isolated):
    result = payload(
        await isolated.gql(
            "MANUFACTURER",
            WITHDRAW_PATHWAY,
            {"input": {"pathwayId": "pathway:2", "reason": "Superseded"}},
        )
    )
    assert result["pathway"]["status"] == "WITHDRAWN"
    again = payload(
        await isolated.gql(
            "MANUFACTURER", WITHDRAW_PATHWAY, {"input": {"pathwayId": "pathway:2", "reason": "x"}}
        )
    )
    assert again["code"] == "CONFLICT"


# --- history keeps the field policy ---------------------------------------------------------------


async def test_zigbee_history_is_redacted_for_secas_and_readable_by_ssc(isolated):
    body = await isolated.gql(
        "MANUFACTURER",
        ZIGBEE,
        {
            "input": {
                "deviceId": "device:3",
                "zigbeeStackVersion": "ZB-PRO 2031 secret",
                "zigbeeChipsetVendor": "Hushvale Micro",
                "reason": "New module",
            }
        },
    )
    assert payload(body)["device"]["zigbeeStackVersion"] is None
    query = """{ auditEvents(first: 1, deviceId: "device:3", action: ZIGBEE_INFORMATION_CHANGED) {
        totalCount nodes { action reason changes { field before after redacted } } } }"""
    secas = await isolated.gql("SECAS", query)
    assert "secret" not in str(secas) and "Hushvale" not in str(secas)
    changes = secas["data"]["auditEvents"]["nodes"][0]["changes"]
    assert changes and all(c["redacted"] and c["before"] is c["after"] is None for c in changes)
    ssc = await isolated.gql("SSC", query)
    changes = {c["field"]: c for c in ssc["data"]["auditEvents"]["nodes"][0]["changes"]}
    assert changes["zigbeeStackVersion"]["after"] == "ZB-PRO 2031 secret"
    assert changes["zigbeeChipsetVendor"]["before"] == "Tideway Radio"
    assert changes["zigbeeChipsetVendor"]["redacted"] is False
    manufacturer = await isolated.gql(
        "MANUFACTURER", '{ device(id: "device:3") { history { changes { after redacted } } } }'
    )
    assert "Hushvale" not in str(manufacturer)


async def test_every_committed_write_bumps_the_data_revision_once(isolated):
    before = await isolated.scalar("SELECT revision FROM data_revision")
    payload(
        await isolated.gql(
            "SECAS", ZIGBEE, {"input": {"deviceId": "device:7", "zigbeeBand": "BAND_868_MHZ"}}
        )
    )
    assert await isolated.scalar("SELECT revision FROM data_revision") == before + 1
    payload(await isolated.gql("SECAS", ZIGBEE, {"input": {"deviceId": "device:7"}}))
    assert await isolated.scalar("SELECT revision FROM data_revision") == before + 1


async def test_repeating_a_hidden_value_still_hides_the_reason_and_records_the_field(isolated):
    # The value sent equals the stored one: the entry must be there all the same (redacted),
    # or its absence would confirm a guess, and the reason must stay hidden.
    body = await isolated.gql(
        "SECAS",
        ZIGBEE,
        {
            "input": {
                "deviceId": "device:10",
                "zigbeeChipsetVendor": "Lumen Silicon",
                "zigbeeBand": "DUAL_BAND",
                "reason": "vendor Lumen Silicon re-confirmed",
            }
        },
    )
    assert payload(body)["__typename"] == "SetZigbeeInformationSuccess"
    query = """{ auditEvents(first: 1, deviceId: "device:10", action: ZIGBEE_INFORMATION_CHANGED) {
        nodes { reason changes { field redacted } } } }"""
    supplier_view = await isolated.gql("SECAS", query)
    event = supplier_view["data"]["auditEvents"]["nodes"][0]
    assert event["reason"] is None and "Lumen" not in str(supplier_view)
    assert {"field": "zigbeeChipsetVendor", "redacted": True} in event["changes"]
    ssc = (await isolated.gql("SSC", query))["data"]["auditEvents"]["nodes"][0]
    assert ssc["reason"] == "vendor Lumen Silicon re-confirmed"


@pytest.mark.parametrize("field", ["zigbeeStackVersion", "zigbeeChipsetVendor"])
async def test_control_characters_are_a_validation_error(isolated, field):
    before = await counts(isolated)
    body = await isolated.gql(
        "SECAS", ZIGBEE, {"input": {"deviceId": "device:1", field: "SECRET\u0000"}}
    )
    result = payload(body)
    assert (result["code"], result["field"]) == ("VALIDATION", field)
    assert "SECRET" not in str(body)
    assert await counts(isolated) == before


async def test_firmware_cannot_be_added_to_the_cpl_in_the_future(isolated):
    body = await isolated.gql(
        "SECAS",
        ADD_FIRMWARE,
        {"input": {"deviceId": "device:1", "version": "FEEDFACE", "addedToCplOn": "2999-01-01"}},
    )
    assert payload(body)["field"] == "addedToCplOn"
