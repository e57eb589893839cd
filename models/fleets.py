"""A Supplier's stored fleet: the commercial data of its Party, which only that Party reads.

Kept apart from the CPL's own tables: a fleet refers to the CPL's devices, but nothing of the
CPL refers to it, and no export, history or notification reads it; nor does replacing it move
the CPL's data revision (`resolvers.writes.unit_of_work`: a caller-scoped write). One
`StoredFleet` row per Party (its id stays the same across replacements, so an idempotent retry
finds it), and its groups: meters by (device, firmware version), never a row per meter.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.tables import UTCDateTime, utcnow


class StoredFleet(SQLModel, table=True):
    """Whose fleet, and when it was last replaced (whole)."""

    __tablename__ = "stored_fleet"

    id: int | None = Field(default=None, primary_key=True)
    party_id: str = Field(sa_column=sa.Column(sa.String(200), nullable=False, unique=True))
    replaced_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    # 1 when first stored, one more at each replacement: the fleet's own revision, which keys
    # the cached answers that read it (`myFleet`), since a replacement moves no data revision.
    revision: int = Field(default=1, nullable=False)


class FleetGroup(SQLModel, table=True):
    """Meters of one fleet on one device and firmware version (the version as the CPL writes
    it: 8 hexadecimal digits, upper case). Indexed by device and version too, so that a change
    to a firmware finds the fleets that use it."""

    __tablename__ = "fleet_group"
    __table_args__ = (
        sa.UniqueConstraint("fleet_id", "device_id", "firmware_version"),
        sa.Index("ix_fleet_group_device_version", "device_id", "firmware_version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    fleet_id: int = Field(
        sa_column=sa.Column(
            sa.Integer(), sa.ForeignKey("stored_fleet.id", ondelete="CASCADE"), nullable=False
        )
    )
    device_id: int = Field(foreign_key="device.id")
    firmware_version: str = Field(sa_column=sa.Column(sa.String(8), nullable=False))
    meter_count: int = Field(nullable=False)


class FleetPremisesShape(SQLModel, table=True):
    """`premises_count` premises of one fleet that share a shape: `devices` is the shape, a
    list of `[device id, firmware version]` in the order given (a premises plan names its
    devices by that order), each version normalised as a group's. Kept in its fleet's order
    (`position`, from 0). Not indexed by device: a firmware's change finds fleets by their
    groups only (`resolvers.planning.impact` does not read premises yet)."""

    __tablename__ = "fleet_premises"
    __table_args__ = (sa.UniqueConstraint("fleet_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    fleet_id: int = Field(
        sa_column=sa.Column(
            sa.Integer(), sa.ForeignKey("stored_fleet.id", ondelete="CASCADE"), nullable=False
        )
    )
    position: int = Field(nullable=False)
    premises_count: int = Field(nullable=False)
    devices: list[list[int | str]] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
