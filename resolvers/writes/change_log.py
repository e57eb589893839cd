"""The change log of a unit of work: typed changes, kept as audit events, handed to consumers.

A write appends one `Change` per thing it changed (`resolvers.writes.events` builds them). When the
write is done, the unit of work stores the log as audit events, which gives each change its
event id, and hands the `Recorded` changes to every registered `ChangeConsumer` twice: inside
the transaction (so what a consumer writes commits or rolls back with the change) and after
the commit (to announce it). Consumers are registered in one place
(`notifications.channels.consumers`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from models.database import insert_rows
from models.tables import AuditEvent, ChangeKind, utcnow
from permissions.principal import Principal

_TABLE: sa.Table = AuditEvent.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass


class FieldChange(NamedTuple):
    """One field's value before and after, as the history shows it (text, or None)."""

    field: str
    before: str | None
    after: str | None


@dataclass(frozen=True, slots=True)
class Change:
    """One change to the CPL: what happened to which device, firmware, pathway or prerequisite,
    and why."""

    action: ChangeKind
    device_id: int
    changes: tuple[FieldChange, ...]
    reason: str | None = None
    firmware_id: int | None = None
    pathway_id: int | None = None
    prerequisite_id: int | None = None


class Recorded(NamedTuple):
    """A stored change, as its consumers see it: its event id, device and kind, and the change
    itself (what a consumer that works out its consequences reads)."""

    id: int
    device_id: int
    action: str
    change: Change | None = None


class ChangeConsumer(Protocol):
    """A channel the CPL's changes go to: the webhook outbox, a change bus, ..."""

    async def in_transaction(self, session: AsyncSession, recorded: Sequence[Recorded]) -> None:
        """Inside the writer's transaction, after the changes are stored; must not commit."""

    def after_commit(self, recorded: Sequence[Recorded]) -> None:
        """Once the changes are committed; never called for a write that rolled back."""


@dataclass
class ChangeLog:
    """The changes one unit of work makes, in the order it made them."""

    changes: list[Change] = field(default_factory=list)
    recorded: list[Recorded] = field(default_factory=list)  # once stored, with their ids

    def append(self, change: Change) -> None:
        self.changes.append(change)

    def extend(self, changes: Sequence[Change]) -> None:
        self.changes.extend(changes)

    async def store(self, session: AsyncSession, actor: Principal) -> list[Recorded]:
        """Write the changes as audit events, in a few statements whatever their number (a
        file import records tens of thousands), and return them with their ids, in order."""
        if not self.changes:
            return []
        occurred_at = utcnow()
        rows = [
            {
                "occurred_at": occurred_at,
                "action": change.action.value,
                "reason": change.reason,
                "actor_sub": actor.sub,
                "actor_party_id": actor.party_id,
                "actor_party_category": actor.party_category.value,
                "device_id": change.device_id,
                "firmware_id": change.firmware_id,
                "pathway_id": change.pathway_id,
                "prerequisite_id": change.prerequisite_id,
                "changes": [entry._asdict() for entry in change.changes],
            }
            for change in self.changes
        ]
        ids = await insert_rows(session, _TABLE, rows)
        self.recorded = [
            Recorded(event_id, change.device_id, change.action.value, change)
            for event_id, change in zip(ids, self.changes, strict=True)
        ]
        return self.recorded
