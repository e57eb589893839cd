"""`cpl_graphql_operations_total` counts every operation a client is answered: queries and
mutations, subscriptions (once, when they end), and answers served from the response cache
(`cache="hit"`); `cpl_graphql_denied_selections_total` counts the FORBIDDEN selections of each,
a subscription's event by event. Read from `/metrics` as Prometheus reads it."""

from __future__ import annotations

import json
import logging

from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from tests.live import eventually, subscribe

OPERATIONS = "cpl_graphql_operations_total"
DENIED = "cpl_graphql_denied_selections_total"
VENDORS = """subscription Vendors { cplChanges(deviceIds: ["device:2"]) {
  kind device { id zigbeeChipsetVendor } } }"""
ZIGBEE = """mutation($input: SetZigbeeInformationInput!) { setZigbeeInformation(input: $input) {
  __typename } }"""


async def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


class Growth:
    """What a counter grew by since `start`."""

    def __init__(self, client) -> None:
        self.client = client
        self.before: dict = {}
        self.after: dict = {}

    async def start(self) -> None:
        self.before = await scrape(self.client)

    async def read(self) -> None:
        self.after = await scrape(self.client)

    def __call__(self, name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return self.after.get(key, 0) - self.before.get(key, 0)

    async def until(self, name: str, grown: float, **labels: str) -> None:
        """Scrape until `name{labels}` has grown by `grown` (a subscription is counted as its
        server notices the socket close)."""

        async def grew() -> bool:
            await self.read()
            return self(name, **labels) >= grown

        await eventually(grew, f"{name}{labels} grown by {grown}")


async def test_an_answer_from_the_cache_is_an_operation_with_its_outcome_and_denials(
    client, token, caplog
):
    caplog.set_level(logging.INFO, logger="cpl_pathways.access")
    grew = Growth(client)
    await grew.start()
    supplier = {"Authorization": f"Bearer {token('LARGE_SUPPLIER')}"}
    query = "query CachedVendors { devices(first: 7) { nodes { id zigbeeStackVersion } } }"
    bodies = []
    for _ in range(3):  # executed once, then answered twice from the response cache
        response = await client.post("/graphql", json={"query": query}, headers=supplier)
        bodies.append(response.json())
    await grew.read()
    assert bodies[0] == bodies[1] == bodies[2]
    assert [e["extensions"]["code"] for e in bodies[0]["errors"]] == ["FORBIDDEN"]
    assert grew(OPERATIONS, type="query", outcome="errors", cache="miss") == 1
    assert grew(OPERATIONS, type="query", outcome="errors", cache="hit") == 2
    assert grew(DENIED) == 3  # one a selection, for each answer the Supplier was given
    assert grew("cpl_cache_lookups_total", cache="responses", result="hit") == 2
    lines = [r for r in caplog.records if getattr(r, "path", None) == "/graphql"]
    assert [(r.operation_type, r.operation_name, r.cache) for r in lines] == [
        ("query", "CachedVendors", "miss"),
        ("query", "CachedVendors", "hit"),
        ("query", "CachedVendors", "hit"),
    ]


async def test_a_mutation_is_never_looked_up(isolated):
    grew = Growth(isolated.client)
    await grew.start()
    body = await isolated.gql(
        "MANUFACTURER",
        ZIGBEE,
        {"input": {"deviceId": "device:2", "reason": "new module", "zigbeeChipsetVendor": "X"}},
    )
    assert body["data"]["setZigbeeInformation"]["__typename"] == "SetZigbeeInformationSuccess"
    await grew.read()
    assert grew(OPERATIONS, type="mutation", outcome="ok", cache="none") == 1


async def test_a_subscription_is_counted_when_it_ends_and_its_events_denials_as_they_go(
    live, isolated, token
):
    grew = Growth(isolated.client)
    await grew.start()
    async with subscribe(
        live, token("SMALL_SUPPLIER"), VENDORS, bus=isolated.services.bus
    ) as supplier:
        for vendor in ("Glimmerfield Radio", "Hollowbrook"):
            await isolated.gql(
                "MANUFACTURER",
                ZIGBEE,
                {"input": {"deviceId": "device:2", "zigbeeChipsetVendor": vendor}},
            )
            event = await supplier.next()
            assert event["payload"]["data"]["cplChanges"]["device"] == {
                "id": "device:2",
                "zigbeeChipsetVendor": None,
            }
            assert [e["extensions"]["code"] for e in event["payload"]["errors"]] == ["FORBIDDEN"]
        await grew.read()
        assert grew(DENIED) == 2  # each event's, as it was sent
        assert grew(OPERATIONS, type="subscription", outcome="errors", cache="none") == 0
    # The socket closed: the subscription ended, and is counted with its events' outcome.
    await grew.until(OPERATIONS, 1, type="subscription", outcome="errors", cache="none")
    assert grew(DENIED) == 2


async def test_a_completed_subscription_is_ok_and_a_refused_one_rejected(live, isolated, token):
    grew = Growth(isolated.client)
    await grew.start()
    async with connect(f"ws://{live}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token('SSC')}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        valid = {"query": "subscription { cplChanges { kind } }"}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": valid}))
        invalid = {"query": "subscription { cplChanges { nope } }"}
        await ws.send(json.dumps({"id": "2", "type": "subscribe", "payload": invalid}))
        refused = json.loads(await ws.recv())
        assert (refused["id"], refused["type"]) == ("2", "error")
        await grew.until(OPERATIONS, 1, type="subscription", outcome="rejected", cache="none")
        await ws.send(json.dumps({"id": "1", "type": "complete"}))
        await grew.until(OPERATIONS, 1, type="subscription", outcome="ok", cache="none")
    assert grew(OPERATIONS, type="subscription", outcome="errors", cache="none") == 0
