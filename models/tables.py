"""The tables of the Central Products List and the history of every change to it.

Identifiers are stored upper case, exactly as the CPL shows them. Revision and audit columns are
here from the start so that corrections, history and notifications never need a table rebuild.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class DeviceType(enum.Enum):
    ESME = "ESME"
    GSME = "GSME"
    CHF = "CHF"
    GPF = "GPF"
    PPMID = "PPMID"
    IHD = "IHD"
    HCALCS = "HCALCS"
    SAPC = "SAPC"


class ZigbeeBand(enum.Enum):
    BAND_2_4_GHZ = "BAND_2_4_GHZ"
    BAND_868_MHZ = "BAND_868_MHZ"
    DUAL_BAND = "DUAL_BAND"


class FirmwareStatus(enum.Enum):
    ACTIVE = "ACTIVE"
    WITHDRAWN = "WITHDRAWN"


class PathwayStatus(enum.Enum):
    PUBLISHED = "PUBLISHED"
    WITHDRAWN = "WITHDRAWN"


class PredecessorStatement(enum.Enum):
    """What a firmware's CPL submission said of the earlier versions that upgrade to it (MP231):
    it listed them, it said "N/A" (none), or it said nothing (entries listed before MP231, or
    submitted without the data). Only NOT_SUPPLIED leaves a gap the planner must not read as
    "impossible"."""

    LISTED = "LISTED"
    NONE_EARLIER = "NONE_EARLIER"
    NOT_SUPPLIED = "NOT_SUPPLIED"


class ChangeKind(enum.Enum):
    """What a committed change did; the `action` of its audit event and its notification."""

    DEVICE_ADDED = "DEVICE_ADDED"
    FIRMWARE_ADDED = "FIRMWARE_ADDED"
    FIRMWARE_WITHDRAWN = "FIRMWARE_WITHDRAWN"
    PATHWAY_PUBLISHED = "PATHWAY_PUBLISHED"
    PATHWAY_CORRECTED = "PATHWAY_CORRECTED"
    PATHWAY_WITHDRAWN = "PATHWAY_WITHDRAWN"
    ZIGBEE_INFORMATION_CHANGED = "ZIGBEE_INFORMATION_CHANGED"
    FIRMWARE_WITHDRAWAL_SCHEDULED = "FIRMWARE_WITHDRAWAL_SCHEDULED"  # announced for a later day
    PATHWAY_WITHDRAWAL_SCHEDULED = "PATHWAY_WITHDRAWAL_SCHEDULED"
    FIRMWARE_DETAILS_CHANGED = "FIRMWARE_DETAILS_CHANGED"
    PREREQUISITE_DECLARED = "PREREQUISITE_DECLARED"
    PREREQUISITE_WITHDRAWN = "PREREQUISITE_WITHDRAWN"
    DIGEST = "DIGEST"  # webhooks only: a Supplier's daily digest, never an audit event's action


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are UTC on both databases; SQLite forgets the zone, so it is put back on read."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def _enum(cls: type[enum.Enum]) -> sa.Enum:
    # Stored as plain strings (no native PostgreSQL enum types) so adding a value is not a
    # schema migration on one database and a no-op on the other.
    return sa.Enum(cls, native_enum=False, length=24, validate_strings=True)


class Manufacturer(SQLModel, table=True):
    __tablename__ = "manufacturer"

    id: int | None = Field(default=None, primary_key=True)
    identifier: str = Field(sa_column=sa.Column(sa.String(4), nullable=False, unique=True))
    name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    # The Firmware Information Repository's "whom to contact" about this maker's firmware.
    firmware_contact: str | None = Field(default=None, sa_column=sa.Column(sa.String(500)))


class Device(SQLModel, table=True):
    __tablename__ = "device"
    __table_args__ = (
        sa.UniqueConstraint("manufacturer_id", "model_identifier", "hardware_version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    manufacturer_id: int = Field(foreign_key="manufacturer.id", index=True)
    device_type: DeviceType = Field(sa_column=sa.Column(_enum(DeviceType), nullable=False))
    model_identifier: str = Field(sa_column=sa.Column(sa.String(4), nullable=False))
    model_name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    hardware_version: str = Field(sa_column=sa.Column(sa.String(4), nullable=False))
    zigbee_band: ZigbeeBand | None = Field(
        default=None, sa_column=sa.Column(_enum(ZigbeeBand), nullable=True)
    )
    zigbee_stack_version: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(100), nullable=True)
    )
    zigbee_chipset_vendor: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(100), nullable=True)
    )
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )


class Firmware(SQLModel, table=True):
    __tablename__ = "firmware"
    __table_args__ = (
        sa.UniqueConstraint("device_id", "version"),
        sa.UniqueConstraint("cpl_entry_id", name="uq_firmware_cpl_entry_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    device_id: int = Field(foreign_key="device.id", index=True)
    version: str = Field(sa_column=sa.Column(sa.String(8), nullable=False))
    status: FirmwareStatus = Field(
        default=FirmwareStatus.ACTIVE,
        sa_column=sa.Column(_enum(FirmwareStatus), nullable=False),
    )
    image_hash: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    added_to_cpl_on: date = Field(sa_column=sa.Column(sa.Date(), nullable=False))
    withdrawn_on: date | None = Field(default=None, sa_column=sa.Column(sa.Date()))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    # The published CPL entry: its id (unique; None for rows made before ids were kept) and
    # the facts it states.
    cpl_entry_id: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(40), nullable=True)
    )
    gbcs_version: str | None = Field(default=None, sa_column=sa.Column(sa.String(20)))
    smets_chts_version: str | None = Field(default=None, sa_column=sa.Column(sa.String(40)))
    cpa_certificate_reference: str | None = Field(default=None, sa_column=sa.Column(sa.String(100)))
    cpa_certificate_expires_on: date | None = Field(default=None, sa_column=sa.Column(sa.Date()))
    predecessors: PredecessorStatement = Field(
        default=PredecessorStatement.NOT_SUPPLIED,
        sa_column=sa.Column(
            _enum(PredecessorStatement),
            nullable=False,
            server_default=PredecessorStatement.NOT_SUPPLIED.value,
        ),
    )
    # SSC only, like the device's; None means the device's own.
    zigbee_stack_version: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(100), nullable=True)
    )


class UpgradePathway(SQLModel, table=True):
    __tablename__ = "upgrade_pathway"

    id: int | None = Field(default=None, primary_key=True)
    device_id: int = Field(foreign_key="device.id", index=True)
    from_firmware_id: int = Field(foreign_key="firmware.id", index=True)
    to_firmware_id: int = Field(foreign_key="firmware.id", index=True)
    status: PathwayStatus = Field(
        default=PathwayStatus.PUBLISHED,
        sa_column=sa.Column(_enum(PathwayStatus), nullable=False),
    )
    notes: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    revision: int = Field(default=1, nullable=False)
    published_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    published_by: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )


class Prerequisite(SQLModel, table=True):
    """What a firmware needs at the same premises before a device may step onto it: a device of
    another type running one of a set of firmware, or firmware that implements at least a GBCS
    version. Declared by the firmware's own Manufacturer (or SECAS), withdrawn, never deleted.

    The set is a JSON list of firmware ids: it is read whole (by the snapshot, for planning) and
    never searched by member, and firmware rows are never deleted, so no row it names goes
    missing."""

    __tablename__ = "prerequisite"

    id: int | None = Field(default=None, primary_key=True)
    firmware_id: int = Field(foreign_key="firmware.id", index=True)
    requires_device_type: DeviceType = Field(sa_column=sa.Column(_enum(DeviceType), nullable=False))
    requires_firmware_ids: list[int] | None = Field(
        default=None, sa_column=sa.Column(sa.JSON(none_as_null=True))
    )
    requires_gbcs_version: str | None = Field(default=None, sa_column=sa.Column(sa.String(20)))
    status: PathwayStatus = Field(
        default=PathwayStatus.PUBLISHED,
        sa_column=sa.Column(_enum(PathwayStatus), nullable=False),
    )
    declared_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    declared_by: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )


class AuditEvent(SQLModel, table=True):
    """One committed change: who, when, why, and each field's before and after."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    occurred_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False, index=True)
    )
    action: str = Field(sa_column=sa.Column(sa.String(40), nullable=False, index=True))
    reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    actor_sub: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    actor_party_id: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    actor_party_category: str = Field(sa_column=sa.Column(sa.String(24), nullable=False))
    device_id: int = Field(foreign_key="device.id", index=True)
    firmware_id: int | None = Field(default=None, foreign_key="firmware.id", index=True)
    pathway_id: int | None = Field(default=None, foreign_key="upgrade_pathway.id", index=True)
    prerequisite_id: int | None = Field(default=None, foreign_key="prerequisite.id", index=True)
    changes: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False)
    )


