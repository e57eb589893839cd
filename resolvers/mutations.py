"""The writes of the CPL: each runs inside the caller's transaction and records its history.

A write function loads what it changes, checks the caller may act for that device's
manufacturer (the policy's `may_act_for`), validates, writes, and adds one audit event with the
before and after of every field it changed. Failures the caller can act on are
`MutationFailure`s; a caller acting for someone else's device gets `NotAllowed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import (
    ChangeKind,
    DataRevision,
    Device,
    DeviceType,
    Firmware,
    FirmwareStatus,
    Manufacturer,
    PathwayStatus,
    UpgradePathway,
    ZigbeeBand,
    utcnow,
)
from permissions.policy import may_act_for
from permissions.principal import Principal
from resolvers import events
from resolvers import validation as v
from resolvers import write_rules as rules
from resolvers.events import EVENTS as EVENTS
from resolvers.events import audit, changes, record


class NotAllowed(Exception):
    """The caller may run this mutation, but not for this manufacturer's devices."""


async def begin_write(session: AsyncSession) -> int:
    """Bump the data revision first: it serialises writers (a row lock on PostgreSQL, the write
    lock on SQLite) and gives caches a number that changes with every committed write."""
    await session.exec(
        update(DataRevision).where(DataRevision.id == 1).values(revision=DataRevision.revision + 1)
    )
    return (await session.exec(select(DataRevision.revision).where(DataRevision.id == 1))).one()


@dataclass(frozen=True)
class OwnedDevice:
    device: Device
    manufacturer_identifier: str


async def _device(
    session: AsyncSession, principal: Principal, device_id: int | None, field: str = "deviceId"
) -> OwnedDevice:
    """The device, locked for this transaction, once the caller may act for its manufacturer."""
    row = None
    if device_id is not None:
        row = (
            await session.exec(
                select(Device, Manufacturer.identifier)
                .join(Manufacturer, Manufacturer.id == Device.manufacturer_id)
                .where(Device.id == device_id)
            )
        ).first()
    if row is None:
        raise v.not_found(field, "No device with that id.")
    device, identifier = row
    if not may_act_for(principal, identifier):
        raise NotAllowed()
    return OwnedDevice(device, identifier)


async def check_may_replay(
    session: AsyncSession, principal: Principal, row: Device | Firmware | UpgradePathway
) -> None:
    """An idempotent replay returns an earlier result only to a caller who may act for its
    manufacturer now, exactly as a fresh call on it would be checked."""
    device_id = row.id if isinstance(row, Device) else row.device_id
    await _device(session, principal, device_id)


async def _firmware_by_version(session: AsyncSession, device_id: int) -> dict[str, Firmware]:
    rows = await session.exec(select(Firmware).where(Firmware.device_id == device_id))
    return {f.version: f for f in rows}


async def add_device(
    session: AsyncSession,
    principal: Principal,
    *,
    manufacturer_identifier: str,
    model_identifier: str,
    model_name: str,
    hardware_version: str,
    device_type: DeviceType,
    zigbee_band: ZigbeeBand | None,
    zigbee_stack_version: str | None,
    zigbee_chipset_vendor: str | None,
) -> Device:
    identifier = v.identifier(manufacturer_identifier, "manufacturerIdentifier")
    if not may_act_for(principal, identifier):
        raise NotAllowed()
    fields = rules.device_fields(
        model_identifier=model_identifier,
        model_name=model_name,
        hardware_version=hardware_version,
        device_type=device_type,
        zigbee_band=zigbee_band,
        zigbee_stack_version=zigbee_stack_version,
        zigbee_chipset_vendor=zigbee_chipset_vendor,
    )
    manufacturer = (
        await session.exec(select(Manufacturer).where(Manufacturer.identifier == identifier))
    ).first()
    if manufacturer is None:
        raise v.not_found("manufacturerIdentifier", "No manufacturer with that identifier.")
    duplicate = (
        await session.exec(
            select(Device.id).where(
                Device.manufacturer_id == manufacturer.id,
                Device.model_identifier == fields["modelIdentifier"],
                Device.hardware_version == fields["hardwareVersion"],
            )
        )
    ).first()
    if duplicate is not None:
        raise rules.duplicate_device()
    device = Device(**rules.device_row(manufacturer.id, fields))  # type: ignore[arg-type]
    session.add(device)
    await session.flush()
    assert device.id is not None
    await record(session, events.device_added(principal, device.id, identifier, fields))
    return device


