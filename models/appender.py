"""The SSC access log's own connection (`permissions.ssc_access`): one plain INSERT a batch of
entries, its own transaction, on a connection of the process's own to the requests' database
(`CPL_DATABASE_URL`), opened at the first write.

Why not the pool: a session, BEGIN, the statement and COMMIT through SQLAlchemy cost 1.4 M
instructions an entry, twice what the whole cached answer holding the values costs; one
statement on a driver's connection costs a tenth of that. It is as durable: the statement has
committed when it returns, as the COMMIT had.

- **PostgreSQL**: an asyncpg connection (`connect_asyncpg`, secured as the pool's), the
  statement sent by the simple query protocol: one message, one round trip, one transaction
  (with its `statement_timeout`), no prepared statement, so a transaction pooler may be in
  between. With a parameter asyncpg would send two messages (Parse and Describe, then Bind and
  Execute, each ending in Sync), which a transaction pooler may hand to two different server
  connections. So the array goes in the statement's text, dollar-quoted with a tag it does not
  hold (`dollar_quoted`): it is JSON (`json.dumps`, ASCII only), so nothing in it can end the
  constant, whatever an actor's or an operation's name holds.
- **SQLite**: a plain `sqlite3` connection on the same file, set up as the pool's are (WAL,
  foreign keys), in a thread of its own: one hop a batch, where aiosqlite through SQLAlchemy
  took five.

A write that fails drops the connection and raises: the caller refuses its answer, and the
next write connects again. A write that hangs (a table locked, a network stall) fails after
`watchdog` seconds, and the database gives it up then too (SQLite's busy timeout,
PostgreSQL's statement timeout), so answers are refused rather than kept waiting. The
connection closes with its engine (`Engine.dispose`), and, gracefully, at shutdown (`close`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from models.database import connect_asyncpg, sqlite_pragmas

ACCESS_LOG_CONNECTION_NAME = "cpl-pathways-access-log"  # application_name in pg_stat_activity
WATCHDOG_SECONDS = 5.0
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
    it holds none, so it ends only where the constant does; nothing inside is an escape."""
    tag, n = "$e$", 0
    while tag in text:
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


class PostgresAppender:
    def __init__(self, url: URL, watchdog: float) -> None:
        self.url = url
        self.watchdog = watchdog
        self._connection: asyncpg.Connection | None = None

    async def append(self, array: str) -> None:
        try:
            async with asyncio.timeout(self.watchdog):
                connection = self._connection
                if connection is None or connection.is_closed():  # lost while idle: noticed
                    self.drop()
                    connection = self._connection = await connect_asyncpg(
                        self.url, ACCESS_LOG_CONNECTION_NAME, statement_cache_size=0
                    )
                await connection.execute(
                    INSERT_POSTGRESQL.format(
                        timeout_ms=int(self.watchdog * 1000), entries=dollar_quoted(array)
                    )
                )
        except BaseException:
            self.drop()  # whatever state it was left in (a statement cut off): not reused
            raise

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.close(timeout=self.watchdog)
            except Exception:
                connection.terminate()

    def drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.terminate()


class SqliteAppender:
    """Writes in a thread of its own (`SqliteWriter`), made at the first write and ended with
    its connection (`drop`, `close`): a write cut off by the watchdog finishes, or fails, in
    that thread before the next write starts there, and a dropped thread's connection is
    closed after it, never a newer one's."""

    def __init__(self, path: str, watchdog: float) -> None:
        self.path = path
        self.watchdog = watchdog
        self._writer: SqliteWriter | None = None

    async def append(self, array: str) -> None:
        if self._writer is None:
            self._writer = SqliteWriter(self.path, self.watchdog)
        writer = self._writer
        written = writer.thread.submit(writer.insert, array)
        try:
            async with asyncio.timeout(self.watchdog):
                await asyncio.wrap_future(written)  # given up: cancelled unless already begun
        except BaseException:
            if not written.done():
                writer.interrupt()  # begun, still running: stopped where it is
            raise

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            await asyncio.get_running_loop().run_in_executor(writer.thread, writer.close)
            writer.thread.shutdown(wait=False)

    def drop(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.thread.submit(writer.close)  # after a write still running, if any
            writer.thread.shutdown(wait=False)


class SqliteWriter:
    """A thread and its connection, set up as the pool's are (`sqlite_pragmas`), its busy
    timeout the watchdog's."""

    def __init__(self, path: str, watchdog: float) -> None:
        self.path = path
        self.busy_timeout_ms = int(watchdog * 1000)
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="cpl-access-log")
        self._connection: sqlite3.Connection | None = None

    def insert(self, array: str) -> None:
        """In the thread."""
        if self._connection is None:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            sqlite_pragmas(connection, busy_timeout_ms=self.busy_timeout_ms)
            self._connection = connection
        try:
            self._connection.execute(INSERT_SQLITE, (array,))
        except sqlite3.Error:
            self.close()
            raise

    def interrupt(self) -> None:
        """From the event loop: stop the statement running in the thread, if any."""
        connection = self._connection
        if connection is not None:
            connection.interrupt()

    def close(self) -> None:
        """In the thread."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(sqlite3.Error):
                connection.close()
