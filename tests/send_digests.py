"""`python -m tests.send_digests DATABASE_URL YYYY-MM-DDTHH:MM`: one process's scheduler pass
of the daily digests at that UTC moment (the hour 0, so any moment of the day is due); prints
how many webhooks' days it claimed. The two-process test runs two at once."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime

from models.database import create_engine, session_factory
from notifications.digests import send_due_digests


async def main(url: str, moment: datetime) -> None:
    engine = create_engine(url)
    try:
        print(await send_due_digests(session_factory(engine), moment, 0), flush=True)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], datetime.fromisoformat(sys.argv[2]).replace(tzinfo=UTC)))
