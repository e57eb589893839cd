"""CPL entries and MP231's submissions

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08

A firmware row is a published CPL entry: its entry id (unique; empty for rows made before it was
kept), the GBCS and SMETS/CHTS versions it states, its CPA certificate, what its submission said
of the earlier versions that upgrade to it (`predecessors`: every row made before this migration
said nothing, so NOT_SUPPLIED), and its own Zigbee stack version (SSC only). A manufacturer
gains the Firmware Information Repository's contact.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("firmware", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cpl_entry_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("gbcs_version", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("smets_chts_version", sa.String(length=40), nullable=True))
        batch_op.add_column(
            sa.Column("cpa_certificate_reference", sa.String(length=100), nullable=True)
        )
        batch_op.add_column(sa.Column("cpa_certificate_expires_on", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "predecessors",
                sa.Enum(
                    "LISTED",
                    "NONE_EARLIER",
                    "NOT_SUPPLIED",
                    name="predecessorstatement",
                    native_enum=False,
                    length=24,
                ),
                nullable=False,
                server_default="NOT_SUPPLIED",
            )
        )
        batch_op.add_column(sa.Column("zigbee_stack_version", sa.String(length=100), nullable=True))
        batch_op.create_unique_constraint("uq_firmware_cpl_entry_id", ["cpl_entry_id"])
    with op.batch_alter_table("manufacturer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("firmware_contact", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("manufacturer", schema=None) as batch_op:
        batch_op.drop_column("firmware_contact")
    with op.batch_alter_table("firmware", schema=None) as batch_op:
        batch_op.drop_constraint("uq_firmware_cpl_entry_id", type_="unique")
        batch_op.drop_column("zigbee_stack_version")
        batch_op.drop_column("predecessors")
        batch_op.drop_column("cpa_certificate_expires_on")
        batch_op.drop_column("cpa_certificate_reference")
        batch_op.drop_column("smets_chts_version")
        batch_op.drop_column("gbcs_version")
        batch_op.drop_column("cpl_entry_id")
