"""Pausing the cyclic garbage collector around a synchronous bulk build.

Checking a fleet, building its devices' graphs and planning it, and reading a fleet file each
build tens of thousands of small objects that all survive; this is the one switch they share.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around a synchronous bulk build (never an await).

    Building a hundred thousand small objects that all survive would otherwise trigger repeated
    full collections over an already large heap (the CPL snapshot itself): measured, that
    doubled the time of a cold load of the graphs and of a 50,000-item plan. None of these
    objects form cycles, and no other coroutine can run inside the block, so nothing else sees
    the pause.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
