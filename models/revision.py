"""The data revision as the response cache and the snapshots see it: read seldom and cheaply,
on each backend in the way that costs least under load, and afresh after a local commit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
from asyncpg.prepared_stmt import PreparedStatement
from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models.database import connect_asyncpg

logger = logging.getLogger("cpl_pathways.revision")
REVISION_CONNECTION_NAME = "cpl-pathways-revision"  # its application_name in pg_stat_activity
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 5.0


async def data_revision(engine: AsyncEngine) -> int:
    """The data revision as committed now, in one plain statement on a pooled connection."""
    async with engine.connect() as connection:
        return await read_revision(connection)


async def read_revision(connection: AsyncConnection) -> int:
    """The data revision as `connection` sees it: the snapshot reads it inside its load's
    transaction, so the label and the rows come from one moment (the one statement every
    reader here runs, `_REVISION`)."""
    return int((await connection.execute(_REVISION)).scalar_one())


_REVISION = text("SELECT revision FROM data_revision WHERE id = 1")


class SqliteRevision:
    """SQLite's revision read in the event loop's own thread, on a connection of its own.

    Under load every thread hop of aiosqlite waits behind all the requests ready meanwhile: the
    revision read, five hops through SQLAlchemy, took 108 ms (median) with 200 clients, while
    each request waited for it. Here it is one primary-key read of a WAL database, tens of
    microseconds, which never waits for a writer. Should it find the database busy or
    anything else wrong (no file yet, no table yet), it answers None and the caller reads the
    ordinary way, which waits, retries and reports as every statement does."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None

    @classmethod
    def for_engine(cls, engine: AsyncEngine) -> SqliteRevision | None:
        url = engine.url
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        return None if url.query.get("mode") == "memory" else cls(url.database)

    def read(self) -> int | None:
        try:
            if self._connection is None:
                uri = f"{Path(self.path).absolute().as_uri()}?mode=ro"
                self._connection = sqlite3.connect(
                    uri, uri=True, timeout=0, isolation_level=None, check_same_thread=False
                )
            row = self._connection.execute(str(_REVISION)).fetchone()
            return int(row[0])
        except (sqlite3.Error, TypeError):
            self.close()
            return None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class PostgresRevision:
    """PostgreSQL's revision read on a connection of its own: one prepared SELECT, outside any
    transaction, in one round trip. The connection goes to PostgreSQL itself
    (`CPL_DATABASE_DIRECT_URL`), never through a transaction pooler, which would hand the
    statement's session to another client.

    Through the pool the read took six round trips (pre-ping's BEGIN, ping and ROLLBACK, then
    BEGIN, SELECT and ROLLBACK), each waiting behind a turn of a loop busy with 200 clients, and
    it queued for a pooled connection with the requests. This connection is opened in the
    background, never by a request: while it is not there (not yet, lost, the server down) `read`
    answers None at once and the caller reads through the pool, which waits, retries and reports
    an outage as every statement does. A lost connection is replaced at the next read; one that
    cannot be opened is tried again at most once every `retry_seconds`. It closes with its
    engine (`Engine.dispose`), so none outlives it."""

    def __init__(
        self, url: URL, retry_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.url = url
        self.retry_seconds = retry_seconds
        self._clock = clock
        self._connection: asyncpg.Connection | None = None
        self._statement: PreparedStatement | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._failed_at: float | None = None  # the last attempt to connect, if it failed
        # A read begun before a local commit may still be running when the next one starts:
        # one statement at a time on one connection.
        self._lock = asyncio.Lock()
        self._closed = False  # with its engine: never opened again

    @classmethod
    def for_engine(
        cls, engine: AsyncEngine, direct_url: str | URL | None = None
    ) -> PostgresRevision | None:
        """The reader for `engine`'s database, connected to `direct_url` (PostgreSQL itself:
        its prepared statement lives in its session, which a transaction pooler would not
        keep), by default to the engine's own URL."""
        if engine.url.get_backend_name() != "postgresql":
            return None
        revision = cls(make_url(direct_url) if direct_url is not None else engine.url)
        event.listen(engine.sync_engine, "engine_disposed", lambda _engine: revision.close())
        return revision

    async def read(self) -> int | None:
        """The committed revision, or None when this connection cannot say (read elsewhere)."""
        if self._closed or self._lock.locked():  # closed, or a read on it not back yet
            return None
        async with self._lock:
            statement, connection = self._statement, self._connection
            if statement is None or connection is None or connection.is_closed():
                self._connect_soon()
                return None
            try:
                return int(await statement.fetchval(timeout=READ_TIMEOUT_SECONDS))
            except Exception as error:  # the pool's read reports whatever it is
                logger.info("revision connection lost (%s); reconnecting", type(error).__name__)
                self._drop()
                self._connect_soon()
                return None

    def _connect_soon(self) -> None:
        failed_at = self._failed_at
        if self._connecting is not None or (
            failed_at is not None and self._clock() - failed_at < self.retry_seconds
        ):
            return
        self._connecting = asyncio.ensure_future(self._connect())

    async def _connect(self) -> None:
        connection = None
        try:
            connection = await connect_asyncpg(
                self.url, REVISION_CONNECTION_NAME, timeout=CONNECT_TIMEOUT_SECONDS
            )
            statement = await connection.prepare(str(_REVISION))
            self._connection, self._statement, connection = connection, statement, None
            self._failed_at = None
        except Exception as error:  # the server down, or not yet migrated: the pool reports it
            logger.debug("revision connection not opened (%s)", type(error).__name__)
            self._failed_at = self._clock()
        finally:
            if connection is not None:
                connection.terminate()
            if self._connecting is asyncio.current_task():  # not a newer attempt's
                self._connecting = None

    def close(self) -> None:
        """Drop the connection for good: its engine is disposed."""
        self._closed = True
        self._drop()

    def _drop(self) -> None:
        """Drop the connection (no round trip: this runs inside `Engine.dispose` too)."""
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.terminate()
        self._connection = self._statement = None


class RevisionClock:
    """The data revision for answering from memory: read at most once every `max_age` seconds
    (one read in flight however many requests wait), and afresh after this process commits or
    the change listener hears of a commit (`invalidate`, which `ChangeBus.watch` calls).

    So a write is in its writer's next answer at once, in every other process's once its
    listener hears of it, and within `max_age` while it cannot (on SQLite's thread hop the read
    costs more than a cached answer's whole work).
    On SQLite it is read in this thread (`SqliteRevision`). On PostgreSQL, past half its age,
    it is read again ahead of need while requests go on using it: under load, a read that
    everyone awaits waits itself behind every request arriving meanwhile (with 200 clients,
    each read held up to 200 warm hits for 50-100 ms, four times a second). That helps only
    while a read takes under half `max_age`, which through the pool it did not (80-130 ms with
    200 clients: six round trips, each behind a loop round); so it is read on a connection of
    its own (`PostgresRevision`), in one round trip, and through the pool only while that
    connection is not there. Even that one round trip waits for a turn of the loop, which 200
    clients make 130-150 ms long: at a `max_age` of 250 ms the read ahead, begun after 125 ms,
    came back after the revision had expired, and the requests arriving meanwhile waited a
    second turn (p99 255-290 ms, against 195-230 ms at a second). Hence a second, which the
    listener's notifications make an upper bound rather than the usual delay."""

    def __init__(
        self,
        engine: AsyncEngine,
        max_age: float,
        clock: Callable[[], float] = time.monotonic,
        direct_url: str | URL | None = None,
    ) -> None:
        self.engine = engine
        self.max_age = max_age
        self._clock = clock
        self._revision: int | None = None
        self._read_at = 0.0
        self._generation = 0
        self._reading: asyncio.Future[int] | None = None
        self._here = SqliteRevision.for_engine(engine) if engine is not None else None
        self._own = PostgresRevision.for_engine(engine, direct_url) if engine is not None else None

    def invalidate(self) -> None:
        """After a commit here or a notification of one: the next request reads again, and no
        read begun before counts."""
        self._generation += 1
        self._revision = None
        self._reading = None

    def close(self) -> None:
        for reader in (self._here, self._own):
            if reader is not None:
                reader.close()

    def known(self) -> int | None:
        """The revision when it is had without waiting: read within `max_age`, or read now on
        SQLite's own thread; else None, and `current` waits for a read. A request that reads
        the snapshot asks this first, so that the common case takes no turn of the loop."""
        age = self._clock() - self._read_at
        if self._revision is not None and age < self.max_age:
            if self._here is None and age >= self.max_age / 2 and self._reading is None:
                self._start_reading()  # ahead of need: nobody waits for it
            return self._revision
        if self._here is not None and self._reading is None:
            started = self._clock()
            if (revision := self._here.read()) is not None:
                self._revision, self._read_at = revision, started
                return revision
        return None

    async def current(self) -> int:
        if (revision := self.known()) is not None:
            return revision
        if self._reading is None:
            self._start_reading()
        assert self._reading is not None
        return await asyncio.shield(self._reading)

    def _start_reading(self) -> None:
        self._reading = asyncio.ensure_future(self._read(self._generation))
        # A read ahead that fails is awaited by nobody; the next request past `max_age` reads
        # again and gets the error itself.
        self._reading.add_done_callback(lambda done: done.cancelled() or done.exception())

    async def _read(self, generation: int) -> int:
        started = self._clock()
        try:
            revision = await self._read_once()
        finally:
            if generation == self._generation:
                self._reading = None
        if generation == self._generation:
            self._revision, self._read_at = revision, started
        return revision

    async def _read_once(self) -> int:
        """On PostgreSQL on the clock's own connection if it is there, else through the pool."""
        if self._own is not None and (revision := await self._own.read()) is not None:
            return revision
        return await data_revision(self.engine)
