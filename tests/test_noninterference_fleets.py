"""Noninterference for stored fleets (`tests/test_noninterference.py` for the SSC-only values):
two databases that differ only in one Supplier's fleet give every other Party the same bytes,
instants aside, by every road the SSC twins are compared on and by the fleet's own roads
(`myFleet`, `replaceFleet`, `PUT /fleet`): another Supplier sees its own fleet, SECAS, the SSC
and every other category are refused alike. The owner sees the difference, so the comparison
can fail."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import col, select

from models.notice import WebhookDigest
from models.tables import Webhook, WebhookDelivery
from notifications.digests import send_due_digests
from notifications.payloads import delivery_payloads, encode_body
from tests.live import serve, subscribe
from tests.test_fleet_digest import DIGEST
from tests.test_fleet_premises import BRIGHTWATER, KESTREL
from tests.test_noninterference import (
    CORPUS,
    QUERIES,
    ROADS,
    Road,
    Send,
    answers,
    bearer,
    get,
    post,
)
from tests.test_stored_fleets import MY_FLEET, REPLACE
from tests.twins import Twin, observed, rows, twins, webhook_bodies, without_instants

OWNER = "P-OWNER"  # a Large Supplier, whose fleet is all that differs
# Different devices, versions, counts and numbers of groups; both valid on the demo CPL.
FLEETS = (
    [
        {"deviceId": "device:1", "firmwareVersion": "7F000000", "meterCount": 424242},
        {"deviceId": "device:2", "firmwareVersion": "7F010000", "meterCount": 17},
    ],
    [
        {"deviceId": "device:3", "firmwareVersion": "7F020000", "meterCount": 9},
        {"deviceId": "device:1", "firmwareVersion": "76000100", "meterCount": 31337},
        {"deviceId": "device:2", "firmwareVersion": "76010100", "meterCount": 5},
    ],
)
# And different premises shapes (`tests/test_stored_premises.py`), with telling counts.
OWNER_PREMISES = (
    [{"devices": KESTREL, "premisesCount": 271828}],
    [{"devices": BRIGHTWATER, "premisesCount": 161803}, {"devices": KESTREL[:1]}],
)
MY_PREMISES = """{ myFleet { premises { premisesCount devices { device { id } firmwareVersion } }
  plan { premises { premisesCount plan { steps { order } } } summary { meters premises } } } }"""
NEIGHBOUR = [{"deviceId": "device:1", "firmwareVersion": "7F000000", "meterCount": 77}]
# Every category, each as its default development Party (`DEV-<category>`): the Small
# Supplier has a fleet of its own (the same in both), the Large one stores one on the roads.
CALLERS = [
    "LARGE_SUPPLIER",
    "SMALL_SUPPLIER",
    "NETWORK_PARTY",
    "OTHER_SEC_PARTY",
    "MANUFACTURER",
    "SSC",
    "SECAS",
]
FILE = "device_id,firmware_version,meter_count\ndevice:1,7F000000,77\n"  # the neighbour's


def put_fleet(body: str) -> Send:
    async def send(client: httpx.AsyncClient, token: str, ssc: str) -> httpx.Response:
        headers = bearer(token) | {"Content-Type": "text/csv"}
        return await client.put("/fleet", content=body, headers=headers)

    return send


# fmt: off
FLEET_ROADS = [
    Road("my fleet", post(MY_FLEET)),
    Road("my fleet by GET", get("{ myFleet { meters groups { meterCount } } }")),
    Road("my fleet under an alias beside the devices", post("{ f: myFleet { meters plan { summary { meters blocked } } } devices { totalCount } }")),  # noqa: E501
    Road("my fleet's plan only", post("{ myFleet { plan { entries { device { id } plan { steps { id } } } } } }")),  # noqa: E501
    Road("my fleet's premises", post(MY_PREMISES)),
    Road("replace a fleet with a bad premises", post(REPLACE, {"input": {"items": NEIGHBOUR, "premises": [{"devices": [{"deviceId": "device:999", "firmwareVersion": "7F000000"}]}]}})),  # noqa: E501
    Road("replace a fleet", post(REPLACE, {"input": {"items": NEIGHBOUR}})),
    Road("replace a fleet with a bad item", post(REPLACE, {"input": {"items": [{"deviceId": "device:1", "firmwareVersion": "00000000"}]}})),  # noqa: E501
    Road("fleet digest", post(DIGEST, {"since": "2000-01-01T00:00:00Z"})),
    Road("upload a fleet", put_fleet(FILE)),
    Road("upload a bad fleet", put_fleet("device_id,firmware_version\ndevice:999,7F000000\n")),
]
# fmt: on


def caller_token(token, category: str) -> str:
    return token(category, **({"manufacturer_id": "0A1B"} if category == "MANUFACTURER" else {}))


async def replace(
    twin: Twin, token: str, items: list[dict], premises: list[dict] | None = None
) -> None:
    variables = {"input": {"items": items, "premises": premises}}
    response = await post(REPLACE, variables)(twin.client, token, token)
    assert response.json()["data"]["replaceFleet"]["__typename"] == "ReplaceFleetSuccess"


@contextlib.asynccontextmanager
async def stored_twins(settings, template, tmp_path_factory, spent, token):
    """Two copies of the demo CPL, written alike (each Supplier category's own fleet, the same
    as the roads store, then the owner's), but for the owner's fleet."""
    directory = tmp_path_factory.mktemp("fleet-twins")
    async with twins(settings, directory, (template, template), spent) as both:
        for twin, fleet, premises in zip(both, FLEETS, OWNER_PREMISES, strict=True):
            await replace(twin, token("SMALL_SUPPLIER"), NEIGHBOUR)
            await replace(twin, token("LARGE_SUPPLIER"), NEIGHBOUR)
            await replace(twin, token("LARGE_SUPPLIER", party_id=OWNER), fleet, premises)
        yield both


@pytest.fixture(scope="module")
async def stored(settings, template, tmp_path_factory, spent, token) -> AsyncIterator:
    """The twins the roads read and write: whatever order the tests run in, every Supplier
    category's fleet is the roads' own."""
    async with stored_twins(settings, template, tmp_path_factory, spent, token) as both:
        yield both


@pytest.fixture
async def changing(settings, template, tmp_path_factory, spent, token) -> AsyncIterator:
    """Twins of their own for a test that changes the CPL and registers webhooks, so that no
    other test depends on running before or after it."""
    async with stored_twins(settings, template, tmp_path_factory, spent, token) as both:
        yield both


async def test_the_twins_differ_in_the_owners_fleet_and_nothing_else(stored) -> None:
    demo, other = [await rows(twin.url) for twin in stored]
    (fleet_id,) = [row["id"] for row in demo["stored_fleet"] if row["party_id"] == OWNER]

    def others(tables: dict) -> dict:
        groups = [row for row in tables["fleet_group"] if row["fleet_id"] != fleet_id]
        impacts = [row for row in tables["fleet_impact"] if row["party_id"] != OWNER]
        shapes = [row for row in tables["fleet_premises"] if row["fleet_id"] != fleet_id]
        return tables | {
            "fleet_group": [{**row, "id": None} for row in groups],
            "fleet_impact": [{**row, "id": None} for row in impacts],
            "fleet_premises": [{**row, "id": None} for row in shapes],
        }

    assert others(demo) == others(other)
    assert demo["fleet_group"] != other["fleet_group"]
    assert demo["fleet_premises"] != other["fleet_premises"]


@pytest.mark.parametrize("category", CALLERS)
@pytest.mark.parametrize("road", FLEET_ROADS + ROADS, ids=lambda road: road.name)
async def test_every_road_gives_every_other_party_the_same_bytes(stored, token, road, category):
    caller = caller_token(token, category)
    demo, other = await answers(stored, road.send, caller, token("SSC"))
    assert demo.status < 500 and b"Unexpected error." not in demo.body
    assert demo == other


async def test_the_owner_sees_the_difference_and_others_what_the_policy_says(stored, token) -> None:
    owner = token("LARGE_SUPPLIER", party_id=OWNER)
    demo, other = await answers(stored, post(MY_FLEET), owner, owner)
    assert b"424242" in demo.body and b"31337" in other.body
    demo, other = await answers(stored, post(MY_PREMISES), owner, owner)
    assert b"271828" in demo.body and b"161803" in other.body
    for category in CALLERS:
        seen = (await answers(stored, post(MY_FLEET), caller_token(token, category), owner))[0]
        assert b"424242" not in seen.body
        if category.endswith("SUPPLIER"):  # its own, stored alike in both (the roads')
            assert b'"meters":77' in seen.body
        else:
            assert b'"myFleet":null' in seen.body and b"FORBIDDEN" in seen.body
    nobody = token("LARGE_SUPPLIER", party_id="P-NOBODY")
    seen = await answers(stored, post(MY_FLEET), nobody, owner)
    assert seen[0] == seen[1] and seen[0].body == b'{"data":{"myFleet":null}}'


async def test_every_webhook_body_is_the_same(stored) -> None:
    demo, other = [await webhook_bodies(twin) for twin in stored]
    assert demo == other and b"424242" not in b"".join(demo.values())


@CORPUS
@given(query=QUERIES, category=st.sampled_from(CALLERS))
async def test_generated_queries_give_every_other_party_the_same_bytes(
    stored, token, query, category
) -> None:
    caller = caller_token(token, category)
    demo, other = [observed(await post(query)(twin.client, caller, caller)) for twin in stored]
    assert demo == other, query


# --- a change's events and deliveries (last: it changes both twins alike) ----------------------

EVENT = """subscription { cplChanges { eventId kind reason device { id } firmware { version }
  pathway { id status }
  fleetImpact { affectedMeters newlyBlockedMeters newlyUpgradableMeters } } }"""
WITHDRAW = """mutation { withdrawUpgradePathway(input: { pathwayId: "pathway:2", reason: "Bricks" })
  { __typename } }"""
HOOK = (
    """mutation { registerWebhook(input: { url: "https://93.184.216.34/hook" }) { __typename } }"""
)
DIGEST_HOOK = """mutation { registerWebhook(input: { url: "https://93.184.216.34/hook",
  kinds: [DIGEST] }) { __typename } }"""


async def test_a_changes_events_and_deliveries_are_the_same_for_every_other_party(changing, token):
    """The same change in both twins touches the owner's fleet differently (B is blocked in one,
    A rerouted in the other): every other Party's event and delivery is the same bytes."""
    callers = {category: caller_token(token, category) for category in CALLERS}
    callers["OWNER"] = token("LARGE_SUPPLIER", party_id=OWNER)
    events: list[dict[str, bytes]] = []
    deliveries: list[dict[str, bytes]] = []
    for twin in changing:
        for caller in callers.values():
            await post(HOOK)(twin.client, caller, caller)
            await post(DIGEST_HOOK)(twin.client, caller, caller)
        async with serve(twin.app) as address, contextlib.AsyncExitStack() as stack:
            subscribers = {
                name: await stack.enter_async_context(
                    subscribe(address, caller, EVENT, bus=twin.services.bus)
                )
                for name, caller in callers.items()
            }
            await post(WITHDRAW)(twin.client, token("SECAS"), token("SECAS"))
            seen = {}
            for name, subscriber in subscribers.items():
                message = json.dumps(await subscriber.next(), sort_keys=True).encode()
                seen[name] = without_instants(message)
            events.append(seen)
        async with twin.services.db_sessions() as session:
            rows = (
                await session.exec(
                    select(WebhookDelivery.event_id, Webhook.party_id).join(
                        Webhook, col(Webhook.id) == col(WebhookDelivery.webhook_id)
                    )
                )
            ).all()
            bodies = await delivery_payloads(session, set(rows))
        deliveries.append(
            {f"{e}/{p}": without_instants(encode_body(b)) for (e, p), b in bodies.items()}
        )
    demo, other = events
    owner = demo.pop("OWNER"), other.pop("OWNER")
    assert demo == other and owner[0] != owner[1]
    assert b'"fleetImpact": {' in demo["SMALL_SUPPLIER"]  # the neighbour's own, alike in both
    assert b"FORBIDDEN" in demo["SECAS"]
    # The owner's digest holds the change, its numbers differing; every other Party's is alike.
    digests = []
    for twin in changing:
        seen = {}
        for name, caller in callers.items():
            ask = post(DIGEST, {"since": "2000-01-01T00:00:00Z"})
            sent = await ask(twin.client, caller, caller)
            seen[name] = without_instants(sent.content)
        digests.append(seen)
    demo, other = digests
    owner = demo.pop("OWNER"), other.pop("OWNER")
    assert demo == other and owner[0] != owner[1]
    assert b"PATHWAY_WITHDRAWN" in demo["SMALL_SUPPLIER"]  # the neighbour's own, alike in both
    assert b"FORBIDDEN" in demo["SECAS"] and b"PATHWAY" not in demo["SECAS"]
    # And every Party's daily digest, as the scheduler would send it tomorrow.
    sent = []
    for twin in changing:
        tomorrow = datetime.now(UTC) + timedelta(days=1)
        await send_due_digests(twin.services.db_sessions, tomorrow, 0)
        async with twin.services.db_sessions() as session:
            rows = await session.exec(
                select(Webhook.party_id, WebhookDigest.body).join(
                    Webhook, col(Webhook.id) == col(WebhookDigest.webhook_id)
                )
            )
            sent.append({p: without_instants(encode_body(b or {})) for p, b in rows.all()})
    demo, other = sent
    owner = demo.pop(OWNER), other.pop(OWNER)
    assert demo == other and owner[0] != owner[1]
    assert b'"kind":"DIGEST"' in owner[0] and b"424242" in owner[0]
    demo_bodies, other_bodies = deliveries
    mine = [key for key in demo_bodies if key.endswith(f"/{OWNER}")]
    assert mine and [demo_bodies.pop(k) for k in mine] != [other_bodies.pop(k) for k in mine]
    assert demo_bodies == other_bodies