class DataRevision(SQLModel, table=True):
    """A single row whose counter every committed write bumps, so caches know when to reload."""

    __tablename__ = "data_revision"

    id: int = Field(default=1, primary_key=True)
    revision: int = Field(default=0, nullable=False)


class IdempotencyRecord(SQLModel, table=True):
    """The first result of a mutation sent with an idempotency key, so a retry can return it.

    Keyed by the caller's whole identity (Party id, category and, for a Manufacturer, its
    identifier), never by the token string: a retry with a fresh token still matches, while two
    callers who share a Party id but not their rights never see each other's results. The hash
    of the input tells a retry from a different request that reused the key.
    """

    __tablename__ = "idempotency_record"
    __table_args__ = (sa.UniqueConstraint("party_id", "party_category", "manufacturer_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    party_id: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    party_category: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    manufacturer_id: str = Field(sa_column=sa.Column(sa.String(4), nullable=False))  # "" if none
    key: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    mutation: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    request_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    result_kind: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    result_id: int = Field(nullable=False)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )


class WebhookStatus(enum.Enum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


class Webhook(SQLModel, table=True):
    """A Party's endpoint for change notifications; it sees and deletes only its own."""

    __tablename__ = "webhook"

    id: int | None = Field(default=None, primary_key=True)
    party_id: str = Field(sa_column=sa.Column(sa.String(200), nullable=False, index=True))
    # The category of the token that registered it: whether its bodies may carry the Party's
    # own fleet impact (`notifications.payloads.fleet_reader`). None: registered before it was kept.
    party_category: str | None = Field(default=None, sa_column=sa.Column(sa.String(40)))
    url: str = Field(sa_column=sa.Column(sa.String(2000), nullable=False))
    secret: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    # None means "every device" / "every kind".
    device_ids: list[int] | None = Field(default=None, sa_column=sa.Column(sa.JSON()))
    kinds: list[str] | None = Field(default=None, sa_column=sa.Column(sa.JSON()))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )


class WebhookDelivery(SQLModel, table=True):
    """The transactional outbox: one row per (webhook, event), written with the change itself,
    or per daily digest, written with its claim."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        sa.UniqueConstraint("webhook_id", "event_id"),
        sa.Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    webhook_id: int = Field(
        sa_column=sa.Column(
            sa.Integer(),
            sa.ForeignKey("webhook.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    # One of the two: the event it announces, or the daily digest it sends (`models.notice`).
    event_id: int | None = Field(default=None, foreign_key="audit_event.id")
    digest_id: int | None = Field(default=None, foreign_key="webhook_digest.id")
    status: WebhookStatus = Field(
        default=WebhookStatus.PENDING, sa_column=sa.Column(_enum(WebhookStatus), nullable=False)
    )
    attempts: int = Field(default=0, nullable=False)
    next_attempt_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    last_attempt_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    last_status_code: int | None = Field(default=None)
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.String(500)))
    delivered_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
