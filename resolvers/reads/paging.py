"""Keyset pagination by id, with the total count of every page of the same filter, counted only
when someone asks for it (a COUNT is a statement of its own)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import func
from sqlmodel import select

from models.database import RequestSession

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: list[T]
    has_next: bool
    count: Callable[[], Awaitable[int]]  # the total of every page of the filter


async def page_of(
    db: RequestSession,
    model: Any,
    conditions: list[Any],
    first: int,
    cursor_id: int | None,
    *,
    newest_first: bool = False,
) -> Page[Any]:
    """One page of `model` rows after the row `cursor_id`, in id order (or newest first).

    Keyset rather than offset pagination: a page costs the same however deep it is, and rows
    added meanwhile never shift a page under the reader.
    """

    async def count() -> int:
        return (await db.fetch(select(func.count()).select_from(model).where(*conditions)))[0]

    after = conditions
    if cursor_id is not None:
        after = [*conditions, model.id < cursor_id if newest_first else model.id > cursor_id]
    order = model.id.desc() if newest_first else model.id
    rows = await db.fetch(select(model).where(*after).order_by(order).limit(first + 1))
    return Page(rows=rows[:first], has_next=len(rows) > first, count=count)
