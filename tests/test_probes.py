"""Probes and metrics as an orchestrator and Prometheus see them."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from models.database import create_engine, migrate, newest_revision
from server.app import create_app, create_services
from tests.harness import BACKEND, asgi_client, fresh_database
from tests.live import eventually, serve


@pytest.fixture
async def own_app(settings, tmp_path):
    """An app (not yet started) on a fresh database migrated to `revision`."""
    made = []

    async def make(revision: str = "head"):
        database = fresh_database(tmp_path)
        url = await database.__aenter__()
        engine = create_engine(url)
        await migrate(engine, revision)
        await engine.dispose()
        own = replace(settings, database_url=url)
        services = create_services(own)
        made.append((database, services))
        return create_app(own, services)

    yield make
    for database, services in made:
        await services.engine.dispose()
        await database.__aexit__(None, None, None)


async def test_probes_answer_live_and_ready_once_started(own_app):
    app = await own_app()
    async with serve(app) as address, httpx.AsyncClient(base_url=f"http://{address}") as client:
        assert (await client.get("/livez")).json() == {"status": "ok"}

        async def ready() -> bool:  # once the listener has connected (at once on SQLite)
            return (await client.get("/readyz")).status_code == 200

        await eventually(ready, "ready", every=0.1)
        for path in ("/readyz", "/healthz"):
            response = await client.get(path)
            assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_is_503_until_the_database_is_at_the_newest_migration(own_app):
    app = await own_app("0002")
    async with asgi_client(app) as client:
        assert (await client.get("/livez")).status_code == 200
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["reason"] == "database not at the newest migration"
    assert newest_revision() != "0002"


@pytest.mark.skipif(BACKEND != "postgresql", reason="the change listener is PostgreSQL's")
async def test_readyz_is_503_while_the_change_listener_is_not_connected(own_app):
    app = await own_app()
    # Not started (no lifespan): the listener never connected.
    async with asgi_client(app) as client:
        response = await client.get("/readyz")
    assert (response.status_code, response.json()["reason"]) == (
        503,
        "change listener not connected",
    )


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def scrape(client) -> dict:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


async def test_metrics_count_requests_operations_and_denied_selections(client, token):
    before = await scrape(client)
    supplier = {"Authorization": f"Bearer {token('SMALL_SUPPLIER')}"}
    for first in (3, 4, 5):  # three different queries, so none is answered from the cache
        query = f"query Vendors {{ devices(first: {first}) {{ nodes {{ zigbeeChipsetVendor }} }} }}"
        response = await client.post("/graphql", json={"query": query}, headers=supplier)
        assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await client.post("/graphql", json={"query": "{ nope }"}, headers=supplier)
    for _ in range(2):  # the same query twice: answered the second time from the cache
        cached = {"query": "query Makers { manufacturers { name } }"}
        assert (await client.post("/graphql", json=cached, headers=supplier)).status_code == 200
    await client.post("/graphql", json={"query": "{ viewer { partyId } }"})  # no token
    after = await scrape(client)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    ok = {"route": "/graphql", "method": "POST", "status": "200"}
    assert grew("cpl_http_requests_total", **ok) == 6
    assert grew("cpl_http_requests_total", **(ok | {"status": "401"})) == 1
    assert grew("cpl_http_request_duration_seconds_count", route="/graphql") == 7
    assert grew("cpl_cache_lookups_total", cache="responses", result="hit") >= 1
    ops = "cpl_graphql_operations_total"
    assert grew(ops, type="query", outcome="errors", cache="miss") == 3
    assert grew(ops, type="query", outcome="rejected", cache="none") == 1  # never looked up
    assert grew(ops, type="query", outcome="ok", cache="miss") == 1
    assert grew(ops, type="query", outcome="ok", cache="hit") == 1
    assert grew("cpl_graphql_denied_selections_total") == 3  # one per selection, not per row
    assert ("cpl_webhook_outbox_pending", ()) in after  # its value: the test below
    assert ("cpl_db_pool_connections_in_use", ()) in after
    assert ("cpl_listener_reconnects_total", ()) in after


async def test_the_outbox_gauge_counts_the_deliveries_waiting(isolated):
    """`cpl_webhook_outbox_pending` is read from the database at scrape time: a webhook and a
    change are one delivery waiting (no dispatcher runs here: the app's lifespan is not run)."""

    async def pending() -> float:
        return samples((await isolated.client.get("/metrics")).text)[
            ("cpl_webhook_outbox_pending", ())
        ]

    assert await pending() == 0
    register = """mutation { registerWebhook(input: { url: "http://127.0.0.1:9/in" }) {
      __typename } }"""
    registered = await isolated.gql("LARGE_SUPPLIER", register, party_id="P-OUTBOX")
    assert registered["data"]["registerWebhook"]["__typename"] == "RegisterWebhookSuccess"
    add = """mutation { addFirmware(input: { deviceId: "device:3", version: "CACE0026" }) {
      __typename } }"""
    assert (await isolated.gql("SECAS", add))["data"]["addFirmware"]["__typename"] == (
        "AddFirmwareSuccess"
    )
    waiting = "SELECT count(*) FROM webhook_delivery WHERE status = 'PENDING'"
    assert await pending() == await isolated.scalar(waiting) == 1
