"""The writes of the CPL: each runs inside a unit of work (`resolvers.writes.unit_of_work.Work`).

A write loads what it changes with the name of its device's manufacturer, in one statement,
and applies the caller's row scope to it (a Manufacturer acts on its own devices only); then it
validates, writes, and appends one `Change` with the before and after of every field it
changed to the work's change log. Failures the caller can act on are `MutationFailure`s; a
caller acting for someone else's device gets `NotAllowed`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import (
    ChangeKind,
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
from resolvers.writes import entries, events
from resolvers.writes import validation as v
from resolvers.writes import write_rules as rules
from resolvers.writes.change_log import Change
from resolvers.writes.events import changes
from resolvers.writes.unit_of_work import Work
from resolvers.writes.validation import NotAllowed

__all__ = ["NotAllowed"]  # raised here; the schema catches it by this module's name


def _check_scope(work: Work, manufacturer_identifier: str) -> None:
    if not work.scope.allows(manufacturer_identifier):
        raise NotAllowed()


async def _owned(work: Work, statement: Any, field: str, missing: str) -> Any:
    """The row `statement` selects (its last column the device's manufacturer identifier), once
    the caller's scope covers that manufacturer."""
    row = (await work.session.exec(statement)).first()
    if row is None:
        raise v.not_found(field, missing)
    _check_scope(work, row[-1])
    return row


def _with_manufacturer(*columns: Any, device_of: Any = None) -> Any:
    """Select `columns` and the manufacturer identifier of the device they belong to (the
    device itself, or the one `device_of`'s `device_id` names)."""
    statement = select(*columns, Manufacturer.identifier)  # type: ignore[call-overload]  # sqlmodel's select() types fixed arities, not *columns
    if device_of is not None:
        statement = statement.select_from(device_of).join(Device, Device.id == device_of.device_id)
    return statement.join(Manufacturer, Manufacturer.id == Device.manufacturer_id)


async def _device(work: Work, device_id: int | None, field: str = "deviceId") -> Device:
    statement = _with_manufacturer(Device).where(Device.id == device_id)
    return (await _owned(work, statement, field, "No device with that id."))[0]


async def _firmware(work: Work, firmware_id: int | None) -> Firmware:
    statement = _with_manufacturer(Firmware, device_of=Firmware).where(Firmware.id == firmware_id)
    return (await _owned(work, statement, "firmwareId", "No firmware with that id."))[0]


async def _pathway(work: Work, pathway_id: int | None) -> tuple[UpgradePathway, str, str]:
    """The pathway with the versions of its two ends, read once."""
    start, end = aliased(Firmware), aliased(Firmware)
    statement = (
        _with_manufacturer(UpgradePathway, start.version, end.version, device_of=UpgradePathway)
        .join(start, start.id == UpgradePathway.from_firmware_id)
        .join(end, end.id == UpgradePathway.to_firmware_id)
        .where(UpgradePathway.id == pathway_id)
    )
    pathway, from_version, to_version, _ = await _owned(
        work, statement, "pathwayId", "No upgrade pathway with that id."
    )
    return pathway, from_version, to_version


async def replay(
    work: Work, kind: str, row_id: int
) -> Manufacturer | Device | Firmware | UpgradePathway:
    """An idempotent replay's first result, returned only to a caller whose scope covers its
    manufacturer now, exactly as a fresh call on it would be checked (by the same loader)."""
    if kind == "manufacturer":
        row: Manufacturer | Device | Firmware | UpgradePathway = await entries.owned_manufacturer(
            work, row_id
        )
    elif kind == "pathway":
        row = (await _pathway(work, row_id))[0]
    else:
        row = await (_device if kind == "device" else _firmware)(work, row_id)
    work.session.expunge(row)  # stays readable after the transaction rolls back
    return row


async def _firmware_by_version(session: AsyncSession, device_id: int) -> dict[str, Firmware]:
    rows = await session.exec(
        select(Firmware).where(col(Firmware.device_id) == device_id).order_by(col(Firmware.id))
    )
    return {f.version: f for f in rows}


async def add_device(
    work: Work,
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
    _check_scope(work, identifier)
    fields = rules.device_fields(
        model_identifier=model_identifier,
        model_name=model_name,
        hardware_version=hardware_version,
        device_type=device_type,
        zigbee_band=zigbee_band,
        zigbee_stack_version=zigbee_stack_version,
        zigbee_chipset_vendor=zigbee_chipset_vendor,
    )
    session = work.session
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
    device = Device(**rules.device_row(manufacturer.id, fields))  # type: ignore[arg-type]  # a loaded row: its id is set
    session.add(device)
    await session.flush()
    assert device.id is not None
    work.log.append(events.device_added(device.id, identifier, fields))
    return device


async def add_firmware(
    work: Work,
    *,
    device_id: int | None,
    version: str,
    image_hash: str | None,
    added_to_cpl_on: date | None,
    **submission: Any,
) -> Firmware:
    """`submission`: the CPL entry's facts and MP231's statement (`entries.Submission`)."""
    device = await _device(work, device_id)
    version, digest, added_on = rules.firmware_fields(version, image_hash, added_to_cpl_on)
    listed = await _firmware_by_version(work.session, device.id)  # type: ignore[arg-type]  # a loaded row: its id is set
    if version in listed:
        raise rules.duplicate_firmware(version)
    entry = await entries.submitted(work.session, device, version, listed, submission)
    row = rules.firmware_row(device.id, version, digest, added_on, *entry.row_values())  # type: ignore[arg-type]  # a loaded row: its id is set
    firmware = Firmware(**row)
    work.session.add(firmware)
    await work.session.flush()
    assert firmware.id is not None
    work.log.append(events.firmware_added(firmware.id, row))
    await entries.publish_predecessors(work, firmware, entry.predecessors)
    return firmware


async def withdraw_firmware(work: Work, *, firmware_id: int | None, reason: str) -> Firmware:
    firmware = await _firmware(work, firmware_id)
    reason = v.text(reason, "reason", v.MAX_REASON, required=True)
    if firmware.status is FirmwareStatus.WITHDRAWN:
        raise v.conflict("firmwareId", "This firmware is already withdrawn.")
    work.log.append(withdraw(firmware, reason))
    await work.session.flush()
    return firmware


def withdraw(firmware: Any, reason: str | None) -> Change:
    """Withdraw an ACTIVE firmware (checked by the caller; a Firmware or a record with its
    id, device_id, status and withdrawn_on) and return its change."""
    before = {"status": firmware.status, "withdrawnOn": firmware.withdrawn_on}
    firmware.status = FirmwareStatus.WITHDRAWN
    firmware.withdrawn_on = datetime.now(UTC).date()
    changed = changes(before, {"status": firmware.status, "withdrawnOn": firmware.withdrawn_on})
    return Change(
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
    """The two ends of a pathway once it satisfies every rule of the CPL's pathway graph; rows
    are read in id order, so the same graph always reports the same cycle."""
    firmware = await _firmware_by_version(session, device_id)
    published = await session.exec(
        select(UpgradePathway.id, UpgradePathway.from_firmware_id, UpgradePathway.to_firmware_id)
        .where(
            UpgradePathway.device_id == device_id,
            UpgradePathway.status == PathwayStatus.PUBLISHED,
        )
        .order_by(col(UpgradePathway.id))
    )
    edges = [(edge_id, from_id, to_id) for edge_id, from_id, to_id in published.all()]
    start, end = rules.pathway_ends(firmware, edges, from_version, to_version, ignoring=ignoring)
    return start, end  # type: ignore[return-value]  # the ends are the Firmware rows given as FirmwareLike


async def publish_pathway(
    work: Work,
    *,
    device_id: int | None,
    from_version: str,
    to_version: str,
    notes: str | None,
) -> UpgradePathway:
    device = await _device(work, device_id)
    notes = v.text(notes, "notes", v.MAX_NOTES)
    assert device.id is not None
    start, end = await _check_pathway(work.session, device.id, from_version, to_version)
    row = rules.pathway_row(device.id, start.id, end.id, notes, work.principal.party_id)  # type: ignore[arg-type]  # loaded rows: their ids are set
    pathway = UpgradePathway(**row)
    work.session.add(pathway)
    await work.session.flush()
    assert pathway.id is not None
    work.log.append(events.pathway_published(pathway.id, row, start.version, end.version))
    return pathway


async def _compare_and_set(
    session: AsyncSession, pathway: UpgradePathway, expected_revision: int, **values: Any
) -> None:
    """Write only if the pathway is still at `expected_revision`, in one statement whose
    RETURNING says whether it was; the loaded pathway takes the new values as written."""
    written = (
        await session.exec(
            update(UpgradePathway)
            .where(
                col(UpgradePathway.id) == pathway.id,
                col(UpgradePathway.revision) == expected_revision,
            )
            .values(revision=expected_revision + 1, updated_at=utcnow(), **values)
            .returning(col(UpgradePathway.revision))
        )
    ).first()
    if written is None:
        raise v.conflict(
            "expectedRevision",
            f"The pathway has changed since revision {expected_revision}; read it again.",
        )


def _pathway_change(
    pathway: UpgradePathway,
    action: ChangeKind,
    before: dict[str, Any],
    after: dict[str, Any],
    reason: str,
) -> Change:
    return Change(
        action, pathway.device_id, changes(before, after), reason=reason, pathway_id=pathway.id
    )


async def correct_pathway(
    work: Work,
    *,
    pathway_id: int | None,
    expected_revision: int,
    reason: str,
    notes: str | None,
    from_version: str | None,
    to_version: str | None,
) -> UpgradePathway:
    pathway, old_from, old_to = await _pathway(work, pathway_id)
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
    if notes is None and from_version is None and to_version is None:
        raise v.invalid("notes", "Say what to correct: notes, fromVersion or toVersion.")
    values: dict[str, Any] = {}
    new_from, new_to = old_from, old_to
    if from_version is not None or to_version is not None:
        start, end = await _check_pathway(
            work.session,
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
    await _compare_and_set(work.session, pathway, expected_revision, **values)
    after = {"from": new_from, "to": new_to, "notes": pathway.notes, "revision": pathway.revision}
    work.log.append(_pathway_change(pathway, ChangeKind.PATHWAY_CORRECTED, before, after, reason))
    return pathway


async def withdraw_pathway(work: Work, *, pathway_id: int | None, reason: str) -> UpgradePathway:
    pathway, _, _ = await _pathway(work, pathway_id)
    reason = v.text(reason, "reason", v.MAX_REASON, required=True)
    if pathway.status is PathwayStatus.WITHDRAWN:
        raise v.conflict("pathwayId", "This pathway is already withdrawn.")
    before = {"status": pathway.status, "revision": pathway.revision}
    await _compare_and_set(work.session, pathway, pathway.revision, status=PathwayStatus.WITHDRAWN)
    after = {"status": pathway.status, "revision": pathway.revision}
    work.log.append(_pathway_change(pathway, ChangeKind.PATHWAY_WITHDRAWN, before, after, reason))
    return pathway


async def set_zigbee_information(
    work: Work,
    *,
    device_id: int | None,
    zigbee_band: ZigbeeBand | None,
    zigbee_stack_version: str | None,
    zigbee_chipset_vendor: str | None,
    reason: str | None,
) -> Device:
    device = await _device(work, device_id)
    reason = v.text(reason, "reason", v.MAX_REASON)
    wanted = rules.zigbee_fields(zigbee_band, zigbee_stack_version, zigbee_chipset_vendor)
    wanted = {field: value for field, value in wanted.items() if value is not None}
    if not wanted:
        raise v.invalid(
            "zigbeeBand",
            "Give at least one of zigbeeBand, zigbeeStackVersion, zigbeeChipsetVendor.",
        )
    work.log.append(set_zigbee(device, wanted, reason))
    await work.session.flush()
    return device


def set_zigbee(device: Device, wanted: dict[str, Any], reason: str | None) -> Change:
    """Set the given Zigbee fields (validated by `rules.zigbee_fields`, None left out) and
    return its change."""
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
    return Change(ChangeKind.ZIGBEE_INFORMATION_CHANGED, device.id, changed, reason=reason)  # type: ignore[arg-type]  # a loaded row: its id is set
