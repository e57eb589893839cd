"""A stored fleet's own revision

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05

Replacing a Supplier's fleet no longer moves the CPL's data revision, which every Party's cached
answers and ETags are keyed on (another Party could count the replacements); the answers that
read a fleet (`myFleet`) are keyed on the fleet's own revision instead: 1 when first stored, one
more at each replacement. A fleet stored before this revision starts at 1.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "stored_fleet",
        sa.Column("revision", sa.Integer(), nullable=False, server_default=sa.text("1")),
    )


def downgrade() -> None:
    with op.batch_alter_table("stored_fleet") as batch:
        batch.drop_column("revision")
