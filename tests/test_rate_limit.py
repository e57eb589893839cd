"""The per-Party rate limit (issue 24): over the burst an operation is refused with 429,
`Retry-After` and RATE_LIMITED, and nothing runs; other Parties are unaffected; the bucket
refills with time (an injected clock, never a sleep); the bucket map is bounded."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import connect

from permissions.principal import PartyCategory, Principal
from schema.rate_limit import RateLimit
from tests.live import DEADLINE

ZIGBEE = """mutation($input: SetZigbeeInformationInput!) { setZigbeeInformation(input: $input) {
  __typename } }"""
VIEWER = "{ viewer { partyId } }"
BAND = "SELECT zigbee_band FROM device WHERE id = 11"


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limit(services, per_second: float = 0.5, burst: int = 3) -> Clock:
    clock = Clock()
    services.rate_limit = RateLimit(per_second, burst, clock=clock)
    return clock


async def post(isolated, token: str, query: str, variables: dict | None = None):
    return await isolated.client.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_over_the_burst_is_a_429_and_nothing_runs(isolated, token):
    clock = limit(isolated.services)
    secas = token("SECAS")
    before = await isolated.scalar(BAND)
    # The same query thrice: the second and third are response-cache hits, operations still.
    for _ in range(3):
        assert (await post(isolated, secas, VIEWER)).status_code == 200
    other = "BAND_2_4_GHZ" if before != "BAND_2_4_GHZ" else "DUAL_BAND"
    refused = await post(
        isolated, secas, ZIGBEE, {"input": {"deviceId": "device:11", "zigbeeBand": other}}
    )
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "2"  # a token every 2 s at 0.5 a second
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert await isolated.scalar(BAND) == before  # the mutation did not run
    # Another Party (another id, another category) has a bucket of its own.
    assert (await post(isolated, token("SECAS", party_id="OTHER"), VIEWER)).status_code == 200
    assert (await post(isolated, token("SSC"), VIEWER)).status_code == 200
    # Two seconds later one token is back, and one operation may run.
    clock.now += 2
    done = await post(
        isolated, secas, ZIGBEE, {"input": {"deviceId": "device:11", "zigbeeBand": other}}
    )
    assert done.status_code == 200 and "errors" not in done.json()
    assert await isolated.scalar(BAND) == other
    assert (await post(isolated, secas, VIEWER)).status_code == 429


async def test_a_fleet_file_is_an_operation(isolated, token):
    limit(isolated.services, burst=1)
    supplier = token("LARGE_SUPPLIER")
    assert (await post(isolated, supplier, VIEWER)).status_code == 200
    response = await isolated.client.post(
        "/fleet-plan.csv",
        content=b"device_id,firmware_version\ndevice:1,7F000000\n",
        headers={"Authorization": f"Bearer {supplier}", "Content-Type": "text/csv"},
    )
    assert response.status_code == 429
    assert response.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_a_subscribe_message_is_an_operation(live, isolated, token):
    limit(isolated.services, burst=1)
    query = "subscription { cplChanges { eventId } }"
    async with connect(f"ws://{live}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        init = {"Authorization": f"Bearer {token('SMALL_SUPPLIER')}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        for operation in ("1", "2"):
            message = {"id": operation, "type": "subscribe", "payload": {"query": query}}
            await ws.send(json.dumps(message))
        reply = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
        assert (reply["id"], reply["type"]) == ("2", "error")
        assert reply["payload"][0]["extensions"] == {"code": "RATE_LIMITED", "retryAfter": 2}


def test_the_bucket_map_is_bounded_and_drops_the_least_recently_used():
    clock = Clock()
    buckets = RateLimit(per_second=1, burst=1, max_parties=3, clock=clock)
    parties = [Principal("s", f"P{i}", PartyCategory.SMALL_SUPPLIER) for i in range(5)]
    for party in parties:
        assert buckets.wait(party) == 0
    assert len(buckets) == 3  # P0 and P1 were dropped for P3 and P4
    assert buckets.wait(parties[4]) == 1  # still held: spent
    assert buckets.wait(parties[0]) == 0  # dropped, so a bucket anew
    assert len(buckets) == 3


def test_a_manufacturers_bucket_is_its_manufacturers():
    buckets = RateLimit(per_second=1, burst=1, clock=Clock())
    first = Principal("s", "M", PartyCategory.MANUFACTURER, manufacturer_id="0A1B")
    second = Principal("s", "M", PartyCategory.MANUFACTURER, manufacturer_id="0C2D")
    assert buckets.wait(first) == 0 and buckets.wait(second) == 0
    assert buckets.wait(first) == 1


def test_zero_is_off():
    buckets = RateLimit(per_second=0, burst=1, clock=Clock())
    party = Principal("s", "P", PartyCategory.SSC)
    assert all(buckets.wait(party) == 0 for _ in range(1000)) and len(buckets) == 0
