"""Behind a transaction pooler (README: Behind a pooler), through a real one: Debian's PgBouncer
in transaction mode, a process of the test's own (`tests/pgbouncer.py`). `migrate`, `seed` and
two `serve` processes run through it with no traceback; a write on one is in the other's reads
(within the same second as with direct connections, `tests/test_cross_process.py`) and its
subscribers' events; the webhook outbox delivers each event once; an idempotency key answers a
retry on the other process; the revision reader and the listener keep sessions of their own on
PostgreSQL itself, so the server holds the pooler's connections plus two a process. Without a
pooler nothing changes: the pool keeps its prepared statements."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from config.settings import load_settings
from models.database import pooled_engine
from models.revision import REVISION_CONNECTION_NAME
from notifications.bus import LISTENER_NAME
from tests.harness import BACKEND, fresh_database
from tests.live import cli, cli_env, cli_server, eventually, free_port, subscribe
from tests.pgbouncer import PgBouncer, missing, most_connections, pgbouncer
from tests.test_cross_process import CHANGES, COUNT_NAMED, LISTED, ask, seen
from tests.test_webhook_delivery import Receiver, serving

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="PgBouncer pools PostgreSQL")
POOL_SIZE = 3  # the pooler's server connections to a database
WRITERS = 12  # writes at once, six on each process: more than the pooler's pool
ADD_ONCE = (
    'mutation($v: String!, $k: String) { addFirmware(input: { deviceId: "device:2", version: $v, '
    "idempotencyKey: $k }) { __typename ... on AddFirmwareSuccess { firmware { id } } } }"
)
REGISTER = (
    "mutation($url: String!) { registerWebhook(input: { url: $url, kinds: [FIRMWARE_ADDED] }) "
    "{ __typename } }"
)
SSC_READ = "{ devices(first: 3) { nodes { id zigbeeChipsetVendor } } }"
DELIVERIES = text("SELECT status, count(*) FROM webhook_delivery GROUP BY status")


@pytest.fixture(scope="module")
async def pooler(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PgBouncer]:
    reason = missing()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    log = tmp_path_factory.mktemp("pgbouncer") / "pgbouncer.log"
    async with pgbouncer(pool_size=POOL_SIZE, log=log) as running:
        yield running


def pooled_env(pooler: PgBouncer, direct: str, data: Path, **variables: str) -> dict[str, str]:
    """A `cpl-pathways` process's environment: requests through the pooler, sessions direct."""
    return cli_env(
        pooler.url(direct),
        data,
        CPL_DATABASE_DIRECT_URL=direct,
        CPL_DATABASE_POOLER="transaction",
        CPL_LOG_FORMAT="json",
        **variables,
    )


async def post(base: str, token: str, query: str, **variables: object) -> dict:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        response = await client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200, response.text
    return response.json()


def problems(log: Path) -> list[str]:
    """Lines of a JSON log that are not JSON, or report an error or a traceback."""
    found = []
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            found.append(line)
            continue
        if entry.get("level") in {"ERROR", "CRITICAL"} or "exception" in entry:
            found.append(line)
    return found