async def add_firmware(
    session: AsyncSession,
    principal: Principal,
    *,
    device_id: int | None,
    version: str,
    image_hash: str | None,
    added_to_cpl_on: date | None,
) -> Firmware:
    owned = await _device(session, principal, device_id)
    version, digest, added_on = rules.firmware_fields(version, image_hash, added_to_cpl_on)
    if version in await _firmware_by_version(session, owned.device.id):
        raise rules.duplicate_firmware(version)
    row = rules.firmware_row(owned.device.id, version, digest, added_on)  # type: ignore[arg-type]
    firmware = Firmware(**row)
    session.add(firmware)
    await session.flush()
    assert firmware.id is not None
    await record(session, events.firmware_added(principal, firmware.id, row))
    return firmware


async def withdraw_firmware(
    session: AsyncSession, principal: Principal, *, firmware_id: int | None, reason: str
) -> Firmware:
    firmware = await session.get(Firmware, firmware_id) if firmware_id is not None else None
    if firmware is None:
        raise v.not_found("firmwareId", "No firmware with that id.")
    await _device(session, principal, firmware.device_id)
    reason = v.text(reason, "reason", v.MAX_REASON, required=True)
    if firmware.status is FirmwareStatus.WITHDRAWN:
        raise v.conflict("firmwareId", "This firmware is already withdrawn.")
    session.add(firmware)
    await record(session, withdraw(principal, firmware, reason))
    await session.flush()
    return firmware


def withdraw(principal: Principal, firmware: Any, reason: str | None) -> dict[str, Any]:
    """Withdraw an ACTIVE firmware (checked by the caller; a Firmware or a record with its
    id, device_id, status and withdrawn_on) and return the event to record."""
    before = {"status": firmware.status, "withdrawnOn": firmware.withdrawn_on}
    firmware.status = FirmwareStatus.WITHDRAWN
    firmware.withdrawn_on = datetime.now(UTC).date()
    changed = changes(before, {"status": firmware.status, "withdrawnOn": firmware.withdrawn_on})
    return audit(
        principal,
        ChangeKind.FIRMWARE_WITHDRAWN,
        firmware.device_id,
        changed,
        reason=reason,
        firmware_id=firmware.id,
    )


async def _check_pathway(
    session: AsyncSession,
    device_id: int,
    from_version: str,
    to_version: str,
    *,
    ignoring: int | None = None,
) -> tuple[Firmware, Firmware]:
    """The two ends of a pathway once it satisfies every rule of the CPL's pathway graph."""
    firmware = await _firmware_by_version(session, device_id)
    published = await session.exec(
        select(UpgradePathway).where(
            UpgradePathway.device_id == device_id,
            UpgradePathway.status == PathwayStatus.PUBLISHED,
        )
    )
    edges = [(p.id, p.from_firmware_id, p.to_firmware_id) for p in published]
    start, end = rules.pathway_ends(firmware, edges, from_version, to_version, ignoring=ignoring)
    return start, end  # type: ignore[return-value]


async def publish_pathway(
    session: AsyncSession,
    principal: Principal,
    *,
    device_id: int | None,
    from_version: str,
    to_version: str,
    notes: str | None,
) -> UpgradePathway:
    owned = await _device(session, principal, device_id)
    notes = v.text(notes, "notes", v.MAX_NOTES)
    start, end = await _check_pathway(session, owned.device.id, from_version, to_version)
    row = rules.pathway_row(owned.device.id, start.id, end.id, notes, principal.party_id)
    pathway = UpgradePathway(**row)
    session.add(pathway)
    await session.flush()
    assert pathway.id is not None
    event = events.pathway_published(principal, pathway.id, row, start.version, end.version)
    await record(session, event)
    return pathway


async def _pathway(
    session: AsyncSession, principal: Principal, pathway_id: int | None
) -> UpgradePathway:
    pathway = await session.get(UpgradePathway, pathway_id) if pathway_id is not None else None
    if pathway is None:
        raise v.not_found("pathwayId", "No upgrade pathway with that id.")
    await _device(session, principal, pathway.device_id)
    return pathway


async def _versions(session: AsyncSession, pathway: UpgradePathway) -> tuple[str, str]:
    rows = await session.exec(
        select(Firmware.id, Firmware.version).where(
            Firmware.id.in_([pathway.from_firmware_id, pathway.to_firmware_id])
        )
    )
    versions = dict(rows.all())
    return versions[pathway.from_firmware_id], versions[pathway.to_firmware_id]


async def _compare_and_set(
    session: AsyncSession, pathway: UpgradePathway, expected_revision: int, **values: Any
) -> None:
    """Write only if nobody changed the pathway since `expected_revision` was read."""
    result = await session.exec(
        update(UpgradePathway)
        .where(UpgradePathway.id == pathway.id, UpgradePathway.revision == expected_revision)
        .values(revision=expected_revision + 1, updated_at=utcnow(), **values)
    )
    if result.rowcount != 1:
        raise v.conflict(
            "expectedRevision",
            f"The pathway has changed since revision {expected_revision}; read it again.",
        )
    await session.refresh(pathway)


