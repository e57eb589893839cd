"""Keyset pagination by id, with the total count of every page of the same filter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import func
from sqlmodel import select

from models.database import RequestSession

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    total: int
    rows: list[T]
    has_next: bool


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
    total = (await db.fetch(select(func.count()).select_from(model).where(*conditions)))[0]
    if cursor_id is not None:
        conditions = [*conditions, model.id < cursor_id if newest_first else model.id > cursor_id]
    order = model.id.desc() if newest_first else model.id
    rows = await db.fetch(select(model).where(*conditions).order_by(order).limit(first + 1))
    return Page(total=total, rows=rows[:first], has_next=len(rows) > first)
