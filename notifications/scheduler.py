"""What happens on a day rather than on a request: announced withdrawals applied when their day
comes (`resolvers.writes.withdrawals.apply_due`), and each DIGEST webhook's daily digest
(`notifications.digests`), both by the unit of work's clock.

Every process runs a scheduler; none relies on its own timer for exactly once. Each pass claims
what is due in the database (a conditional UPDATE per withdrawal, in its unit of work), so with
several processes each thing is done by whichever claims it first, once, and a process that is
down simply leaves it to the others or to its next pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from notifications.digests import send_due_digests
from notifications.outages import OutageLog
from resolvers.writes.unit_of_work import UnitOfWork
from resolvers.writes.withdrawals import apply_due

logger = logging.getLogger("cpl_pathways.scheduler")


class Scheduler:
    """Applies what is due every `poll_seconds`, by the unit of work's clock; sends digests from
    `digest_hour` (UTC)."""

    def __init__(
        self,
        writes: UnitOfWork,
        sessions: async_sessionmaker[AsyncSession],
        poll_seconds: float,
        digest_hour: int = 6,
    ) -> None:
        self._writes = writes
        self._sessions = sessions
        self._poll = poll_seconds
        self._digest_hour = digest_hour
        self._outages = OutageLog(logger, "scheduler")
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        """One pass: how many withdrawals this process applied."""
        return await apply_due(self._writes, self._sessions)

    async def send_digests(self) -> int:
        """One pass of the digests: how many webhooks' days this process claimed."""
        return await send_due_digests(self._sessions, self._writes.clock(), self._digest_hour)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
                await self.send_digests()
                self._outages.succeeded()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a database blip must not end the schedule for good
                self._outages.failed(error)
            await asyncio.sleep(self._poll)

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="scheduler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
