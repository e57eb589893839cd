"""The Central Products List

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Manufacturers, devices, firmware, upgrade pathways, their audit history and the data
revision counter.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "data_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(
        sa.table("data_revision", sa.column("id", sa.Integer), sa.column("revision", sa.Integer)),
        [{"id": 1, "revision": 0}],
    )
    op.create_table(
        "manufacturer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(length=4), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("identifier"),
    )
    op.create_table(
        "device",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("manufacturer_id", sa.Integer(), nullable=False),
        sa.Column(
            "device_type",
            sa.Enum(
                "ESME",
                "GSME",
                "CHF",
                "GPF",
                "PPMID",
                "IHD",
                "HCALCS",
                "SAPC",
                name="devicetype",
                native_enum=False,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("model_identifier", sa.String(length=4), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("hardware_version", sa.String(length=4), nullable=False),
        sa.Column(
            "zigbee_band",
            sa.Enum(
                "BAND_2_4_GHZ",
                "BAND_868_MHZ",
                "DUAL_BAND",
                name="zigbeeband",
                native_enum=False,
                length=24,
            ),
            nullable=True,
        ),
        sa.Column("zigbee_stack_version", sa.String(length=100), nullable=True),
        sa.Column("zigbee_chipset_vendor", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["manufacturer_id"],
            ["manufacturer.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("manufacturer_id", "model_identifier", "hardware_version"),
    )
    with op.batch_alter_table("device", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_device_manufacturer_id"), ["manufacturer_id"], unique=False
        )

    op.create_table(
        "firmware",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=8), nullable=False),
        sa.Column(
            "status",
            sa.Enum("ACTIVE", "WITHDRAWN", name="firmwarestatus", native_enum=False, length=24),
            nullable=False,
        ),
        sa.Column("image_hash", sa.String(length=64), nullable=True),
        sa.Column("added_to_cpl_on", sa.Date(), nullable=False),
        sa.Column("withdrawn_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["device.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("device_id", "version"),
    )
    with op.batch_alter_table("firmware", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_firmware_device_id"), ["device_id"], unique=False)

    op.create_table(
        "upgrade_pathway",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("from_firmware_id", sa.Integer(), nullable=False),
        sa.Column("to_firmware_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("PUBLISHED", "WITHDRAWN", name="pathwaystatus", native_enum=False, length=24),
            nullable=False,
        ),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["device.id"],
        ),
        sa.ForeignKeyConstraint(
            ["from_firmware_id"],
            ["firmware.id"],
        ),
        sa.ForeignKeyConstraint(
            ["to_firmware_id"],
            ["firmware.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("upgrade_pathway", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_upgrade_pathway_device_id"), ["device_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_upgrade_pathway_from_firmware_id"), ["from_firmware_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_upgrade_pathway_to_firmware_id"), ["to_firmware_id"], unique=False
        )

    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor_sub", sa.String(length=200), nullable=False),
        sa.Column("actor_party_id", sa.String(length=200), nullable=False),
        sa.Column("actor_party_category", sa.String(length=24), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("firmware_id", sa.Integer(), nullable=True),
        sa.Column("pathway_id", sa.Integer(), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["device.id"],
        ),
        sa.ForeignKeyConstraint(
            ["firmware_id"],
            ["firmware.id"],
        ),
        sa.ForeignKeyConstraint(
            ["pathway_id"],
            ["upgrade_pathway.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_event_device_id"), ["device_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_event_firmware_id"), ["firmware_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_audit_event_occurred_at"), ["occurred_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_audit_event_pathway_id"), ["pathway_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_pathway_id"))
        batch_op.drop_index(batch_op.f("ix_audit_event_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_audit_event_firmware_id"))
        batch_op.drop_index(batch_op.f("ix_audit_event_device_id"))
        batch_op.drop_index(batch_op.f("ix_audit_event_action"))

    op.drop_table("audit_event")
    with op.batch_alter_table("upgrade_pathway", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_upgrade_pathway_to_firmware_id"))
        batch_op.drop_index(batch_op.f("ix_upgrade_pathway_from_firmware_id"))
        batch_op.drop_index(batch_op.f("ix_upgrade_pathway_device_id"))

    op.drop_table("upgrade_pathway")
    with op.batch_alter_table("firmware", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_firmware_device_id"))

    op.drop_table("firmware")
    with op.batch_alter_table("device", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_manufacturer_id"))

    op.drop_table("device")
    op.drop_table("manufacturer")
    op.drop_table("data_revision")
