"""The data revision as the response cache and the snapshots see it: read seldom and cheaply,
on each backend in the way that costs least under load, and afresh after a local commit."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def data_revision(engine: AsyncEngine) -> int:
    """The data revision as committed now, in one plain statement on a pooled connection."""
    async with engine.connect() as connection:
        result = await connection.execute(_REVISION)
        return int(result.scalar_one())


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


class RevisionClock:
    """The data revision for answering from memory: read at most once every `max_age` seconds
    (one read in flight however many requests wait), and afresh after this process commits.

    So a write is in its writer's next answer at once and in every other process's within
    `max_age`; on SQLite's thread hop the read costs more than a cached answer's whole work.
    On SQLite it is read in this thread (`SqliteRevision`). On PostgreSQL, past half its age,
    it is read again ahead of need while requests go on using it: under load, a read that
    everyone awaits waits itself behind every request arriving meanwhile (with 200 clients,
    each read held up to 200 warm hits for 50-100 ms, four times a second). That helps only
    while a read takes under half `max_age`: with 200 clients on PostgreSQL it takes 80-130
    ms (pre-ping's BEGIN, ping and ROLLBACK, then BEGIN, SELECT and ROLLBACK: six round trips,
    each behind a loop round), so there warm requests still wait about 45 ms now and then."""

    def __init__(
        self, engine: AsyncEngine, max_age: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.engine = engine
        self.max_age = max_age
        self._clock = clock
        self._revision: int | None = None
        self._read_at = 0.0
        self._generation = 0
        self._reading: asyncio.Future[int] | None = None
        self._here = SqliteRevision.for_engine(engine) if engine is not None else None

    def invalidate(self) -> None:
        """After a commit here: the next request reads again, and no read begun before counts."""
        self._generation += 1
        self._revision = None
        self._reading = None

    def close(self) -> None:
        if self._here is not None:
            self._here.close()

    async def current(self) -> int:
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
            revision = await data_revision(self.engine)
        finally:
            if generation == self._generation:
                self._reading = None
        if generation == self._generation:
            self._revision, self._read_at = revision, started
        return revision
