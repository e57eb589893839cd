"""Database faults that are not the request's: whatever PostgreSQL says when it will not serve
(a database closed to connections, its backends terminated, an administrator's shutdown, too
many connections, read-only after a failover) is a 503 with `Retry-After`, never a 500 or a
traceback, and the server recovers without a restart."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from models.database import is_outage
from server.app import create_app, create_services
from tests.harness import BACKEND, PG_URL
from tests.live import eventually, serve


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.exceptions.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.ObjectNotInPrerequisiteStateError(
            'database "cpl" is not currently accepting connections'
        ),
        asyncpg.InterfaceError("cannot call Connection.fetch(): connection is closed"),
    ],
)
def test_what_postgresql_says_when_it_will_not_serve_is_an_outage(error):
    assert is_outage(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.UniqueViolationError("duplicate key value"),
        asyncpg.exceptions.ObjectNotInPrerequisiteStateError("cannot do that now"),
        ValueError("a bug"),
    ],
)
def test_a_bug_is_not_an_outage(error):
    assert not is_outage(error)


def warnings_of(caplog) -> list[tuple[str, object]]:
    return [(r.levelname, r.exc_info) for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.skipif(BACKEND != "postgresql", reason="a PostgreSQL administrator's action")
async def test_a_database_closed_to_connections_is_503_and_recovers(
    settings, own_database, token, caplog
):
    name = make_url(own_database).database
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    own = replace(settings, database_url=own_database, response_cache_bytes=0)
    services = create_services(own)
    headers = {"Authorization": f"Bearer {token('LARGE_SUPPLIER')}"}

    async def admin_says(sql: str) -> None:
        async with admin.connect() as connection:
            await connection.execute(text(sql))

    caplog.set_level(logging.INFO)
    try:
        app = create_app(own, services)
        async with serve(app) as address, httpx.AsyncClient(base_url=f"http://{address}") as client:
            await asyncio.wait_for(services.bus.listening.wait(), 30)
            query = {"query": "{ devices { totalCount } }"}
            assert (await client.post("/graphql", json=query, headers=headers)).status_code == 200
            await admin_says(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin_says(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "  # noqa: S608
                f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            )
            caplog.clear()
            for _ in range(3):
                # A write bumps nothing here; each request reads the revision afresh.
                services.revision.invalidate()
                answer = await client.post("/graphql", json=query, headers=headers)
                assert answer.status_code == 503, answer.text
                assert answer.headers["retry-after"]
                assert answer.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            assert (await client.get("/readyz")).status_code == 503
            assert all(level == "WARNING" and not trace for level, trace in warnings_of(caplog))
            assert "Traceback" not in caplog.text

            await admin_says(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            statuses = []
            for _ in range(5):  # a pooled connection the termination left behind may fail once
                services.revision.invalidate()
                statuses.append(
                    (await client.post("/graphql", json=query, headers=headers)).status_code
                )
                if statuses[-1] == 200:
                    break
            assert statuses[-1] == 200, statuses

            # The change listener reconnects by itself (it checks and retries every second).
            async def ready() -> bool:
                return (await client.get("/readyz")).status_code == 200

            await eventually(ready, "ready again once the listener is back", every=0.1)
    finally:
        await admin_says(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await services.engine.dispose()
        await admin.dispose()
