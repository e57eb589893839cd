"""Suppliers' stored fleets

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

One row per Party that has stored a fleet, and the fleet's groups: meters by device and
firmware version (`models/fleets.py`). Only that Party reads them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stored_fleet",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("party_id", sa.String(length=200), nullable=False),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("party_id"),
    )
    op.create_table(
        "fleet_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fleet_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("firmware_version", sa.String(length=8), nullable=False),
        sa.Column("meter_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["device.id"]),
        sa.ForeignKeyConstraint(["fleet_id"], ["stored_fleet.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("fleet_id", "device_id", "firmware_version"),
    )
    with op.batch_alter_table("fleet_group", schema=None) as batch_op:
        batch_op.create_index(
            "ix_fleet_group_device_version", ["device_id", "firmware_version"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("fleet_group", schema=None) as batch_op:
        batch_op.drop_index("ix_fleet_group_device_version")
    op.drop_table("fleet_group")
    op.drop_table("stored_fleet")
