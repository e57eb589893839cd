"""The transactional outbox: a delivery row per interested webhook, written with the change.

Every change the CPL records is an audit event; announcing one is a matter of writing a
`WebhookDelivery` row per interested webhook in the *same* transaction as the change. The
change and its announcements therefore commit or roll back together: no event can be announced
that did not happen, and none that happened can be forgotten. The dispatcher empties it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.database import chunks
from models.tables import Webhook, WebhookDelivery, WebhookStatus, utcnow


class EventLike(Protocol):
    """What the outbox needs of a recorded event: read-only, so a `Recorded` (a NamedTuple)
    fits as well as an `AuditEvent`."""

    @property
    def id(self) -> int | None: ...

    @property
    def device_id(self) -> int: ...

    @property
    def action(self) -> str: ...


async def enqueue_many(session: AsyncSession, events: Sequence[EventLike]) -> int:
    """Add a pending delivery of each event for every webhook that wants it; returns how many.

    Runs inside the writer's transaction, after the events are written, and does not commit:
    the deliveries become visible exactly when the change does, and vanish with it on rollback.
    Webhooks are few, so they are all read once and filtered here rather than with JSON
    operators that differ between SQLite and PostgreSQL; the deliveries are written with one
    Core insert per 5,000 (a file import records tens of thousands of events).
    """
    if any(event.id is None for event in events):
        raise ValueError("enqueue_many needs written audit events (one has no id yet)")
    rows = (await session.exec(select(Webhook.id, Webhook.device_ids, Webhook.kinds))).all()
    now = utcnow()
    deliveries: list[dict[str, Any]] = []
    for webhook_id, device_ids, kinds in rows:
        wanted = set(device_ids) if device_ids is not None else None
        for event in events:
            if wanted is not None and event.device_id not in wanted:
                continue
            if kinds is not None and event.action not in kinds:
                continue
            deliveries.append(
                {
                    "webhook_id": webhook_id,
                    "event_id": event.id,
                    "status": WebhookStatus.PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    table: sa.Table = WebhookDelivery.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
    for chunk in chunks(deliveries):
        await session.exec(sa.insert(table), params=list(chunk))
    return len(deliveries)