async def test_two_processes_through_pgbouncer_behave_as_direct_ones(pooler, tmp_path):
    async with fresh_database(tmp_path) as direct:
        env = pooled_env(pooler, direct, tmp_path / "data", CPL_WEBHOOK_POLL_SECONDS="0.2")
        assert await cli(env, "migrate") == "Database at the newest migration."
        assert await cli(env, "seed", "--demo") == "Demo data seeded."
        secas, supplier = [await cli(env, "token", c) for c in ("SECAS", "SMALL_SUPPLIER")]
        receiver = Receiver(free_port())
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(serving(receiver))
            a, b = [
                await stack.enter_async_context(cli_server(env, tmp_path / f"serve-{n}.log"))
                for n in "ab"
            ]
            ports = [int(server.base.rsplit(":", 1)[1]) for server in (a, b)]
            registered = await post(a.base, supplier, REGISTER, url=receiver.url)
            assert registered["data"]["registerWebhook"]["__typename"] == "RegisterWebhookSuccess"

            # Reads on both; a write on A is in B's next answers and its subscriber's events.
            before = await ask(ports[0], supplier, LISTED)
            assert await ask(ports[1], supplier, LISTED) == before
            address = b.base.removeprefix("http://")
            async with subscribe(address, supplier, CHANGES) as remote:
                await seen(ports, (secas, supplier), "C5000001")
                change = (await remote.next(10))["payload"]["data"]["cplChanges"]
                assert change["firmware"]["version"] == "C5000001"

            # A retry on B under A's idempotency key answers A's result and writes nothing.
            first = await post(a.base, secas, ADD_ONCE, v="C5000002", k="retry-1")
            again = await post(b.base, secas, ADD_ONCE, v="C5000002", k="retry-1")
            assert first == again and "firmware" in first["data"]["addFirmware"]

            # Writes at once on both, more than the pooler's pool: the server holds its pool
            # plus each process's two sessions (the listener, the revision reader).
            async with most_connections(direct) as most:
                answers = await asyncio.gather(
                    *(
                        post(server.base, secas, ADD_ONCE, v=f"C51{n:05d}", k=None)
                        for n in range(WRITERS)
                        for server in [(a, b)[n % 2]]
                    )
                )
            assert {x["data"]["addFirmware"]["__typename"] for x in answers} == {
                "AddFirmwareSuccess"
            }
            assert 0 < most[0] <= POOL_SIZE + 2 * 2
            listed = (await ask(ports[1], supplier, LISTED))["data"]["device"]["firmware"]
            versions = [firmware["version"] for firmware in listed]
            assert versions.count("C5000002") == 1
            assert {f"C51{n:05d}" for n in range(WRITERS)} <= set(versions)

            # Every event delivered once to the webhook, whichever process's dispatcher sent it.
            await eventually(lambda: delivered(direct, 2 + WRITERS), "every delivery made")
            per_event = Counter(hit.headers["x-cpl-event-id"] for hit in receiver.hits)
            assert len(per_event) == 2 + WRITERS and set(per_event.values()) == {1}

            # The sessions are PostgreSQL's own: one listener and one revision reader each.
            admin = create_async_engine(direct)
            async with admin.connect() as connection:
                for name in (LISTENER_NAME, REVISION_CONNECTION_NAME):
                    assert await connection.scalar(COUNT_NAMED, {"name": name}) == 2
            await admin.dispose()
            # Nothing is left prepared on the pooler's server connections.
            assert await prepared_statements(pooler.url(direct)) == 0
    for log in (a.log, b.log):
        assert problems(log) == [], log
    assert "ERROR" not in pooler.log_text()


async def test_the_ssc_access_log_commits_through_pgbouncer(pooler, tmp_path):
    """The log's own connection goes through the pooler too (`models.appender`): its
    statements, each a transaction of its own in one message, commit every concurrent read's
    entry, and leave nothing prepared."""
    async with fresh_database(tmp_path) as direct:
        env = pooled_env(pooler, direct, tmp_path / "data")
        assert await cli(env, "migrate") == "Database at the newest migration."
        assert await cli(env, "seed", "--demo") == "Demo data seeded."
        ssc = await cli(env, "token", "SSC")
        async with cli_server(env, tmp_path / "serve.log") as server:
            answers = await asyncio.gather(
                *(post(server.base, ssc, SSC_READ) for _ in range(WRITERS))
            )
            assert all(answer["data"]["devices"]["nodes"] for answer in answers)
            admin = create_async_engine(direct)
            async with admin.connect() as connection:
                logged = await connection.scalar(text("SELECT count(*) FROM ssc_access"))
            await admin.dispose()
            assert logged == WRITERS
            assert await prepared_statements(pooler.url(direct)) == 0
    assert problems(server.log) == []
    assert "ERROR" not in pooler.log_text()


async def delivered(direct: str, count: int) -> bool:
    admin = create_async_engine(direct)
    try:
        async with admin.connect() as connection:
            statuses = {status: n for status, n in await connection.execute(DELIVERIES)}
    finally:
        await admin.dispose()
    return statuses == {"DELIVERED": count}


async def prepared_statements(url: str, pooler: str = "transaction", runs: int = 1) -> int:
    """Prepared statements on the connection that ran a query `runs` times, through a pool
    made as the server makes its own (`pooled_engine`)."""
    settings = replace(load_settings(), database_url=url, database_pooler=pooler)
    engine = pooled_engine(settings, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            for _ in range(runs):
                await connection.execute(text("SELECT revision FROM data_revision"))
            return int(await connection.scalar(text("SELECT count(*) FROM pg_prepared_statements")))
    finally:
        await engine.dispose()


async def test_without_a_pooler_the_pool_keeps_its_prepared_statements(database_url):
    assert await prepared_statements(database_url, "none", runs=2) >= 1
    assert await prepared_statements(database_url, "transaction", runs=2) == 0
