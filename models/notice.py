"""Notice of what a change does to Suppliers' fleets, and withdrawals announced before they take
effect.

`FleetImpact` rows are written in the change's own transaction (one per event and Party whose
stored fleet the event touches) and read only for that Party: its subscription events, its
webhook deliveries and its `onlyMyFleet` filter. `ScheduledWithdrawal` holds a withdrawal announced
for a later day until a process claims it (`applied_at`, set by one conditional UPDATE).
`WebhookDigest` is a webhook's daily digest, claimed once a day by one process (its unique
(webhook, day)).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.tables import UTCDateTime, utcnow


class FleetImpact(SQLModel, table=True):
    """What one event did to one Party's stored fleet, in meters (never to anyone else's)."""

    __tablename__ = "fleet_impact"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "party_id"),
        sa.Index("ix_fleet_impact_party_event", "party_id", "event_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="audit_event.id")
    party_id: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    affected_meters: int = Field(nullable=False)
    newly_blocked_meters: int = Field(nullable=False)
    newly_upgradable_meters: int = Field(nullable=False)


class ScheduledWithdrawal(SQLModel, table=True):
    """A withdrawal of a firmware or a pathway announced for `effective_on` (00:00 UTC), by
    `actor_*`; `applied_at` is set once, by the process that claims it."""

    __tablename__ = "scheduled_withdrawal"
    __table_args__ = (sa.Index("ix_scheduled_withdrawal_due", "applied_at", "effective_on"),)

    id: int | None = Field(default=None, primary_key=True)
    device_id: int = Field(foreign_key="device.id")
    firmware_id: int | None = Field(default=None, foreign_key="firmware.id")
    pathway_id: int | None = Field(default=None, foreign_key="upgrade_pathway.id")
    effective_on: date = Field(sa_column=sa.Column(sa.Date(), nullable=False))
    reason: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    actor_sub: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    actor_party_id: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    actor_party_category: str = Field(sa_column=sa.Column(sa.String(24), nullable=False))
    actor_manufacturer_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(4)))
    scheduled_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    applied_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))


class WebhookDigest(SQLModel, table=True):
    """A DIGEST webhook's digest of one UTC day: the row is the claim (one per webhook and day,
    whichever process inserts it first), `body` what is sent (null: nothing changed, nothing
    sent). `last_event_id` is where the next day's digest carries on from."""

    __tablename__ = "webhook_digest"
    __table_args__ = (sa.UniqueConstraint("webhook_id", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    webhook_id: int = Field(
        sa_column=sa.Column(
            sa.Integer(), sa.ForeignKey("webhook.id", ondelete="CASCADE"), nullable=False
        )
    )
    day: date = Field(sa_column=sa.Column(sa.Date(), nullable=False))
    since: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    last_event_id: int | None = Field(default=None)
    body: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON()))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
