"""The data revision's clock: trusted for `max_age`, read ahead past half of it so that no
request waits for the read under load, and read afresh after this process commits."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

import models.database
import models.revision
from models.revision import RevisionClock


class FakeDatabase:
    """`data_revision` by hand: each read waits until released, and counts."""

    def __init__(self) -> None:
        self.revision = 1
        self.reads = 0
        self.failing = False
        self.release = asyncio.Event()
        self.release.set()

    async def data_revision(self, engine: object) -> int:
        self.reads += 1
        await self.release.wait()
        if self.failing:
            raise OSError("database down")
        return self.revision


@pytest.fixture
def database(monkeypatch) -> FakeDatabase:
    fake = FakeDatabase()
    monkeypatch.setattr(models.revision, "data_revision", fake.data_revision)
    return fake


def clock_at(now: list[float]) -> RevisionClock:
    return RevisionClock(engine=None, max_age=1.0, clock=lambda: now[0])  # type: ignore[arg-type]


async def settled() -> None:
    """Let every task that is ready run, a few turns of the loop over: the fake database does
    no I/O, so what it was released for is done by then. Turns, not time: never a sleep of a
    guessed length."""
    for _ in range(10):
        await asyncio.sleep(0)


async def read_then_held(database: FakeDatabase, now: list[float], revision: int) -> RevisionClock:
    """A clock that has read once; then a write to `revision`, and the next read held."""
    clock = clock_at(now)
    await clock.current()
    database.revision = revision
    database.release.clear()
    return clock


async def test_within_half_its_age_the_revision_is_not_read_again(database):
    now = [100.0]
    clock = clock_at(now)
    assert await clock.current() == 1 and database.reads == 1
    now[0] += 0.4
    database.revision = 2
    assert await clock.current() == 1 and database.reads == 1


async def test_past_half_its_age_it_is_read_ahead_while_requests_use_it(database):
    now = [100.0]
    clock = await read_then_held(database, now, 2)
    now[0] += 0.6
    # Nobody waits: the revision still in date is answered (while the read is held, so an
    # answer that waited for it would never come), one read starts behind it.
    answers = [asyncio.ensure_future(clock.current()) for _ in range(2)]
    await settled()
    assert [answer.result() for answer in answers] == [1, 1]
    assert database.reads == 2
    database.release.set()
    await settled()
    assert await clock.current() == 2 and database.reads == 2


async def test_past_its_age_requests_wait_for_the_read(database):
    now = [100.0]
    clock = await read_then_held(database, now, 3)
    now[0] += 1.5
    waiting = [asyncio.ensure_future(clock.current()) for _ in range(3)]
    await settled()
    assert not any(w.done() for w in waiting)
    database.release.set()
    assert await asyncio.gather(*waiting) == [3, 3, 3] and database.reads == 2


async def test_a_failed_read_ahead_is_for_the_next_request_past_its_age(database):
    now = [100.0]
    clock = clock_at(now)
    await clock.current()
    database.failing = True
    now[0] += 0.6
    assert await clock.current() == 1
    await settled()  # the read ahead failed; nothing raised, nothing logged
    now[0] += 0.6
    with pytest.raises(OSError):
        await clock.current()


async def test_after_a_commit_here_the_next_request_reads_afresh(database):
    now = [100.0]
    clock = clock_at(now)
    await clock.current()
    database.revision = 4
    clock.invalidate()
    assert await clock.current() == 4 and database.reads == 2


async def test_sqlite_reads_it_in_this_thread_and_falls_back_when_it_cannot(database, tmp_path):
    path = tmp_path / "cpl.db"
    engine = models.database.create_engine(f"sqlite+aiosqlite:///{path}")
    now = [100.0]
    clock = RevisionClock(engine, max_age=1.0, clock=lambda: now[0])
    assert await clock.current() == 1 and database.reads == 1  # no table yet: the usual read
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE data_revision (id INTEGER PRIMARY KEY, revision INTEGER)")
        db.execute("INSERT INTO data_revision VALUES (1, 7)")
    now[0] += 1.5
    assert await clock.current() == 7 and database.reads == 1  # read here, nothing awaited
    with sqlite3.connect(path) as db:
        db.execute("UPDATE data_revision SET revision = 8")
    now[0] += 0.9
    assert await clock.current() == 7  # still in date: not read again, ahead or otherwise
    now[0] += 0.2
    assert await clock.current() == 8 and database.reads == 1
    clock.close()
    await engine.dispose()