async def correct_pathway(
    session: AsyncSession,
    principal: Principal,
    *,
    pathway_id: int | None,
    expected_revision: int,
    reason: str,
    notes: str | None,
    from_version: str | None,
    to_version: str | None,
) -> UpgradePathway:
    pathway = await _pathway(session, principal, pathway_id)
    reason = v.text(reason, "reason", v.MAX_REASON, required=True)
    notes = v.text(notes, "notes", v.MAX_NOTES)
    if pathway.revision != expected_revision:
        raise v.conflict(
            "expectedRevision",
            f"The pathway is at revision {pathway.revision}, not {expected_revision}; "
            "read it again.",
        )
    if pathway.status is not PathwayStatus.PUBLISHED:
        raise v.conflict("pathwayId", "A withdrawn pathway cannot be corrected; publish a new one.")
    old_from, old_to = await _versions(session, pathway)
    if notes is None and from_version is None and to_version is None:
        raise v.invalid("notes", "Say what to correct: notes, fromVersion or toVersion.")
    values: dict[str, Any] = {}
    new_from, new_to = old_from, old_to
    if from_version is not None or to_version is not None:
        start, end = await _check_pathway(
            session,
            pathway.device_id,
            from_version if from_version is not None else old_from,
            to_version if to_version is not None else old_to,
            ignoring=pathway.id,
        )
        values |= {"from_firmware_id": start.id, "to_firmware_id": end.id}
        new_from, new_to = start.version, end.version
    if notes is not None:
        values["notes"] = notes
    before = {"from": old_from, "to": old_to, "notes": pathway.notes, "revision": pathway.revision}
    await _compare_and_set(session, pathway, expected_revision, **values)
    after = {"from": new_from, "to": new_to, "notes": pathway.notes, "revision": pathway.revision}
    await record(
        session,
        audit(
            principal,
            ChangeKind.PATHWAY_CORRECTED,
            pathway.device_id,
            changes(before, after),
            reason=reason,
            pathway_id=pathway.id,
        ),
    )
    return pathway


async def withdraw_pathway(
    session: AsyncSession, principal: Principal, *, pathway_id: int | None, reason: str
) -> UpgradePathway:
    pathway = await _pathway(session, principal, pathway_id)
    reason = v.text(reason, "reason", v.MAX_REASON, required=True)
    if pathway.status is PathwayStatus.WITHDRAWN:
        raise v.conflict("pathwayId", "This pathway is already withdrawn.")
    before = {"status": pathway.status, "revision": pathway.revision}
    await _compare_and_set(session, pathway, pathway.revision, status=PathwayStatus.WITHDRAWN)
    await record(
        session,
        audit(
            principal,
            ChangeKind.PATHWAY_WITHDRAWN,
            pathway.device_id,
            changes(before, {"status": pathway.status, "revision": pathway.revision}),
            reason=reason,
            pathway_id=pathway.id,
        ),
    )
    return pathway


async def set_zigbee_information(
    session: AsyncSession,
    principal: Principal,
    *,
    device_id: int | None,
    zigbee_band: ZigbeeBand | None,
    zigbee_stack_version: str | None,
    zigbee_chipset_vendor: str | None,
    reason: str | None,
) -> Device:
    owned = await _device(session, principal, device_id)
    device = owned.device
    reason = v.text(reason, "reason", v.MAX_REASON)
    wanted = rules.zigbee_fields(zigbee_band, zigbee_stack_version, zigbee_chipset_vendor)
    wanted = {field: value for field, value in wanted.items() if value is not None}
    if not wanted:
        raise v.invalid(
            "zigbeeBand",
            "Give at least one of zigbeeBand, zigbeeStackVersion, zigbeeChipsetVendor.",
        )
    session.add(device)
    await record(session, set_zigbee(principal, device, wanted, reason))
    await session.flush()
    return device


def set_zigbee(
    principal: Principal, device: Device, wanted: dict[str, Any], reason: str | None
) -> dict[str, Any]:
    """Set the given Zigbee fields (validated by `rules.zigbee_fields`, None left out) and
    return the event to record."""
    before = {
        "zigbeeBand": device.zigbee_band,
        "zigbeeStackVersion": device.zigbee_stack_version,
        "zigbeeChipsetVendor": device.zigbee_chipset_vendor,
    }
    changed = changes(before, wanted, always=True)
    device.zigbee_band = wanted.get("zigbeeBand", device.zigbee_band)
    device.zigbee_stack_version = wanted.get("zigbeeStackVersion", device.zigbee_stack_version)
    device.zigbee_chipset_vendor = wanted.get("zigbeeChipsetVendor", device.zigbee_chipset_vendor)
    device.updated_at = utcnow()
    return audit(
        principal,
        ChangeKind.ZIGBEE_INFORMATION_CHANGED,
        device.id,  # type: ignore[arg-type]
        changed,
        reason=reason,
    )
