"""Daily digests for DIGEST webhooks

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04

A webhook's digest of a UTC day, claimed once by whichever process inserts its (webhook, day)
first; a delivery now announces an event or sends a digest (`models/notice.py`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_digest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("webhook_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_event_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["webhook_id"], ["webhook.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("webhook_id", "day"),
    )
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.alter_column("event_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("digest_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_webhook_delivery_digest_id", "webhook_digest", ["digest_id"], ["id"]
        )


def downgrade() -> None:
    op.execute("DELETE FROM webhook_delivery WHERE event_id IS NULL")
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.drop_constraint("fk_webhook_delivery_digest_id", type_="foreignkey")
        batch_op.drop_column("digest_id")
        batch_op.alter_column("event_id", existing_type=sa.Integer(), nullable=False)
    op.drop_table("webhook_digest")
