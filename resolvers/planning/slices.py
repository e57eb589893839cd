"""CPU-heavy work in slices, so that the event loop serves everyone else between them.

A fleet plan of 50,000 items is seconds of pure Python. Run in one go it holds the event loop
for all of it: every other request of the process waits, however trivial. The passes over the
items are written as generators that `yield` every `SLICE` items (they stay plain functions
with no asyncio in them), and `in_slices` runs one slice at a time with an `await` between.

Why slices and not elsewhere: a thread (`asyncio.to_thread`) still holds the GIL for pure
Python, and a process pool would pickle the CPL snapshot and the items both ways, which costs
more than the plan. A slice keeps the work in this process's memory, and its only cost is a
loop turn per slice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import TypeVar

from resolvers.planning.collector import collector_paused

__all__ = ["SLICE", "Sliced", "in_slices"]

T = TypeVar("T")
SLICE = 2_000  # items between two turns of the loop: a few milliseconds of work
Sliced = Generator[None, None, T]  # yields between slices, returns the result


async def in_slices(work: Sliced[T]) -> T:
    """Run `work` to its end, giving the loop a turn between its slices. The collector is
    paused within a slice only (`collector_paused`: never across an await)."""
    while True:
        with collector_paused():
            try:
                next(work)
            except StopIteration as done:
                return done.value
        await asyncio.sleep(0)
