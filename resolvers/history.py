"""The audit log: who changed what, when and why, newest first for auditors."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import select

from models.database import RequestSession
from models.tables import AuditEvent


@dataclass(frozen=True)
class AuditPage:
    total: int
    events: list[AuditEvent]
    has_next: bool


async def search_audit_events(
    db: RequestSession,
    first: int,
    before_id: int | None,
    device_id: int | None = None,
    action: str | None = None,
) -> AuditPage:
    conditions = []
    if device_id is not None:
        conditions.append(AuditEvent.device_id == device_id)
    if action is not None:
        conditions.append(AuditEvent.action == action)
    total = (await db.fetch(select(func.count()).select_from(AuditEvent).where(*conditions)))[0]
    if before_id is not None:
        conditions.append(AuditEvent.id < before_id)
    rows = await db.fetch(
        select(AuditEvent).where(*conditions).order_by(AuditEvent.id.desc()).limit(first + 1)
    )
    return AuditPage(total=total, events=rows[:first], has_next=len(rows) > first)
