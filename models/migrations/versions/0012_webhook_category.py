"""Who registered a webhook, by Party category

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04

A webhook's bodies carry its Party's own fleet impact, and a DIGEST webhook its Party's digest,
only when the category that registered it may read a stored fleet (the policy's OWN_FLEET rule:
a Supplier). Webhooks registered before this revision have no category, so theirs carry none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("webhook", sa.Column("party_category", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook") as batch:
        batch.drop_column("party_category")
