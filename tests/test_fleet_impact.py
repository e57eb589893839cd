"""A change's impact on each Supplier's stored fleet: the owner's subscription events and webhook
deliveries carry its own numbers, checked against `fleetPlan` before and after the change;
another Supplier's, for the same event and the same document, carry null; `onlyMyFleet`
delivers only the changes with an impact."""

from __future__ import annotations

import pytest
from sqlmodel import col, select

from models.notice import FleetImpact
from models.tables import Webhook, WebhookDelivery
from notifications.payloads import delivery_payloads, fleet_reader
from tests.live import subscribe
from tests.test_stored_fleets import replace

OWNER, NEIGHBOUR = "P-NORTH", "P-SOUTH"
# Device 1 of the demo: A→B→D and A→C→D, D (64000300) the latest. A is upgradable, D up to date.
A, C, D, E = "7F000000", "6D000200", "64000300", "5B000400"
FLEET = [
    {"deviceId": "device:1", "firmwareVersion": A, "meterCount": 1000},
    {"deviceId": "device:1", "firmwareVersion": D, "meterCount": 50},
    {"deviceId": "device:2", "firmwareVersion": "7F010000", "meterCount": 7},
]
ELSEWHERE = [{"deviceId": "device:2", "firmwareVersion": "7F010000", "meterCount": 400}]
IMPACT = "fleetImpact { affectedMeters newlyBlockedMeters newlyUpgradableMeters }"
CHANGES = f"""subscription($mine: Boolean) {{ cplChanges(onlyMyFleet: $mine) {{
  eventId kind {IMPACT} }} }}"""
PLAN = """query($items: [FleetItemInput!]!) { fleetPlan(items: $items) { entries {
  meterCount plan { reachable steps { id } target { id } from { id } } } } }"""
REGISTER = """mutation($input: RegisterWebhookInput!) { registerWebhook(input: $input) {
  __typename } }"""
WITHDRAW_PATHWAY = """mutation($id: ID!) { withdrawUpgradePathway(input: { pathwayId: $id,
  reason: "Bricks meters" }) { __typename } }"""
ADD_FIRMWARE = """mutation($v: String!) { addFirmware(input: { deviceId: "device:1", version: $v })
  { __typename } }"""
PUBLISH = """mutation($from: String!, $to: String!) { publishUpgradePathway(input: {
  deviceId: "device:1", fromVersion: $from, toVersion: $to }) { __typename } }"""
WITHDRAW_FIRMWARE = """mutation($id: ID!) { withdrawFirmware(input: { firmwareId: $id,
  reason: "Faulty" }) { __typename } }"""
ZIGBEE = """mutation { setZigbeeInformation(input: { deviceId: "device:3",
  zigbeeBand: DUAL_BAND }) { __typename } }"""


async def silent(sub, seconds: float = 0.5) -> bool:
    """True when no message but pings comes within `seconds`: that nothing arrives cannot be
    shown by a later marker here, the filter dropping the marker too. A busy machine can only
    make this pass wrongly, never fail."""
    try:
        await sub.next(seconds)
    except TimeoutError:
        return True
    return False


async def plans(isolated) -> list[dict]:
    body = await isolated.gql("SMALL_SUPPLIER", PLAN, {"items": FLEET})
    return body["data"]["fleetPlan"]["entries"]


def expected(before: list[dict], after: list[dict], touched: set[str]) -> dict | None:
    """The impact `fleetPlan`'s answers before and after say: `touched` holds the ids of the
    firmware and pathway the change names."""

    def outcome(plan: dict) -> str:
        return "blocked" if not plan["reachable"] else "upgradable" if plan["steps"] else "current"

    def uses(plan: dict) -> bool:
        named = {plan["from"]["id"], (plan["target"] or {}).get("id")}
        named |= {step["id"] for step in plan["steps"]}
        return bool(named & touched)

    affected = blocked = upgradable = 0
    for old, new in zip(before, after, strict=True):
        meters = old["meterCount"]
        if old["plan"] != new["plan"] or uses(old["plan"]) or uses(new["plan"]):
            affected += meters
            was, now = outcome(old["plan"]), outcome(new["plan"])
            blocked += meters if was != "blocked" and now == "blocked" else 0
            upgradable += meters if was != "upgradable" and now == "upgradable" else 0
    if not affected:
        return None
    return {
        "affectedMeters": affected,
        "newlyBlockedMeters": blocked,
        "newlyUpgradableMeters": upgradable,
    }


