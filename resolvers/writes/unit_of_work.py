"""The unit of work: the one way every write runs, from its first statement to its announcement.

1. **Begin**: open a transaction and take the data revision (bump its counter first). That
   serialises writers (a row lock on PostgreSQL, the write lock on SQLite) and gives caches a
   number that changes with every committed write of the CPL. A caller-scoped write (a Party's
   own stored fleet or webhooks, which no other Party reads) takes the same lock but leaves the
   counter as it is: every Party's cached answers and ETags are keyed on it, and a Party must
   not be able to count another's fleet uploads or webhook changes by watching them move.
2. **Idempotency**: a retried request under a known key returns its first result, re-authorised,
   and writes nothing (`resolvers.writes.idempotency`).
3. **Change**: the write runs with a `Work`: the session, the caller, the caller's row scope and
   the change log it appends its `Change`s to.
4. **Record**: the change log is stored as audit events and handed to every consumer inside the
   transaction (webhook outbox rows, PostgreSQL's NOTIFY).
5. **Commit**, then **announce**: the revision clock is told (not after a caller-scoped
   write: nothing it reads has changed), and every consumer's `after_commit` runs (the
   in-process bus, the dispatcher's wake-up).

A failure anywhere before the commit rolls everything back, consumers' writes included.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from models.revision import RevisionClock
from models.tables import DataRevision, utcnow
from permissions.principal import Principal
from permissions.row_scopes import Scope
from resolvers.writes.change_log import ChangeConsumer, ChangeLog, Recorded

T = TypeVar("T")


@dataclass
class Work:
    """What a write is given: its transaction's session, who asks, on whose rows it may act,
    and the change log it records each change in."""

    session: AsyncSession
    principal: Principal
    scope: Scope
    log: ChangeLog = field(default_factory=ChangeLog)
    discarded: bool = False
    now: datetime = field(default_factory=utcnow)  # the unit of work's clock, when it began

    def discard(self) -> None:
        """Roll back instead of committing when the write returns (a dry run, a refused file):
        nothing it did is kept, and nothing is announced."""
        self.discarded = True


class Idempotent(Protocol[T]):
    """How a unit of work recognises a retry (`resolvers.writes.idempotency.IdempotencyKey`)."""

    async def recall(self, work: Work) -> T | None:
        """The first result under this key, or None when the key is new."""

    def remember(self, work: Work, result: T) -> None:
        """Keep `result` under the key, in the write's own transaction."""


class _Finished(Exception, Generic[T]):
    """Leave the transaction, rolling it back, with the result to return."""

    def __init__(self, result: T) -> None:
        self.result = result


async def take_revision(session: AsyncSession, cpl: bool) -> None:
    """Lock the data revision's row, a write's first statement, which makes it the only
    writer; bump the revision if the write changes the CPL (`cpl`), else leave its value."""
    await session.exec(
        update(DataRevision)
        .where(col(DataRevision.id) == 1)
        .values(revision=DataRevision.revision + (1 if cpl else 0))
    )


class UnitOfWork:
    """Runs writes; `consumers` are the change log's channels, in the order they are told."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        consumers: Sequence[ChangeConsumer],
        revision: RevisionClock | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._consumers = tuple(consumers)
        self._revision = revision
        self.clock = clock  # what a write takes as now (`Work.now`); a test may set another

    async def run(
        self,
        principal: Principal,
        scope: Scope,
        write: Callable[[Work], Awaitable[T]],
        idempotency: Idempotent[T] | None = None,
        *,
        cpl: bool = True,
    ) -> T:
        """Run `write` as one transaction and return its result (or, for a retry, the first).
        `cpl=False` for a caller-scoped write: the data revision stays, and the write may
        record no change (a change of the CPL would then be in no cached answer)."""
        async with self._sessions() as session:
            try:
                async with session.begin():
                    await take_revision(session, cpl)
                    work = Work(session, principal, scope, now=self.clock())
                    if idempotency is not None:
                        earlier = await idempotency.recall(work)
                        if earlier is not None:
                            raise _Finished(earlier)
                    result = await write(work)
                    if work.discarded:
                        raise _Finished(result)
                    if idempotency is not None:
                        idempotency.remember(work, result)
                    if not cpl and work.log.changes:
                        raise RuntimeError("a caller-scoped write recorded a change of the CPL")
                    recorded = await work.log.store(session, principal)
                    for consumer in self._consumers if recorded else ():
                        await consumer.in_transaction(session, recorded)
            except _Finished as finished:
                return finished.result
        self._announce(recorded, cpl)
        return result

    def _announce(self, recorded: list[Recorded], cpl: bool) -> None:
        if cpl and self._revision is not None:
            self._revision.invalidate()
        for consumer in self._consumers if recorded else ():
            consumer.after_commit(recorded)
