"""The SSC access log's own connection (`models.appender`): an answered read's entry survives
the process being killed at once; a write that cannot finish (the table locked, the connection
lost under it) refuses its answer, within the watchdog, and the next write connects again; a
name that could end a quoted constant is stored as it is."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from models.appender import (
    ACCESS_LOG_CONNECTION_NAME,
    IDLE_SECONDS,
    WATCHDOG_SECONDS,
    PostgresAppender,
    Watchdog,
    appender_for,
    dollar_quoted,
)
from models.database import connect_asyncpg
from models.demo import VENDORS
from permissions.principal import PartyCategory, Principal
from permissions.ssc_access import AccessLog, AccessLogUnavailable, SscReads
from tests.harness import BACKEND, scalar
from tests.live import cli, cli_env, cli_server, eventually

READ = "query Zigbee { devices(first: 3) { nodes { id zigbeeChipsetVendor } } }"
LOG_BACKEND = text(
    "SELECT pid, wait_event_type FROM pg_stat_activity "
    "WHERE application_name = :name AND datname = current_database()"
)


async def ask(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(
        "/graphql", json={"query": READ}, headers={"Authorization": f"Bearer {token}"}
    )


async def test_an_answered_read_is_in_the_log_after_a_kill(own_database, tmp_path):
    """SIGKILL right after the answers: no shutdown, no drain, and every entry is there."""
    env = cli_env(own_database, tmp_path / "data")
    ssc = await cli(env, "token", "SSC")
    before = await scalar(own_database, "SELECT count(*) FROM ssc_access")
    async with cli_server(env, tmp_path / "serve.log") as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
            answers = [await ask(client, ssc)]
            answers += await asyncio.gather(*(ask(client, ssc) for _ in range(8)))
        server.process.kill()
        await server.process.wait()
    assert all(a.status_code == 200 and any(v in a.text for v in VENDORS) for a in answers)
    assert await scalar(own_database, "SELECT count(*) FROM ssc_access") == before + len(answers)


@asynccontextmanager
async def ssc_access_locked(isolated) -> AsyncIterator[None]:
    """Another connection holding the log's table against writers until the block ends."""
    url = isolated.services.engine.url
    if BACKEND == "sqlite":
        holder = sqlite3.connect(make_url(url).database or "", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    async with isolated.services.engine.connect() as connection:
        await connection.execute(text("LOCK TABLE ssc_access IN EXCLUSIVE MODE"))
        try:
            yield
        finally:
            await connection.rollback()


async def newest_actor(isolated) -> str:
    return await isolated.scalar("SELECT actor_sub FROM ssc_access ORDER BY id DESC LIMIT 1")


async def test_a_write_held_up_by_a_lock_is_refused_after_the_watchdog(isolated, caplog):
    engine = isolated.services.engine
    short = isolated.services.access_log = AccessLog(appender_for(engine, 0.2))
    caplog.set_level(logging.WARNING)
    async with ssc_access_locked(isolated):
        refused = await ask(isolated.client, isolated.token("SSC", sub="a-locked"))
    # The next write with the usual watchdog: a reconnection and a commit within 0.2 s is more
    # than two busy cores always give.
    await short.close()
    isolated.services.access_log = AccessLog(appender_for(engine))
    assert refused.status_code == 503
    assert refused.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert not any(v in refused.text for v in VENDORS)
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1 and "1 entries not written" in warned[0]
    assert "Traceback" not in caplog.text

    answered = await ask(isolated.client, isolated.token("SSC", sub="a-after"))
    assert answered.status_code == 200 and any(v in answered.text for v in VENDORS)
    assert await newest_actor(isolated) == "a-after"


@pytest.mark.skipif(BACKEND != "postgresql", reason="a connection of PostgreSQL's to terminate")
async def test_a_connection_lost_under_a_write_refuses_its_answer_and_the_next_reconnects(
    isolated,
):
    async def log_backend() -> tuple[int, str | None] | None:
        async with isolated.services.engine.connect() as connection:
            row = await connection.execute(LOG_BACKEND, {"name": ACCESS_LOG_CONNECTION_NAME})
            return row.one_or_none()  # type: ignore[return-value]

    first = await ask(isolated.client, isolated.token("SSC", sub="a-first"))
    assert first.status_code == 200
    backend = await log_backend()
    assert backend is not None
    async with ssc_access_locked(isolated):
        asked = asyncio.ensure_future(ask(isolated.client, isolated.token("SSC", sub="a-lost")))

        async def waiting() -> bool:
            return await log_backend() == (backend[0], "Lock")

        await eventually(waiting, "the log's write waiting for the lock")
        assert await isolated.scalar(f"SELECT pg_terminate_backend({backend[0]})")
        refused = await asked
    assert refused.status_code == 503 and not any(v in refused.text for v in VENDORS)

    answered = await ask(isolated.client, isolated.token("SSC", sub="a-reconnected"))
    assert answered.status_code == 200
    assert await newest_actor(isolated) == "a-reconnected"
    again = await log_backend()
    assert again is not None and again[0] != backend[0]


async def test_the_watchdog_gives_up_the_write_that_runs_past_its_time():
    """One timer for many writes: armed by the first, which ends at once, it finds the second
    still running and gives it up once that one's time has passed."""
    given_up: list[bool] = []
    watchdog = Watchdog(0.05, lambda: given_up.append(True))
    watchdog.begin()
    watchdog.end()
    watchdog.begin()
    await eventually(lambda: given_up, "the running write given up")
    watchdog.end()
    assert given_up == [True]


async def test_a_name_that_would_end_a_quoted_constant_is_stored_as_it_is(isolated):
    sub = "x$e$'); DROP TABLE ssc_access; --$e1$\\"
    answered = await ask(isolated.client, isolated.token("SSC", sub=sub))
    assert answered.status_code == 200
    assert await newest_actor(isolated) == sub


def test_a_dollar_quoted_constant_uses_a_tag_it_does_not_hold():
    assert dollar_quoted('["a"]') == '$e$["a"]$e$'
    assert dollar_quoted("$e$ $e1$") == "$e2$$e$ $e1$$e2$"
    assert dollar_quoted("a$e") == "$e1$a$e$e1$"


@pytest.mark.skipif(BACKEND != "postgresql", reason="PostgreSQL's connection is made in the loop")
async def test_a_connection_made_after_the_watchdog_gave_up_writes_nothing(isolated, monkeypatch):
    """The watchdog fires once a write: had it fired while the connection was being made, a
    statement sent then would run unwatched, so none is."""
    appender = PostgresAppender(isolated.services.engine.url, WATCHDOG_SECONDS)

    async def slow_connect(*args, **kwargs):
        connection = await connect_asyncpg(*args, **kwargs)
        appender._give_up()  # the watchdog's time passed meanwhile
        return connection

    monkeypatch.setattr("models.appender.connect_asyncpg", slow_connect)
    before = await isolated.scalar("SELECT count(*) FROM ssc_access")
    log = AccessLog(appender)
    who = Principal("a-late", "SSC-PANEL", PartyCategory.SSC)
    with pytest.raises(AccessLogUnavailable):
        await log.record(who, SscReads(fields={"Device.zigbeeChipsetVendor"}, device_ids={1}))
    await log.close()
    assert await isolated.scalar("SELECT count(*) FROM ssc_access") == before


@pytest.mark.skipif(BACKEND != "postgresql", reason="PostgreSQL's connection may be dropped idle")
async def test_the_connection_is_made_anew_after_a_minute_without_a_write(isolated):
    """A NAT drops an idle flow without a word: after IDLE_SECONDS the log does not trust its
    connection and makes a new one; between writes closer together it keeps the one it has."""
    now = [1_000.0]
    appender = PostgresAppender(isolated.services.engine.url, WATCHDOG_SECONDS, lambda: now[0])
    log = AccessLog(appender)
    who = Principal("a-idle", "SSC-PANEL", PartyCategory.SSC)
    backends = []
    for step in (0.0, IDLE_SECONDS - 1, IDLE_SECONDS + 1):
        now[0] += step
        await log.record(who, SscReads(fields={"Device.zigbeeChipsetVendor"}, device_ids={1}))
        assert appender._connection is not None
        backends.append(appender._connection.get_server_pid())
    await log.close()
    assert backends[0] == backends[1] != backends[2]
