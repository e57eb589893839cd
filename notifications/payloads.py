"""Webhook bodies: what a delivery says about an event, and the bytes that are signed.

Bodies carry public fields only, whoever registered the webhook: the payload query never even
selects the SSC-only Zigbee columns, and an event that changed one of them is sent without its
free-text reason, which could repeat the restricted value.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import UTC, datetime

from sqlalchemy.orm import aliased
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import AuditEvent, Device, Firmware, Manufacturer, UpgradePathway
from permissions.policy import Audience, change_subject, reason_readable


def global_id(kind: str, pk: int) -> str:
    """A GraphQL id (`device:12`), written here so the resolvers do not import the schema."""
    return f"{kind}:{pk}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


async def event_payloads(session: AsyncSession, event_ids: Collection[int]) -> dict[int, dict]:
    """The delivery body of each event, keyed by event id, in one statement however many.

    Only public columns are selected: an SSC-only value cannot end up in a body because it is
    never read. Device, firmware and pathway are shown as they are now; the pathway's
    `revision` lets a receiver order what it sees.
    """
    ids = sorted(set(event_ids))
    if not ids:
        return {}
    from_firmware = aliased(Firmware)
    to_firmware = aliased(Firmware)
    statement = (
        select(
            AuditEvent.id,
            AuditEvent.action,
            AuditEvent.occurred_at,
            AuditEvent.reason,
            AuditEvent.changes,
            Device.id,
            Manufacturer.identifier,
            Device.model_identifier,
            Device.hardware_version,
            Device.device_type,
            Device.zigbee_band,
            Firmware.id,
            Firmware.version,
            Firmware.status,
            UpgradePathway.id,
            from_firmware.version,
            to_firmware.version,
            UpgradePathway.status,
            UpgradePathway.revision,
        )
        .join(Device, Device.id == AuditEvent.device_id)
        .join(Manufacturer, Manufacturer.id == Device.manufacturer_id)
        .outerjoin(Firmware, Firmware.id == AuditEvent.firmware_id)
        .outerjoin(UpgradePathway, UpgradePathway.id == AuditEvent.pathway_id)
        .outerjoin(from_firmware, from_firmware.id == UpgradePathway.from_firmware_id)
        .outerjoin(to_firmware, to_firmware.id == UpgradePathway.to_firmware_id)
        .where(AuditEvent.id.in_(ids))
    )
    payloads: dict[int, dict] = {}
    for row in (await session.exec(statement)).all():
        (
            event_id,
            action,
            occurred_at,
            reason,
            changes,
            device_id,
            manufacturer,
            model,
            hardware,
            device_type,
            band,
            firmware_id,
            firmware_version,
            firmware_status,
            pathway_id,
            from_version,
            to_version,
            pathway_status,
            revision,
        ) = row
        subject = change_subject(firmware_id, pathway_id)
        payloads[event_id] = {
            "eventId": global_id("event", event_id),
            "kind": action,
            "occurredAt": _iso(occurred_at),
            "reason": reason if reason_readable(Audience.EVERY_PARTY, subject, changes) else None,
            "device": {
                "id": global_id("device", device_id),
                "manufacturerIdentifier": manufacturer,
                "modelIdentifier": model,
                "hardwareVersion": hardware,
                "deviceType": device_type.value,
                "zigbeeBand": band.value if band is not None else None,
            },
            "firmware": None
            if firmware_id is None
            else {
                "id": global_id("firmware", firmware_id),
                "version": firmware_version,
                "status": firmware_status.value,
            },
            "pathway": None
            if pathway_id is None
            else {
                "id": global_id("pathway", pathway_id),
                "fromVersion": from_version,
                "toVersion": to_version,
                "status": pathway_status.value,
                "revision": revision,
            },
        }
    return payloads


def encode_body(payload: dict) -> bytes:
    """Compact JSON: the bytes signed are exactly the bytes sent."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
