"""The SSC access log's own connection (`permissions.ssc_access`): one INSERT a batch of
entries, in a transaction of its own (PostgreSQL: `BEGIN; SET LOCAL statement_timeout; INSERT;
COMMIT` as one message; SQLite: autocommit), on a connection of the process's own to the
requests' database (`CPL_DATABASE_URL`), opened at the first write.

Why not the pool: a session, BEGIN, the statement and COMMIT through SQLAlchemy cost 1.4 M
instructions an entry (SQLite; 1.6 M on PostgreSQL), twice what the whole cached answer holding
the values costs. Here an entry costs about 0.12 M on PostgreSQL (most of it asyncpg's round
trip) and 0.17 M on SQLite (a third of it SQLite's own insert and commit, counted in this
process). It is as durable: the statement has committed when it returns, as the COMMIT had.

- **PostgreSQL**: an asyncpg connection (`connect_asyncpg`, secured as the pool's), the
  statement sent by the simple query protocol: one message, one round trip, one transaction
  (with its `statement_timeout`), no prepared statement, so a transaction pooler may be in
  between. With a parameter asyncpg would send two messages (Parse and Describe, then Bind and
  Execute, each ending in Sync), which a transaction pooler may hand to two different server
  connections. So the array goes in the statement's text, dollar-quoted with a tag it does not
  hold (`dollar_quoted`): nothing in it can end the constant, whatever an actor's or an
  operation's name holds.
- **SQLite**: a plain `sqlite3` connection on the same file, set up as the pool's are (WAL,
  foreign keys), in a thread of its own fed by a queue: one hop each way a batch, where
  aiosqlite through SQLAlchemy took five.

A write that fails drops the connection and raises: the caller refuses its answer, and the
next write connects again; so does a write after a minute without one (`IDLE_SECONDS`), on
PostgreSQL, whose idle connection a NAT or firewall may have dropped without a word. A write
that hangs (a table locked, a network stall) is given up after `watchdog` seconds (`Watchdog`:
PostgreSQL's connection is closed under it, SQLite's statement interrupted), and the database
gives it up then too (PostgreSQL's statement timeout, SQLite's busy timeout), so answers are
refused rather than kept waiting. The connection closes with its engine (`Engine.dispose`),
and, gracefully, at shutdown (`close`).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Protocol

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from models.database import connect_asyncpg, sqlite_pragmas

ACCESS_LOG_CONNECTION_NAME = "cpl-pathways-access-log"  # application_name in pg_stat_activity
WATCHDOG_SECONDS = 5.0
# PostgreSQL's connection unused this long is made anew before the next write, not trusted: a
# NAT or firewall drops an idle flow silently (AWS's NAT after 350 s, Azure's balancer after
# 240 s), and a write on a dropped one hangs until the watchdog refuses its answer.
IDLE_SECONDS = 60.0
# Ids are given in the array's order, as the entries came. An entry's fields and device ids come
# as JSON text inside a JSON string (`SscReads.encoded_columns`), stored as they are.
INSERT_SQLITE = (
    "INSERT INTO ssc_access "
    "(occurred_at, actor_sub, actor_party_id, operation_name, fields, device_ids) "
    "SELECT json_extract(value, '$[0]'), "
    "json_extract(value, '$[1]'), json_extract(value, '$[2]'), json_extract(value, '$[3]'), "
    "json_extract(value, '$[4]'), json_extract(value, '$[5]') "
    "FROM json_each(?) ORDER BY key"
)
# In a transaction of its own, for its statement_timeout: the server gives the statement up when
# the watchdog does, so a write cut off does not stay behind in a backend (waiting for a lock,
# then committing, while its replacement connects). One message still: one round trip.
INSERT_POSTGRESQL = (
    "BEGIN; SET LOCAL statement_timeout = {timeout_ms}; "
    "INSERT INTO ssc_access "
    "(occurred_at, actor_sub, actor_party_id, operation_name, fields, device_ids) "
    "SELECT (e ->> 0)::timestamp AT TIME ZONE 'UTC', "
    "e ->> 1, e ->> 2, e ->> 3, CAST(e ->> 4 AS JSON), CAST(e ->> 5 AS JSON) "
    "FROM json_array_elements(CAST({entries} AS JSON)) WITH ORDINALITY AS t(e, n) ORDER BY n; "
    "COMMIT"
)


def dollar_quoted(text: str) -> str:
    """`text` as a PostgreSQL string constant: between two tags (`$e$`, `$e1$`, ...) of which
    it holds none, nor the start of one at its end (`a$e` then `$e$` would end at `a`), so it
    ends only where the constant does; nothing inside is an escape."""
    tag, n = "$e$", 0
    while tag in text + tag[:-1]:
        n += 1
        tag = f"$e{n}$"
    return f"{tag}{text}{tag}"


class Appender(Protocol):
    async def append(self, array: str) -> None:
        """Commit the entries of a JSON array (`Pending.encoded`'s), or raise."""

    async def close(self) -> None:
        """At shutdown, after the last write: close the connection."""

    def drop(self) -> None:
        """Drop the connection without a round trip (its engine is disposed); the next
        write opens another."""


def appender_for(engine: AsyncEngine, watchdog: float = WATCHDOG_SECONDS) -> Appender:
    """The access log's appender on `engine`'s database, its connection dropped with the
    engine's pool (`Engine.dispose`)."""
    url = engine.url
    appender: Appender
    if url.get_backend_name() == "sqlite":
        appender = SqliteAppender(url.database or "", watchdog)
    else:
        appender = PostgresAppender(url, watchdog)
    event.listen(engine.sync_engine, "engine_disposed", lambda _engine: appender.drop())
    return appender


class Watchdog:
    """Gives up a write still running `seconds` after it began, with one timer for many writes:
    armed when a write begins and none is, it then gives up the write running if that one is
    overdue, else waits for it. A timer a write (`asyncio.timeout`) cost 40,000 instructions, more
    than half of PostgreSQL's whole statement; this costs a clock read."""

    def __init__(self, seconds: float, give_up: Callable[[], None]) -> None:
        self.seconds = seconds
        self._give_up = give_up
        self._began: float | None = None  # the running write's start
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0  # when the timer fires

    def begin(self) -> None:
        loop = asyncio.get_running_loop()
        self._began = began = loop.time()
        if self._timer is None:
            self._arm(loop, began + self.seconds)

    def end(self) -> None:
        self._began = None

    def _arm(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        self._due = due
        self._timer = loop.call_at(due, self._check, loop)

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        began = self._began
        if began is None:
            return
        if began + self.seconds <= self._due:  # the loop runs a timer at its time or after
            self._began = None
            self._give_up()
        else:
            self._arm(loop, began + self.seconds)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def overdue(seconds: float) -> TimeoutError:
    return TimeoutError(f"the write took over {seconds:g} s")


class PostgresAppender:
    def __init__(
        self, url: URL, watchdog: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.url = url
        self.watchdog = Watchdog(watchdog, self._give_up)
        head, tail = INSERT_POSTGRESQL.split("{entries}")
        self._head = head.format(timeout_ms=int(watchdog * 1000))
        self._tail = tail
        self._connection: asyncpg.Connection | None = None
        self._given_up = False
        self._clock = clock
        self._used_at = 0.0

    async def append(self, array: str) -> None:
        self.watchdog.begin()
        now = self._clock()
        try:
            connection = self._connection
            # Lost while idle and noticed, or idle long enough to have been dropped unnoticed.
            idle = now - self._used_at > IDLE_SECONDS
            if connection is None or connection.is_closed() or idle:
                self.drop()
                connection = self._connection = await connect_asyncpg(
                    self.url,
                    ACCESS_LOG_CONNECTION_NAME,
                    timeout=self.watchdog.seconds,
                    statement_cache_size=0,
                )
                if self._given_up:  # connected after the watchdog's time: it is not armed now
                    raise overdue(self.watchdog.seconds)
            await connection.execute(self._head + dollar_quoted(array) + self._tail)
            self._used_at = now
        except BaseException as error:
            self.drop()  # whatever state it was left in (a statement cut off): not reused
            if self._given_up:
                raise overdue(self.watchdog.seconds) from error
            raise
        finally:
            self.watchdog.end()
            self._given_up = False

    def _give_up(self) -> None:
        """The watchdog's: the write fails at once, its connection closed under it."""
        self._given_up = True
        self.drop()

    async def close(self) -> None:
        self.watchdog.stop()
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.close(timeout=self.watchdog.seconds)
            except Exception:
                connection.terminate()

    def drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.terminate()


class SqliteAppender:
    """Writes in a thread of its own (`SqliteWriter`), started at the first write and ended
    with its connection (`drop`, `close`): a write the watchdog gave up finishes, or fails, in
    that thread before the next write starts there (SQLite's busy timeout ends a wait for a
    lock then too), and a dropped thread's connection is closed after it, never a newer one's."""

    def __init__(self, path: str, watchdog: float) -> None:
        self.path = path
        self.watchdog = Watchdog(watchdog, self._give_up)
        self._writer: SqliteWriter | None = None
        self._waiting: asyncio.Future[None] | None = None

    async def append(self, array: str) -> None:
        if self._writer is None:
            self._writer = SqliteWriter(self.path, int(self.watchdog.seconds * 1000))
        self._waiting = waiting = asyncio.get_running_loop().create_future()
        self.watchdog.begin()
        try:
            self._writer.send(array, waiting)
            await waiting
        finally:
            self.watchdog.end()
            self._waiting = None

    def _give_up(self) -> None:
        """The watchdog's: the write fails at once, its statement stopped if it is running."""
        waiting = self._waiting
        if waiting is not None and not waiting.done():
            waiting.set_exception(overdue(self.watchdog.seconds))
        if self._writer is not None:
            self._writer.interrupt()

    async def close(self) -> None:
        self.watchdog.stop()
        writer, self._writer = self._writer, None
        if writer is not None:
            closed = asyncio.get_running_loop().create_future()
            writer.send(None, closed)
            await closed

    def drop(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.send(None, None)  # after a write still running, if any


def _settle(waiting: asyncio.Future[None], error: BaseException | None) -> None:
    if waiting.done():  # given up by the watchdog, or its caller gone
        return
    if error is None:
        waiting.set_result(None)
    else:
        waiting.set_exception(error)


class SqliteWriter:
    """A thread and its connection, set up as the pool's are (`sqlite_pragmas`). It takes its
    work from a queue, one array at a time (None: close and end), and settles each write's
    future in the event loop: one hop each way, none of an executor's locks."""

    def __init__(self, path: str, busy_timeout_ms: int) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._connection: sqlite3.Connection | None = None
        self._work: queue.SimpleQueue[tuple[str | None, asyncio.Future[None] | None]]
        self._work = queue.SimpleQueue()
        # A daemon: a process that exits without closing the log is not held up by it.
        threading.Thread(target=self._run, name="cpl-access-log", daemon=True).start()

    def send(self, array: str | None, settled: asyncio.Future[None] | None) -> None:
        self._work.put((array, settled))

    def _run(self) -> None:
        while True:
            array, settled = self._work.get()
            error: BaseException | None = None
            try:
                if array is None:
                    self._close()
                else:
                    self._insert(array)
            except BaseException as failed:
                error = failed
            if settled is not None:
                with contextlib.suppress(RuntimeError):  # its loop closed meanwhile
                    settled.get_loop().call_soon_threadsafe(_settle, settled, error)
            if array is None:
                return

    def _insert(self, array: str) -> None:
        if self._connection is None:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            sqlite_pragmas(connection, busy_timeout_ms=self.busy_timeout_ms)
            self._connection = connection
        try:
            self._connection.execute(INSERT_SQLITE, (array,))
        except sqlite3.Error:
            self._close()
            raise

    def interrupt(self) -> None:
        """From the event loop: stop the statement running in the thread, if any (a wait for a
        lock goes on to SQLite's busy timeout, the watchdog's length)."""
        connection = self._connection
        if connection is not None:
            # Closed meanwhile by the thread (its statement failed at the busy timeout, the
            # watchdog's length): nothing left to stop.
            with contextlib.suppress(sqlite3.ProgrammingError):
                connection.interrupt()

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(sqlite3.Error):
                connection.close()
