"""Change notifications between the writer's commit and every subscriber, in every process.

On PostgreSQL the writer sends `pg_notify` inside its transaction, so the notification leaves
only if the change commits (through a transaction pooler too: NOTIFY belongs to the
transaction), and every API process LISTENs on a dedicated connection to PostgreSQL itself
(`CPL_DATABASE_DIRECT_URL`: LISTEN holds a session, which a transaction pooler would hand to
another client) that reconnects and re-listens. The payload is the event id only (NOTIFY
payloads must be small); subscribers read the event from the database. On SQLite (one process)
an in-process fan-out after commit does the same job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import cast

import asyncpg
import sqlalchemy as sa
from sqlalchemy import func
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from config import metrics
from models.database import chunks, connect_asyncpg, is_sqlite
from models.tables import AuditEvent
from notifications.outages import OutageLog

logger = logging.getLogger("cpl_pathways.bus")
CHANNEL = "cpl_changes"
LISTENER_NAME = "cpl-pathways-listener"  # how operators find the connection in pg_stat_activity
QUEUE_SIZE = 1_000


class ChangeBus:
    """In-process fan-out of committed event ids to subscribers (the SQLite bus)."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[int]] = set()
        self._watchers: list[Callable[[], None]] = []

    def watch(self, changed: Callable[[], None]) -> None:
        """Call `changed()` whenever committed changes reach this process: on PostgreSQL, the
        revision clock forgets its revision, so another process's write is in this one's next
        answer instead of after the clock's `max_age`."""
        self._watchers.append(changed)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    @property
    def connected(self) -> bool:
        """Whether changes committed by any process reach this one's subscribers now."""
        return True

    @property
    def subscribers(self) -> int:
        """How many subscriptions this process is feeding now."""
        return len(self._queues)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[int]]:
        queue: asyncio.Queue[int] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)

    async def in_transaction(self, session: AsyncSession, event_id: int) -> None:
        """Called inside the writer's transaction; the in-process bus waits for the commit."""

    async def in_transaction_many(self, session: AsyncSession, event_ids: Sequence[int]) -> None:
        """`in_transaction` for many events at once, in their order."""
        for event_id in event_ids:
            await self.in_transaction(session, event_id)

    def after_commit(self, event_ids: Iterable[int]) -> None:
        self.fan_out(event_ids)

    def fan_out(self, event_ids: Iterable[int]) -> None:
        for changed in self._watchers:
            changed()
        for event_id in event_ids:
            for queue in list(self._queues):
                if queue.full():
                    # A subscriber that stopped reading loses its oldest events, never the bus.
                    queue.get_nowait()
                queue.put_nowait(event_id)


class PostgresChangeBus(ChangeBus):
    """LISTEN/NOTIFY across every process sharing the database: `url` is where it listens
    (PostgreSQL itself), `sessions` the pool it reads and notifies through."""

    def __init__(
        self,
        url: str,
        sessions: async_sessionmaker[AsyncSession],
        retry_seconds: float = 1.0,
        retry_max_seconds: float = 30.0,
    ) -> None:
        super().__init__()
        self._url = make_url(url)
        self._sessions = sessions
        self._retry = retry_seconds
        self._retry_max = max(retry_seconds, retry_max_seconds)
        self._outages = OutageLog(logger, "change listener")
        self.pause = asyncio.sleep  # the wait between attempts (a test's records the delays)
        self._task: asyncio.Task[None] | None = None
        self._last_seen: int | None = None
        self.listening = asyncio.Event()

    async def start(self) -> None:
        async with self._sessions() as session:
            self._last_seen = (await session.exec(select(func.max(AuditEvent.id)))).one() or 0
        self._task = asyncio.create_task(self._listen_forever(), name="cpl-change-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def connected(self) -> bool:
        return self.listening.is_set()

    async def in_transaction(self, session: AsyncSession, event_id: int) -> None:
        await session.exec(select(func.pg_notify(CHANNEL, str(event_id))))

    async def in_transaction_many(self, session: AsyncSession, event_ids: Sequence[int]) -> None:
        """One statement per 5,000 events: a file import writes tens of thousands of them."""
        for chunk in chunks(event_ids):
            await session.exec(  # type: ignore[call-overload]  # exec() types only sqlmodel's select()
                sa.text(
                    "SELECT pg_notify(:channel, CAST(t.id AS text)) "
                    "FROM unnest(CAST(:ids AS integer[])) WITH ORDINALITY AS t(id, n) ORDER BY t.n"
                ),
                params={"channel": CHANNEL, "ids": list(chunk)},
            )

    def after_commit(self, event_ids: Iterable[int]) -> None:
        """Nothing to do: the notification reaches this process through LISTEN like any other."""

    def _on_notify(self, _connection: object, _pid: int, _channel: str, payload: object) -> None:
        if isinstance(payload, str) and payload.isdigit() and int(payload) > (self._last_seen or 0):
            # Writers are serialised, so events commit, and are notified, in id order.
            self._last_seen = int(payload)
            self.fan_out([self._last_seen])

    async def _connect(self) -> asyncpg.Connection:
        return await connect_asyncpg(self._url, LISTENER_NAME)

    async def _listen_forever(self) -> None:
        """Listen, and reconnect when the connection goes: at once, then after `retry_seconds`,
        doubling while the database stays away up to `retry_max_seconds` (an hour's outage is a
        few hundred attempts per process, and two log lines: `OutageLog`)."""
        connected_before = False
        delay = self._retry
        while True:
            connection = None
            try:
                connection = await self._connect()
                await connection.add_listener(CHANNEL, self._on_notify)
                await self._catch_up()
                self.listening.set()
                self._outages.succeeded()
                delay = self._retry
                if connected_before:
                    metrics.LISTENER_RECONNECTS.inc()
                connected_before = True
                while not connection.is_closed():
                    await asyncio.sleep(self._retry)
                    await connection.execute("SELECT 1")  # notices a dead connection
            except asyncio.CancelledError:
                raise
            except Exception as error:  # any failure: reconnect
                self._outages.failed(error)
            finally:
                self.listening.clear()
                if connection is not None and not connection.is_closed():
                    with contextlib.suppress(Exception):
                        await connection.close()
            await self.pause(delay)
            if self._outages.failures:
                delay = min(delay * 2, self._retry_max)

    async def _catch_up(self) -> None:
        """Events committed while this process was not listening, in order, once each."""
        async with self._sessions() as session:
            committed = (
                await session.exec(
                    select(col(AuditEvent.id))
                    .where(col(AuditEvent.id) > (self._last_seen or 0))
                    .order_by(col(AuditEvent.id))
                )
            ).all()
        # Primary keys: never NULL, though the model's `id` is Optional until a row is flushed.
        last_seen = self._last_seen or 0
        missed = [event_id for event_id in cast(Sequence[int], committed) if event_id > last_seen]
        if missed:
            self._last_seen = missed[-1]
            self.fan_out(missed)


def change_bus(
    url: str,
    sessions: async_sessionmaker[AsyncSession],
    retry_seconds: float = 1.0,
    retry_max_seconds: float = 30.0,
) -> ChangeBus:
    """The bus for the database at `url`, where a PostgreSQL listener connects: give it
    `Settings.direct_url`, never a transaction pooler's."""
    if is_sqlite(url):
        return ChangeBus()
    return PostgresChangeBus(url, sessions, retry_seconds, retry_max_seconds)
