"""PostgreSQL's data revision, read on a connection of the clock's own: one prepared statement in
one round trip, outside any transaction and the request pool; replaced when it is cut, closed
with its engine, and an outage still reported by the ordinary read."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from models.database import connect_asyncpg, create_engine, is_outage
from models.revision import REVISION_CONNECTION_NAME, RevisionClock
from tests.harness import BACKEND
from tests.live import eventually

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="the connection is PostgreSQL's")
SELECT = "SELECT revision FROM data_revision WHERE id = 1"


class CountingRelay:
    """A TCP relay in front of PostgreSQL that counts the connections through it and the round
    trips on them (each time a client speaks after the server did): what a read costs on the
    wire, with nothing but bytes passed on."""

    def __init__(self, url: str) -> None:
        self.target = make_url(url)
        self.connections = 0
        self.round_trips = 0
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = self.target.set(port=port).render_as_string(hide_password=False)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _relay(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        self.connections += 1
        server, to_server = await asyncio.open_connection(self.target.host, self.target.port)
        last = ["server"]  # who spoke last on this connection

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, side: str):
            try:
                while data := await source.read(65536):
                    if side == "client" and last[0] == "server":
                        self.round_trips += 1
                    last[0] = side
                    sink.write(data)
                    await sink.drain()
            finally:
                sink.close()

        await asyncio.gather(
            pipe(client, to_server, "client"),
            pipe(server, to_client, "server"),
            return_exceptions=True,
        )


@contextlib.asynccontextmanager
async def relay_to(url: str) -> AsyncIterator[CountingRelay]:
    relay = CountingRelay(url)
    await relay.start()
    try:
        yield relay
    finally:
        relay.close()


@contextlib.asynccontextmanager
async def admin(url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to `url` for the test's own statements."""
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(plain)
    try:
        yield connection
    finally:
        await connection.close()


async def revision_backends(url: str) -> list[asyncpg.Record]:
    """The revision connections on `url`'s database: pid, state, open transaction, last query."""
    async with admin(url) as connection:
        return await connection.fetch(
            "SELECT pid, state, xact_start, query FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = $1",
            REVISION_CONNECTION_NAME,
        )


async def revision_backend(url: str, other_than: int | None = None) -> asyncpg.Record:
    """The one revision connection, once open and its statement prepared (a new one if
    `other_than` names the old one's pid)."""

    async def opened() -> list[asyncpg.Record]:
        found = [row for row in await revision_backends(url) if row["pid"] != other_than]
        return found if found and found[0]["query"] == SELECT else []

    found = await eventually(opened, "the revision connection opening")
    assert len(found) == 1
    return found[0]


async def commit_elsewhere(url: str) -> int:
    """A commit by another process: the revision moves on."""
    async with admin(url) as connection:
        return await connection.fetchval(
            "UPDATE data_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision"
        )


def pooled_checkouts(engine: AsyncEngine) -> list[object]:
    """Grows by one each time a pooled connection is handed out."""
    checkouts: list[object] = []
    event.listen(engine.sync_engine, "checkout", lambda *args: checkouts.append(args))
    return checkouts


async def test_a_read_is_one_prepared_statement_in_one_round_trip_outside_the_pool(own_database):
    async with relay_to(own_database) as relay:
        engine = create_engine(relay.url)
        checkouts = pooled_checkouts(engine)
        clock = RevisionClock(engine, max_age=60)
        try:
            first = await clock.current()  # through the pool: its own connection is opening
            backend = await revision_backend(own_database)
            connections, pooled = relay.connections, len(checkouts)
            for expected in range(first + 1, first + 4):
                assert await commit_elsewhere(own_database) == expected
                clock.invalidate()
                before = relay.round_trips
                assert await clock.current() == expected
                assert relay.round_trips - before == 1
            assert (relay.connections, len(checkouts)) == (connections, pooled)
            # The last statement on it is the SELECT itself (no BEGIN, no ROLLBACK after it),
            # and no transaction is left open between reads.
            [after] = await revision_backends(own_database)
            assert (after["pid"], after["state"], after["xact_start"], after["query"]) == (
                backend["pid"],
                "idle",
                None,
                SELECT,
            )
        finally:
            clock.close()
            await engine.dispose()


async def test_a_terminated_revision_connection_is_replaced_without_a_read_failing(own_database):
    engine = create_engine(own_database)
    checkouts = pooled_checkouts(engine)
    clock = RevisionClock(engine, max_age=60)
    try:
        await clock.current()
        old = await revision_backend(own_database)
        async with admin(own_database) as connection:
            assert await connection.fetchval("SELECT pg_terminate_backend($1)", old["pid"])
        expected = await commit_elsewhere(own_database)
        clock.invalidate()
        assert await clock.current() == expected  # the pool answers while it reconnects
        await revision_backend(own_database, other_than=old["pid"])
        pooled = len(checkouts)
        expected = await commit_elsewhere(own_database)
        clock.invalidate()
        assert await clock.current() == expected
        assert len(checkouts) == pooled  # read on the new connection
    finally:
        clock.close()
        await engine.dispose()


async def test_the_revision_connection_closes_with_its_engine(own_database):
    engine = create_engine(own_database)
    clock = RevisionClock(engine, max_age=60)
    await clock.current()
    await revision_backend(own_database)
    await engine.dispose()  # what the tests and the app's shutdown do

    async def gone() -> bool:
        return not await revision_backends(own_database)

    await eventually(gone, "the revision connection closing with its engine")
    assert clock._own is not None and await clock._own.read() is None  # a late read
    assert clock._own._connecting is None, "a read after its engine began to open one"
    assert not await revision_backends(own_database)


async def test_while_the_database_is_down_every_read_reports_the_outage():
    engine = create_engine("postgresql+asyncpg://127.0.0.1:1/cpl")  # nothing listens on port 1
    clock = RevisionClock(engine, max_age=60)
    try:
        for _ in range(3):
            with pytest.raises(Exception) as raised:
                await clock.current()
            assert is_outage(raised.value)
            # Its own connection is tried in the background meanwhile: let that try end.
            assert clock._own is not None
            if clock._own._connecting is not None:
                await asyncio.wait([clock._own._connecting])
    finally:
        clock.close()
        await engine.dispose()


async def test_connections_of_our_own_take_the_urls_options_as_the_pool_does(database_url):
    """`?ssl=require` in the URL secures the revision's and the listener's connections too: this
    server has no TLS, so a connection that honours it is refused, and one without it is not."""
    plain = await connect_asyncpg(database_url, "cpl-pathways-test")
    try:
        name = await plain.fetchval("SELECT current_setting('application_name')")
        assert name == "cpl-pathways-test"
        assert await plain.fetchval("SHOW ssl") == "off", "this test needs a server without TLS"
    finally:
        await plain.close()
    secured = make_url(database_url).update_query_dict({"ssl": "require"})
    with pytest.raises(ConnectionError, match="SSL"):
        await connect_asyncpg(secured, "cpl-pathways-test")
