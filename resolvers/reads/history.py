"""The audit log: who changed what, when and why, newest first for auditors."""

from __future__ import annotations

from models.database import RequestSession
from models.tables import AuditEvent
from resolvers.reads.paging import Page, page_of


async def search_audit_events(
    db: RequestSession,
    first: int,
    after: int | None,  # the point of the `after` cursor (resolvers.reads.paging)
    device_id: int | None = None,
    action: str | None = None,
) -> Page[AuditEvent]:
    conditions = []
    if device_id is not None:
        conditions.append(AuditEvent.device_id == device_id)
    if action is not None:
        conditions.append(AuditEvent.action == action)
    return await page_of(db, AuditEvent, conditions, first, after, newest_first=True)