async def firmware_id(isolated, version: str) -> str:
    body = await isolated.gql("SSC", '{ device(id: "device:1") { firmware { id version } } }')
    return next(f["id"] for f in body["data"]["device"]["firmware"] if f["version"] == version)


async def test_owner_hears_its_numbers_others_null_and_only_my_fleet_filters(
    live, isolated, token
) -> None:
    assert (await replace(isolated, FLEET, OWNER))["__typename"] == "ReplaceFleetSuccess"
    await replace(isolated, ELSEWHERE, NEIGHBOUR)
    for party in (OWNER, NEIGHBOUR):
        hook = {"input": {"url": "https://93.184.216.34/hook"}}
        registered = await isolated.gql("LARGE_SUPPLIER", REGISTER, hook, party_id=party)
        assert registered["data"]["registerWebhook"]["__typename"] == "RegisterWebhookSuccess"
    bus = isolated.services.bus
    owner = token("LARGE_SUPPLIER", party_id=OWNER)
    neighbour = token("LARGE_SUPPLIER", party_id=NEIGHBOUR)
    c = await firmware_id(isolated, C)
    steps = [  # (mutation, variables, the ids it names), each a kind of change the issue lists
        (WITHDRAW_PATHWAY, {"id": "pathway:2"}, {"pathway:2"}),  # A→B→D becomes A→C→D
        (ADD_FIRMWARE, {"v": E}, set()),  # E becomes the latest: no route to it
        (PUBLISH, {"from": D, "to": E}, set()),  # D→E unblocks every meter
        (WITHDRAW_FIRMWARE, {"id": c}, {c}),  # A's only route is gone again
    ]
    async with (
        subscribe(live, owner, CHANGES, bus=bus) as mine,
        subscribe(live, neighbour, CHANGES, bus=bus) as theirs,
        subscribe(live, owner, CHANGES, {"mine": True}, bus=bus) as only_mine,
        subscribe(live, token("SECAS"), CHANGES, bus=bus) as secas,
    ):
        zigbee = await isolated.gql("SECAS", ZIGBEE)
        assert "errors" not in zigbee, zigbee
        for subscriber in (mine, theirs):
            event = (await subscriber.next())["payload"]["data"]["cplChanges"]
            assert event["kind"] == "ZIGBEE_INFORMATION_CHANGED" and event["fleetImpact"] is None
        assert (await secas.next())["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        seen = []
        for mutation, variables, touched in steps:
            before = await plans(isolated)
            body = await isolated.gql("SECAS", mutation, variables)
            assert "Success" in str(body["data"]), body
            after = await plans(isolated)
            numbers = expected(before, after, touched)
            event = (await mine.next())["payload"]["data"]["cplChanges"]
            assert event["fleetImpact"] == numbers is not None, (mutation, event)
            other = (await theirs.next())["payload"]["data"]["cplChanges"]
            assert other["eventId"] == event["eventId"] and other["fleetImpact"] is None
            filtered = (await only_mine.next())["payload"]["data"]["cplChanges"]
            assert filtered == event  # the Zigbee change before it never came
            await secas.next()
            seen.append((event["eventId"], numbers))
    impacts = [numbers for _, numbers in seen]
    assert impacts == [
        {"affectedMeters": 1000, "newlyBlockedMeters": 0, "newlyUpgradableMeters": 0},
        {"affectedMeters": 1050, "newlyBlockedMeters": 1050, "newlyUpgradableMeters": 0},
        {"affectedMeters": 1050, "newlyBlockedMeters": 0, "newlyUpgradableMeters": 1050},
        {"affectedMeters": 1000, "newlyBlockedMeters": 1000, "newlyUpgradableMeters": 0},
    ]
    # Each webhook's delivery of the same events: the owner's numbers, the neighbour's null.
    async with isolated.services.db_sessions() as session:
        events = [int(event_id.split(":")[1]) for event_id, _ in seen]
        wanted = {(e, p) for e in events for p in (OWNER, NEIGHBOUR)}
        deliveries = (
            await session.exec(
                select(WebhookDelivery.event_id).where(col(WebhookDelivery.event_id).in_(events))
            )
        ).all()
        bodies = await delivery_payloads(session, wanted)
        rows = (await session.exec(select(FleetImpact.party_id))).all()
    assert sorted(deliveries) == sorted(events * 2)
    for (event_id, numbers), number in zip(seen, events, strict=True):
        assert bodies[(number, OWNER)]["fleetImpact"] == numbers, event_id
        assert bodies[(number, NEIGHBOUR)]["fleetImpact"] is None
        assert bodies[(number, OWNER)] | {"fleetImpact": None} == bodies[(number, NEIGHBOUR)]
    assert set(rows) == {OWNER}


@pytest.mark.parametrize("category", ["SECAS", "SSC", "MANUFACTURER", "NETWORK_PARTY"])
async def test_only_my_fleet_delivers_nothing_to_a_party_that_may_store_none(
    live, isolated, token, category
) -> None:
    await replace(isolated, FLEET, "DEV-" + category)  # a Supplier of the same Party id
    claims = {"manufacturer_id": "0A1B"} if category == "MANUFACTURER" else {}
    query = "subscription { cplChanges(onlyMyFleet: true) { kind } }"
    async with subscribe(live, token(category, **claims), query, bus=isolated.services.bus) as sub:
        body = await isolated.gql("SECAS", WITHDRAW_PATHWAY, {"id": "pathway:2"})
        assert "Success" in str(body["data"])
        assert await silent(sub)


async def test_a_party_id_under_another_category_gets_no_fleet_in_its_webhooks(isolated) -> None:
    """A Supplier's Party id in a NETWORK_PARTY token: `myFleet` is refused it, so a webhook it
    registers carries no `fleetImpact` (null, as for a Party without a fleet), and DIGEST, a
    Supplier's digest of its own fleet, is refused at registration."""
    assert (await replace(isolated, FLEET, OWNER))["__typename"] == "ReplaceFleetSuccess"
    hooks = {}
    for category in ("LARGE_SUPPLIER", "NETWORK_PARTY"):
        hook = {"input": {"url": f"https://93.184.216.34/{category}"}}
        registered = await isolated.gql(category, REGISTER, hook, party_id=OWNER)
        assert registered["data"]["registerWebhook"]["__typename"] == "RegisterWebhookSuccess"
        digest = {"input": {"url": "https://93.184.216.34/d", "kinds": ["DIGEST"]}}
        asked = await isolated.gql(category, REGISTER, digest, party_id=OWNER)
        hooks[category] = asked["data"]["registerWebhook"]["__typename"]
    assert hooks == {
        "LARGE_SUPPLIER": "RegisterWebhookSuccess",
        "NETWORK_PARTY": "ValidationError",
    }
    body = await isolated.gql("SECAS", WITHDRAW_PATHWAY, {"id": "pathway:2"})
    assert "Success" in str(body["data"]), body
    async with isolated.services.db_sessions() as session:
        rows = (
            await session.exec(
                select(Webhook.url, WebhookDelivery.event_id, fleet_reader()).join(
                    Webhook, col(Webhook.id) == col(WebhookDelivery.webhook_id)
                )
            )
        ).all()
        keys = {url.rsplit("/", 1)[1]: (event, reader) for url, event, reader in rows}
        bodies = await delivery_payloads(session, set(keys.values()))
    impacts = {category: bodies[key]["fleetImpact"] for category, key in keys.items()}
    assert impacts["LARGE_SUPPLIER"] == {
        "affectedMeters": 1000,
        "newlyBlockedMeters": 0,
        "newlyUpgradableMeters": 0,
    }
    assert impacts["NETWORK_PARTY"] is None
