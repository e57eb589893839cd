"""Premises shapes of stored fleets

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04

A stored fleet's premises: each distinct shape (its devices and their firmware, as JSON) with
how many premises have it, in the fleet's order (`models/fleets.py`). Only the fleet's Party
reads them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fleet_premises",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fleet_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("premises_count", sa.Integer(), nullable=False),
        sa.Column("devices", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["fleet_id"], ["stored_fleet.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("fleet_id", "position"),
    )


def downgrade() -> None:
    op.drop_table("fleet_premises")
