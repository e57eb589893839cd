"""Declaring and withdrawing prerequisites: a Manufacturer for its own firmware only (SECAS for
anyone's), refused by the policy table's row scope for another's, validated as data, with
history, idempotency, and the plans that follow them."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.conftest import CATEGORIES

ERR = "... on MutationError { code message field }"
DECLARE = f"""mutation($input: DeclarePrerequisiteInput!) {{ declarePrerequisite(input: $input) {{
  __typename ... on DeclarePrerequisiteSuccess {{ prerequisite {{ id requiresDeviceType
    requiresGbcsVersion status declaredBy firmware {{ id version }}
    requiresAnyOfFirmware {{ id version device {{ id }} }} }} }} {ERR} }} }}"""
WITHDRAW = f"""mutation($input: WithdrawPrerequisiteInput!) {{
  withdrawPrerequisite(input: $input) {{ __typename
  ... on WithdrawPrerequisiteSuccess {{ prerequisite {{ id status }} }} {ERR} }} }}"""
FIRMWARE = """query($id: ID!) { firmware(id: $id) { version prerequisites { id status
  requiresDeviceType requiresAnyOfFirmware { version } history { action reason actorPartyId
  changes { field before after redacted } } } history { action } } }"""
PLAN = """query($devices: [PremisesDeviceInput!]!) { premisesPlan(devices: $devices) {
  steps { device { id } carriedOutBy waitsFor } blocked { device { id } reason detail } } }"""

# Demo: device:1 is Northwind's (0A1B) ESME, 7F000000 → … → 64000300 (firmware:4, its latest);
# device:3 is Northwind's CHF, firmware:10 (7F020000), 11 (76020100), 12 (6D020200);
# device:5 is Brightwater's (0C2D) GSME; firmware:4 belongs to device:1.
OWN = {"firmwareId": "firmware:4", "requiresDeviceType": "CHF",
       "requiresAnyOfFirmware": ["firmware:12"]}  # fmt: skip
OTHERS = {"firmwareId": "firmware:18", "requiresDeviceType": "CHF",
          "requiresGbcsVersion": "v4.0"}  # fmt: skip


async def declare(caller, category: str, data: dict, **claims) -> dict:
    body = await caller.gql(category, DECLARE, {"input": data}, **claims)
    assert "errors" not in body, body
    return body["data"]["declarePrerequisite"]


async def test_a_manufacturer_declares_for_its_own_firmware_and_is_refused_for_anothers(isolated):
    mine = await declare(isolated, "MANUFACTURER", OWN, manufacturer_id="0A1B")
    assert mine["__typename"] == "DeclarePrerequisiteSuccess"
    prerequisite = mine["prerequisite"]
    assert prerequisite["firmware"] == {"id": "firmware:4", "version": "64000300"}
    assert prerequisite["requiresAnyOfFirmware"] == [
        {"id": "firmware:12", "version": "6D020200", "device": {"id": "device:3"}}
    ]
    assert (prerequisite["status"], prerequisite["declaredBy"]) == ("PUBLISHED", "DEV-MANUFACTURER")

    before = await isolated.scalar("SELECT count(*) FROM prerequisite")
    events = await isolated.scalar("SELECT count(*) FROM audit_event")
    body = await isolated.gql(
        "MANUFACTURER", DECLARE, {"input": OTHERS}, manufacturer_id="0A1B"
    )  # firmware:18 is Brightwater's (0C2D)
    assert body["data"]["declarePrerequisite"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert await isolated.scalar("SELECT count(*) FROM prerequisite") == before
    assert await isolated.scalar("SELECT count(*) FROM audit_event") == events

    withdrawn = await isolated.gql(
        "MANUFACTURER",
        WITHDRAW,
        {"input": {"prerequisiteId": prerequisite["id"], "reason": "x"}},
        manufacturer_id="0C2D",
    )
    assert [e["extensions"]["code"] for e in withdrawn["errors"]] == ["FORBIDDEN"]


async def test_secas_declares_on_anyones_behalf_and_other_categories_may_not(isolated):
    on_behalf = await declare(isolated, "SECAS", OTHERS)
    assert on_behalf["prerequisite"]["requiresGbcsVersion"] == "v4.0"
    assert on_behalf["prerequisite"]["requiresAnyOfFirmware"] == []
    for category in set(CATEGORIES) - {"SECAS", "MANUFACTURER"}:
        body = await isolated.gql(category, DECLARE, {"input": OWN})
        assert body["data"]["declarePrerequisite"] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await isolated.scalar("SELECT count(*) FROM prerequisite") == 3  # the demo's 2 too


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"firmwareId": "firmware:999"}, "NOT_FOUND", "firmwareId"),
        ({"requiresAnyOfFirmware": None}, "VALIDATION", "requiresAnyOfFirmware"),
        ({"requiresGbcsVersion": "v4.0"}, "VALIDATION", "requiresAnyOfFirmware"),
        ({"requiresAnyOfFirmware": []}, "VALIDATION", "requiresAnyOfFirmware"),
        ({"requiresAnyOfFirmware": ["firmware:999"]}, "NOT_FOUND", "requiresAnyOfFirmware"),
        ({"requiresAnyOfFirmware": ["pathway:1"]}, "NOT_FOUND", "requiresAnyOfFirmware"),
        ({"requiresAnyOfFirmware": ["firmware:1"]}, "VALIDATION", "requiresAnyOfFirmware"),
        ({"requiresDeviceType": "ESME"}, "VALIDATION", "requiresDeviceType"),
        (
            {"requiresAnyOfFirmware": None, "requiresGbcsVersion": "four"},
            "VALIDATION",
            "requiresGbcsVersion",
        ),
        ({"firmwareId": "firmware:6"}, "VALIDATION", "firmwareId"),  # withdrawn firmware
    ],
)
async def test_bad_declarations_are_refused_as_data_and_write_nothing(
    isolated, change, code, field
):
    events = await isolated.scalar("SELECT count(*) FROM audit_event")
    answer = await declare(isolated, "SECAS", {**OWN, **change})
    assert (answer["code"], answer["field"]) == (code, field), answer
    assert await isolated.scalar("SELECT count(*) FROM prerequisite") == 2
    assert await isolated.scalar("SELECT count(*) FROM audit_event") == events


async def test_the_same_prerequisite_twice_and_a_cycle_of_types_are_conflicts(isolated):
    assert (await declare(isolated, "SECAS", OWN))["__typename"] == "DeclarePrerequisiteSuccess"
    again = await declare(isolated, "SECAS", OWN)
    assert (again["code"], again["field"]) == ("CONFLICT", "requiresDeviceType")
    # An ESME's firmware needs a CHF: a CHF's firmware may not then need an ESME.
    cycle = await declare(
        isolated,
        "SECAS",
        {"firmwareId": "firmware:12", "requiresDeviceType": "ESME", "requiresGbcsVersion": "4"},
    )
    assert cycle["code"] == "CONFLICT"
    assert "CHF → ESME → CHF" in cycle["message"]
    # Nor may a hub wait for a PPMID: PPMIDs are updated only after the hub (SECMP0007).
    ppmid = await declare(
        isolated,
        "SECAS",
        {"firmwareId": "firmware:12", "requiresDeviceType": "PPMID", "requiresGbcsVersion": "4"},
    )
    assert ppmid["code"] == "CONFLICT" and "CHF → PPMID → CHF" in ppmid["message"]


async def test_declared_and_withdrawn_with_history_and_the_plan_follows(isolated):
    premises = [
        {"deviceId": "device:1", "firmwareVersion": "76000100"},
        {"deviceId": "device:3", "firmwareVersion": "7F020000"},
    ]
    free = (await isolated.gql("SMALL_SUPPLIER", PLAN, {"devices": premises}))["data"]
    assert [s["device"]["id"] for s in free["premisesPlan"]["steps"]] == [
        "device:3",
        "device:3",
        "device:1",
    ]
    assert free["premisesPlan"]["steps"][2]["waitsFor"] == []  # nothing needed of the hub yet

    declared = await declare(isolated, "MANUFACTURER", OWN, manufacturer_id="0A1B")
    waits = (await isolated.gql("SMALL_SUPPLIER", PLAN, {"devices": premises}))["data"]
    assert waits["premisesPlan"]["steps"][2]["waitsFor"] == [2]  # the hub's last step

    pid = declared["prerequisite"]["id"]
    body = await isolated.gql(
        "MANUFACTURER",
        WITHDRAW,
        {"input": {"prerequisiteId": pid, "reason": "Works with any hub", "idempotencyKey": "w1"}},
        manufacturer_id="0A1B",
    )
    assert body["data"]["withdrawPrerequisite"]["prerequisite"] == {
        "id": pid,
        "status": "WITHDRAWN",
    }
    again = await isolated.gql(
        "MANUFACTURER",
        WITHDRAW,
        {"input": {"prerequisiteId": pid, "reason": "Works with any hub", "idempotencyKey": "w1"}},
        manufacturer_id="0A1B",
    )  # a retry: the first result, nothing written
    assert again["data"] == body["data"]
    twice = await isolated.gql(
        "SECAS", WITHDRAW, {"input": {"prerequisiteId": pid, "reason": "again"}}
    )
    assert twice["data"]["withdrawPrerequisite"]["code"] == "CONFLICT"
    after = (await isolated.gql("SMALL_SUPPLIER", PLAN, {"devices": premises}))["data"]
    assert after == free

    read = await isolated.gql("NETWORK_PARTY", FIRMWARE, {"id": "firmware:4"})
    (prerequisite,) = read["data"]["firmware"]["prerequisites"]
    assert prerequisite["status"] == "WITHDRAWN"
    assert [e["action"] for e in prerequisite["history"]] == [
        "PREREQUISITE_DECLARED",
        "PREREQUISITE_WITHDRAWN",
    ]
    declared_event, withdrawn_event = prerequisite["history"]
    assert {c["field"]: c["after"] for c in declared_event["changes"]} == {
        "requiresDeviceType": "CHF",
        "requiresAnyOfFirmware": "0A1B/1222/0100 6D020200",
        "status": "PUBLISHED",
    }
    assert not any(c["redacted"] for e in prerequisite["history"] for c in e["changes"])
    assert withdrawn_event["reason"] == "Works with any hub"
    assert withdrawn_event["changes"] == [
        {"field": "status", "before": "PUBLISHED", "after": "WITHDRAWN", "redacted": False}
    ]
    assert [e["action"] for e in read["data"]["firmware"]["history"]] == [
        "PREREQUISITE_DECLARED",
        "PREREQUISITE_WITHDRAWN",
    ]


async def test_a_declaration_retried_with_its_key_returns_the_first(isolated):
    data = {**OWN, "idempotencyKey": "portal-1"}
    first = await declare(isolated, "MANUFACTURER", data, manufacturer_id="0A1B")
    second = await declare(isolated, "MANUFACTURER", data, manufacturer_id="0A1B")
    assert first == second
    assert await isolated.scalar("SELECT count(*) FROM prerequisite") == 3
    other = await declare(
        isolated, "MANUFACTURER", {**data, "requiresAnyOfFirmware": ["firmware:11"]},
        manufacturer_id="0A1B",
    )  # fmt: skip
    assert other["code"] == "CONFLICT" and other["field"] == "idempotencyKey"


async def test_the_demo_prerequisites_are_public(gql):
    body = await gql("OTHER_SEC_PARTY", FIRMWARE, {"id": "firmware:45"})
    firmware = body["data"]["firmware"]
    assert firmware["version"] == "5B0A0402"
    (prerequisite,) = firmware["prerequisites"]
    assert prerequisite["requiresDeviceType"] == "CHF"
    assert prerequisite["requiresAnyOfFirmware"] == [{"version": "6D080202"}]


async def test_a_gbcs_prerequisite_is_met_by_hub_firmware_of_that_version_or_later(isolated):
    # The demo's first firmware of each device implements GBCS 3.2, the later ones 4.1.
    premises = [
        {"deviceId": "device:1", "firmwareVersion": "6D000200"},
        {"deviceId": "device:3", "firmwareVersion": "7F020000"},
    ]
    gbcs = {"firmwareId": "firmware:4", "requiresDeviceType": "CHF", "requiresGbcsVersion": "v4"}
    assert (await declare(isolated, "SECAS", gbcs))["__typename"] == "DeclarePrerequisiteSuccess"
    plan = (await isolated.gql("SMALL_SUPPLIER", PLAN, {"devices": premises}))["data"]
    assert [(s["device"]["id"], s["waitsFor"]) for s in plan["premisesPlan"]["steps"]] == [
        ("device:3", []),
        ("device:3", [1]),
        ("device:1", [2]),  # the hub on 6D020200 implements GBCS 4.1
    ]
    withdraw = {"prerequisiteId": "prerequisite:3", "reason": "Superseded"}
    assert (await isolated.gql("SECAS", WITHDRAW, {"input": withdraw}))["data"]
    newer = {**gbcs, "requiresGbcsVersion": "GBCS v5.0"}
    assert (await declare(isolated, "SECAS", newer))["__typename"] == "DeclarePrerequisiteSuccess"
    plan = (await isolated.gql("SMALL_SUPPLIER", PLAN, {"devices": premises}))["data"]
    (block,) = plan["premisesPlan"]["blocked"]
    assert block["reason"] == "PREREQUISITE_NOT_MET"
    assert block["detail"] == (
        "64000300, which requires a CHF implementing GBCS v5.0 or later: "
        "the CHF 0A1B/1222/0100 will run 6D020200, which implements GBCS 4.1"
    )


REGISTER = """mutation($input: RegisterWebhookInput!) { registerWebhook(input: $input) {
  __typename } }"""


async def test_declarations_and_withdrawals_are_changes_webhooks_are_told_of(isolated):
    body = await isolated.gql(
        "SMALL_SUPPLIER",
        REGISTER,
        {
            "input": {
                "url": "https://93.184.216.34/cpl-hooks",
                "kinds": ["PREREQUISITE_DECLARED", "PREREQUISITE_WITHDRAWN"],
            }
        },
    )
    assert body["data"]["registerWebhook"]["__typename"] == "RegisterWebhookSuccess"
    declared = await declare(isolated, "SECAS", OWN)
    pid = declared["prerequisite"]["id"]
    withdraw = {"prerequisiteId": pid, "reason": "Declared in error"}
    assert (await isolated.gql("SECAS", WITHDRAW, {"input": withdraw}))["data"]
    actions = """SELECT e.action FROM webhook_delivery d JOIN audit_event e ON e.id = d.event_id
        ORDER BY e.id"""
    async with isolated.services.engine.connect() as connection:
        rows = (await connection.execute(text(actions))).scalars().all()
    assert rows == ["PREREQUISITE_DECLARED", "PREREQUISITE_WITHDRAWN"]
    events = await isolated.gql(
        "SECAS",
        """{ auditEvents(first: 2) { nodes { action reason changes { field after } } } }""",
    )
    assert [e["action"] for e in events["data"]["auditEvents"]["nodes"]] == [
        "PREREQUISITE_WITHDRAWN",
        "PREREQUISITE_DECLARED",
    ]
