"""The history of every write: its audit event, webhook deliveries and notification.

A write builds its event's column values with one of the builders here and `record`s it inside
its own transaction, so the change, its history, its outbox rows and its notification commit
together or not at all. Events are plain column values written with Core inserts: a file
import records tens of thousands in a few statements (`record_many`), where building ORM
objects would cost more than the import itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from models.database import insert_rows
from models.tables import (
    AuditEvent,
    ChangeKind,
    DeviceType,
    FirmwareStatus,
    PathwayStatus,
    ZigbeeBand,
    utcnow,
)
from notifications import outbox
from permissions.principal import Principal

EVENTS = "cpl.events"
"""session.info key: ids of the events recorded in the session's transaction."""

_TABLE: sa.Table = AuditEvent.__table__  # type: ignore[attr-defined]


def _value(value: Any) -> str | None:
    if value is None or type(value) is str:
        return value
    if isinstance(value, DeviceType | ZigbeeBand | FirmwareStatus | PathwayStatus):
        return value.value
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def changes(
    before: Mapping[str, Any], after: Mapping[str, Any], *, always: bool = False
) -> list[dict[str, str | None]]:
    """Each field's before and after: the changed ones, or with `always` every one given.

    Writes that touch SSC-only fields record them `always`: whether an entry is there must not
    tell a reader who cannot see the values that a guess was right or that a value is unset,
    and an entry naming them hides the event's free-text reason from such readers."""
    found = []
    for field, value in after.items():
        old, new = _value(before.get(field)), _value(value)
        if always or old != new:
            found.append({"field": field, "before": old, "after": new})
    return found


def audit(
    principal: Principal,
    action: ChangeKind,
    device_id: int,
    changed: list[dict[str, str | None]],
    *,
    reason: str | None = None,
    firmware_id: int | None = None,
    pathway_id: int | None = None,
) -> dict[str, Any]:
    """The column values of one audit event."""
    return {
        "occurred_at": utcnow(),
        "action": action.value,
        "reason": reason,
        "actor_sub": principal.sub,
        "actor_party_id": principal.party_id,
        "actor_party_category": principal.party_category.value,
        "device_id": device_id,
        "firmware_id": firmware_id,
        "pathway_id": pathway_id,
        "changes": changed,
    }


def device_added(
    principal: Principal, device_id: int, manufacturer_identifier: str, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """A new device's event; every field is recorded (SSC-only ones included, `always`)."""
    changed = changes({}, {"manufacturer": manufacturer_identifier, **fields}, always=True)
    return audit(principal, ChangeKind.DEVICE_ADDED, device_id, changed)


def firmware_added(
    principal: Principal, firmware_id: int, row: Mapping[str, Any]
) -> dict[str, Any]:
    """A new firmware's event; `row` holds its column values."""
    changed = changes(
        {},
        {
            "version": row["version"],
            "status": row["status"],
            "imageHash": row["image_hash"],
            "addedToCplOn": row["added_to_cpl_on"],
        },
    )
    return audit(
        principal, ChangeKind.FIRMWARE_ADDED, row["device_id"], changed, firmware_id=firmware_id
    )


def pathway_published(
    principal: Principal,
    pathway_id: int,
    row: Mapping[str, Any],
    from_version: str,
    to_version: str,
) -> dict[str, Any]:
    """A new pathway's event; `row` holds its column values."""
    changed = changes(
        {},
        {"from": from_version, "to": to_version, "status": row["status"], "notes": row["notes"]},
    )
    return audit(
        principal, ChangeKind.PATHWAY_PUBLISHED, row["device_id"], changed, pathway_id=pathway_id
    )


class Recorded(NamedTuple):
    """What the outbox needs of a recorded event."""

    id: int
    device_id: int
    action: str


async def record(session: AsyncSession, event: dict[str, Any]) -> int:
    """Write the change's history, its webhook deliveries and its notification, all inside the
    writer's transaction: if the change commits, all of them do; if not, none."""
    return (await record_many(session, [event]))[0]


async def record_many(session: AsyncSession, events: Sequence[dict[str, Any]]) -> list[int]:
    """`record` for many changes at once, in a few statements whatever their number; ids are
    given, and notifications sent, in the events' order."""
    ids = await insert_rows(session, _TABLE, events)
    if not ids:
        return ids
    recorded = [Recorded(i, e["device_id"], e["action"]) for i, e in zip(ids, events, strict=True)]
    await outbox.enqueue_many(session, recorded)
    await session.info["cpl.bus"].in_transaction_many(session, ids)
    session.info.setdefault(EVENTS, []).extend(ids)
    return ids
