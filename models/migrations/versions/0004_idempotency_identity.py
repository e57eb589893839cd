"""Idempotency records keyed by the caller's whole identity

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Two callers with one Party id but different rights (a Manufacturer token per manufacturer
identifier) must not replay each other's results. Records made before this migration belong to
no identity and are dropped (the table is made anew): they only ever served retries within
minutes of the first call.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _create(unique: tuple[str, ...], identity: bool) -> None:
    op.create_table(
        "idempotency_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("party_id", sa.String(length=200), nullable=False),
        *(
            [
                sa.Column("party_category", sa.String(length=20), nullable=False),
                sa.Column("manufacturer_id", sa.String(length=4), nullable=False),
            ]
            if identity
            else []
        ),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("mutation", sa.String(length=40), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("result_kind", sa.String(length=20), nullable=False),
        sa.Column("result_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(*unique),
    )


def upgrade() -> None:
    op.drop_table("idempotency_record")
    _create(("party_id", "party_category", "manufacturer_id", "key"), identity=True)


def downgrade() -> None:
    op.drop_table("idempotency_record")
    _create(("party_id", "key"), identity=False)
