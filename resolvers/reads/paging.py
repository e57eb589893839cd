"""Relay's cursor connections over lists in id order: keyset pages, forwards (`first`, `after`)
and, over the CPL's snapshot, backwards too (`last`, `before`), with the total count of every
page of the same filter counted only when someone asks for it (a COUNT is a statement of its
own).

A cursor is a *point* on a line that holds every row: a row's id `k` is the point `2k`, and
the place between the rows `k` and `k + 1` (a gap) is `2k + 1` (`schema.ids` writes both as
opaque strings). A row's edge has its row's point as its cursor; a page with no rows has none
to give, so its `startCursor` and `endCursor` name the gap it was asked at: after the row of its
`after` cursor, before the row of its `before`, or the start (going forwards) or the end
(backwards) of the list. A client that loops on `hasNextPage` with `after: endCursor` so goes
on from where it stood, whatever the page size, `first: 0` included, and never starts over from
the top; and going backwards from that page (`before: startCursor`) misses no row.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import func
from sqlmodel import select

from models.database import RequestSession

T = TypeVar("T")
MAX_KEY = 2**31 - 1  # the primary keys are 32-bit integers on both databases
START = 1  # the gap before the row 1: ids start at 1
END = 2 * MAX_KEY + 1  # the gap after the last row there can be


def row_point(pk: int) -> int:
    """The point of the row `pk`: the cursor of its edge."""
    return 2 * pk


def is_row(point: int) -> bool:
    return point % 2 == 0


async def _false() -> bool:
    return False


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: list[T]
    has_next: bool
    # The total of every page of the filter: known (a search of the snapshot counted it), or
    # counted only when asked (a table's).
    count: int | Callable[[], Awaitable[int]]
    # Whether rows come before the page (Relay's `hasPreviousPage`): asked only when selected.
    has_previous: Callable[[], Awaitable[bool]] = field(default=_false)
    position: int = START  # where a page with no rows stands: the gap it was asked at


@dataclass(frozen=True)
class Window:
    """What a page asks for, in Relay's arguments, the cursors as points. At most one of
    `first` and `last` (the schema refuses both); with neither, `first` is the default."""

    first: int | None = None
    after: int | None = None
    last: int | None = None
    before: int | None = None

    @property
    def backwards(self) -> bool:
        return self.last is not None

    def position(self) -> int:
        """The gap an empty page stands at, in ascending order: just after the row of `after`
        going forwards, just before the row of `before` going backwards."""
        if self.backwards:
            point = self.before if self.before is not None else END
            return max(START, point if not is_row(point) else point - 1)
        point = self.after if self.after is not None else 0
        return point if not is_row(point) else point + 1


def window_of(rows: Sequence[Any], window: Window, first: int) -> tuple[list[Any], bool, bool]:
    """(the page's rows, whether rows come before it, whether rows follow it) of `rows`, in
    ascending id order, as Relay's algorithm has it: the cursors cut the list, then `first`
    keeps its start or `last` its end. Where the page size does not say whether rows lie
    beyond a cursor, the list does (Relay lets a server answer it when it can do so cheaply;
    over a list in memory it can). The cursors are found by bisection: a page of a list in
    memory costs the same however long the list."""
    after, before = window.after, window.before
    start = 0 if after is None else bisect_right(rows, after, key=_point)
    end = len(rows) if before is None else bisect_left(rows, before, key=_point)
    count = max(0, end - start)
    if window.last is not None:
        kept = min(window.last, count)
        page = list(rows[end - kept : end]) if kept else []
        return page, count > window.last, end < len(rows)
    size = window.first if window.first is not None else first
    return list(rows[start : start + min(size, count)]), start > 0, count > size


def _point(row: Any) -> int:
    return 2 * row.id


async def page_of(
    db: RequestSession,
    model: Any,
    conditions: list[Any],
    first: int,
    after: int | None,
    *,
    newest_first: bool = False,
) -> Page[Any]:
    """One page of `model` rows after the point `after`, in id order (or newest first).

    Keyset rather than offset pagination: a page costs the same however deep it is, and rows
    added meanwhile never shift a page under the reader. The points turn into bounds on the
    id that never pass the largest key (PostgreSQL's 32-bit parameters).
    """

    async def count() -> int:
        return (await db.fetch(select(func.count()).select_from(model).where(*conditions)))[0]

    async def has_previous() -> bool:
        if after is None:
            return False
        earlier = model.id > (after - 1) // 2 if newest_first else model.id <= after // 2
        return bool(await db.fetch(select(model.id).where(*conditions, earlier).limit(1)))

    later = conditions
    if after is not None:
        bound = model.id <= (after - 1) // 2 if newest_first else model.id > after // 2
        later = [*conditions, bound]
    order = model.id.desc() if newest_first else model.id
    rows = await db.fetch(select(model).where(*later).order_by(order).limit(first + 1))
    if after is None:
        position = END if newest_first else START
    elif newest_first:
        position = max(START, after if not is_row(after) else after - 1)
    else:
        position = after if not is_row(after) else after + 1
    return Page(
        rows=rows[:first],
        has_next=len(rows) > first,
        count=count,
        has_previous=has_previous,
        position=position,
    )
