"""Fleet impacts and scheduled withdrawals

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

What each change does to each Supplier's stored fleet (a row per event and Party, read by that
Party only), and withdrawals announced for a later day until one process applies them
(`models/notice.py`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fleet_impact",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("party_id", sa.String(length=200), nullable=False),
        sa.Column("affected_meters", sa.Integer(), nullable=False),
        sa.Column("newly_blocked_meters", sa.Integer(), nullable=False),
        sa.Column("newly_upgradable_meters", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["audit_event.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", "party_id"),
    )
    with op.batch_alter_table("fleet_impact", schema=None) as batch_op:
        batch_op.create_index("ix_fleet_impact_party_event", ["party_id", "event_id"], unique=False)
    op.create_table(
        "scheduled_withdrawal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("firmware_id", sa.Integer(), nullable=True),
        sa.Column("pathway_id", sa.Integer(), nullable=True),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor_sub", sa.String(length=200), nullable=False),
        sa.Column("actor_party_id", sa.String(length=200), nullable=False),
        sa.Column("actor_party_category", sa.String(length=24), nullable=False),
        sa.Column("actor_manufacturer_id", sa.String(length=4), nullable=True),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["device.id"]),
        sa.ForeignKeyConstraint(["firmware_id"], ["firmware.id"]),
        sa.ForeignKeyConstraint(["pathway_id"], ["upgrade_pathway.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("scheduled_withdrawal", schema=None) as batch_op:
        batch_op.create_index(
            "ix_scheduled_withdrawal_due", ["applied_at", "effective_on"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("scheduled_withdrawal", schema=None) as batch_op:
        batch_op.drop_index("ix_scheduled_withdrawal_due")
    op.drop_table("scheduled_withdrawal")
    with op.batch_alter_table("fleet_impact", schema=None) as batch_op:
        batch_op.drop_index("ix_fleet_impact_party_event")
    op.drop_table("fleet_impact")
