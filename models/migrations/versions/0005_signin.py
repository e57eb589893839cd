"""Sign-in sessions and the SSC data-access log

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Server-side sessions for analysts signed in through the identity provider, the sign-ins still
in progress, and one row per operation that read or filtered on an SSC-only value.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signin_session",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("sub", sa.String(length=200), nullable=False),
        sa.Column("party_id", sa.String(length=200), nullable=False),
        sa.Column("party_category", sa.String(length=24), nullable=False),
        sa.Column("manufacturer_id", sa.String(length=4), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("signin_session", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_signin_session_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "signin_flow",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("signin_flow", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signin_flow_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "ssc_access",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_sub", sa.String(length=200), nullable=False),
        sa.Column("actor_party_id", sa.String(length=200), nullable=False),
        sa.Column("operation_name", sa.String(length=200), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("device_ids", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ssc_access", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ssc_access_occurred_at"), ["occurred_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ssc_access", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ssc_access_occurred_at"))
    op.drop_table("ssc_access")
    with op.batch_alter_table("signin_flow", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signin_flow_expires_at"))
    op.drop_table("signin_flow")
    with op.batch_alter_table("signin_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signin_session_expires_at"))
    op.drop_table("signin_session")
