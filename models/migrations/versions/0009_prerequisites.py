"""Prerequisites of firmware at a premises

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08

A firmware may require, at the same premises, a device of another type running one of a set of
firmware, or firmware that implements at least a GBCS version (`prerequisite`); its declaration
and withdrawal are audit events that name it (`audit_event.prerequisite_id`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEVICE_TYPES = ("ESME", "GSME", "CHF", "GPF", "PPMID", "IHD", "HCALCS", "SAPC")


def upgrade() -> None:
    op.create_table(
        "prerequisite",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firmware_id", sa.Integer(), nullable=False),
        sa.Column(
            "requires_device_type",
            sa.Enum(*DEVICE_TYPES, name="devicetype", native_enum=False, length=24),
            nullable=False,
        ),
        sa.Column("requires_firmware_ids", sa.JSON(), nullable=True),
        sa.Column("requires_gbcs_version", sa.String(length=20), nullable=True),
        sa.Column(
            "status",
            sa.Enum("PUBLISHED", "WITHDRAWN", name="pathwaystatus", native_enum=False, length=24),
            nullable=False,
        ),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("declared_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["firmware_id"], ["firmware.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("prerequisite", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_prerequisite_firmware_id"), ["firmware_id"], unique=False
        )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prerequisite_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_audit_event_prerequisite_id"), ["prerequisite_id"], unique=False
        )
        batch_op.create_foreign_key(
            "fk_audit_event_prerequisite_id", "prerequisite", ["prerequisite_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_constraint("fk_audit_event_prerequisite_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_audit_event_prerequisite_id"))
        batch_op.drop_column("prerequisite_id")
    with op.batch_alter_table("prerequisite", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prerequisite_firmware_id"))
    op.drop_table("prerequisite")
