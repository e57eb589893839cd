"""`python -m tests.apply_due DATABASE_URL YYYY-MM-DD`: one process applying the withdrawals due
on that day, with the server's own unit of work and consumers and a clock set to 00:00 UTC of
it; prints how many it applied. The two-process test runs two at once."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, date, datetime, time

from models.database import create_engine, session_factory
from notifications.bus import change_bus
from notifications.channels import consumers
from resolvers.writes.unit_of_work import UnitOfWork
from resolvers.writes.withdrawals import apply_due


async def main(url: str, day: date) -> None:
    engine = create_engine(url)
    sessions = session_factory(engine)
    midnight = datetime.combine(day, time(), tzinfo=UTC)
    writes = UnitOfWork(sessions, consumers(change_bus(url, sessions)), clock=lambda: midnight)
    try:
        print(await apply_due(writes, sessions), flush=True)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], date.fromisoformat(sys.argv[2])))
