"""The writes of the CPL: each runs inside the caller's transaction and records its history.

A write function loads what it changes, checks the caller may act for that device's
manufacturer (the policy's `may_act_for`), validates, writes, and adds one audit event with the
before and after of every field it changed. Failures the caller can act on are
`MutationFailure`s; a caller acting for someone else's device gets `NotAllowed`.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import (
    AuditEvent,
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
from resolvers import validation as v
from resolvers import webhooks


class NotAllowed(Exception):
    """The caller may run this mutation, but not for this manufacturer's devices."""


async def begin_write(session: AsyncSession) -> int:
    """Bump the data revision first: it serialises writers (a row lock on PostgreSQL, the write
    lock on SQLite) and gives caches a number that changes with every committed write."""
    await session.exec(
        update(DataRevision).where(DataRevision.id == 1).values(revision=DataRevision.revision + 1)
    )
    return (await session.exec(select(DataRevision.revision).where(DataRevision.id == 1))).one()


def _value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, DeviceType | ZigbeeBand | FirmwareStatus | PathwayStatus):
        return value.value
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _changes(
    before: dict[str, Any], after: dict[str, Any], *, always: bool = False
) -> list[dict[str, str | None]]:
    """Each field's before and after: the changed ones, or with `always` every one given.

    Writes that touch SSC-only fields record them `always`: whether an entry is there must not
    tell a reader who cannot see the values that a guess was right or that a value is unset,
    and an entry naming them hides the event's free-text reason from such readers."""
    return [
        {"field": field, "before": _value(before.get(field)), "after": _value(after[field])}
        for field in after
        if always or _value(before.get(field)) != _value(after[field])
    ]


def _audit(
    principal: Principal,
    action: ChangeKind,
    device_id: int,
    changes: list[dict[str, str | None]],
    *,
    reason: str | None = None,
    firmware_id: int | None = None,
    pathway_id: int | None = None,
) -> AuditEvent:
    return AuditEvent(
        action=action.value,
        reason=reason,
        actor_sub=principal.sub,
        actor_party_id=principal.party_id,
        actor_party_category=principal.party_category.value,
        device_id=device_id,
        firmware_id=firmware_id,
        pathway_id=pathway_id,
        changes=changes,
    )


EVENTS = "cpl.events"


async def record(session: AsyncSession, event: AuditEvent) -> None:
    """Write the change's history, its webhook deliveries and its notification, all inside the
    writer's transaction: if the change commits, all of them do; if not, none."""
    session.add(event)
    await session.flush()
    await webhooks.enqueue(session, event)
    await session.info["cpl.bus"].in_transaction(session, event.id)
    session.info.setdefault(EVENTS, []).append(event.id)


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
    fields = {
        "modelIdentifier": v.identifier(model_identifier, "modelIdentifier"),
        "modelName": v.text(model_name, "modelName", v.MAX_NAME, required=True),
        "hardwareVersion": v.identifier(hardware_version, "hardwareVersion"),
        "deviceType": device_type,
        "zigbeeBand": zigbee_band,
        "zigbeeStackVersion": v.text(zigbee_stack_version, "zigbeeStackVersion", v.MAX_ZIGBEE_TEXT),
        "zigbeeChipsetVendor": v.text(
            zigbee_chipset_vendor, "zigbeeChipsetVendor", v.MAX_ZIGBEE_TEXT
        ),
    }
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
        raise v.conflict(
            "modelIdentifier",
            "This manufacturer already has a device with that model identifier and hardware "
            "version.",
        )
    device = Device(
        manufacturer_id=manufacturer.id,
        device_type=device_type,
        model_identifier=fields["modelIdentifier"],
        model_name=fields["modelName"],
        hardware_version=fields["hardwareVersion"],
        zigbee_band=zigbee_band,
        zigbee_stack_version=fields["zigbeeStackVersion"],
        zigbee_chipset_vendor=fields["zigbeeChipsetVendor"],
    )
    session.add(device)
    await session.flush()
    changes = _changes({}, {"manufacturer": identifier, **fields}, always=True)
    await record(session, _audit(principal, ChangeKind.DEVICE_ADDED, device.id, changes))
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
    version = v.firmware_version(version, "version")
    digest = v.image_hash(image_hash)
    today = datetime.now(UTC).date()
    if added_to_cpl_on is not None and added_to_cpl_on > today:
        raise v.invalid("addedToCplOn", "addedToCplOn must not be in the future.")
    if version in await _firmware_by_version(session, owned.device.id):
        raise v.conflict("version", f"Device already has firmware {version}.")
    firmware = Firmware(
        device_id=owned.device.id,
        version=version,
        image_hash=digest,
        added_to_cpl_on=added_to_cpl_on or today,
    )
    session.add(firmware)
    await session.flush()
    changes = _changes(
        {},
        {
            "version": version,
            "status": firmware.status,
            "imageHash": digest,
            "addedToCplOn": firmware.added_to_cpl_on,
        },
    )
    await record(
        session,
        _audit(
            principal, ChangeKind.FIRMWARE_ADDED, owned.device.id, changes, firmware_id=firmware.id
        ),
    )
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
    before = {"status": firmware.status, "withdrawnOn": firmware.withdrawn_on}
    firmware.status = FirmwareStatus.WITHDRAWN
    firmware.withdrawn_on = datetime.now(UTC).date()
    session.add(firmware)
    changes = _changes(before, {"status": firmware.status, "withdrawnOn": firmware.withdrawn_on})
    await record(
        session,
        _audit(
            principal,
            ChangeKind.FIRMWARE_WITHDRAWN,
            firmware.device_id,
            changes,
            reason=reason,
            firmware_id=firmware.id,
        ),
    )
    await session.flush()
    return firmware


def _find_route(edges: dict[int, list[int]], start: int, goal: int) -> list[int] | None:
    """A shortest chain of firmware ids from start to goal along `edges`, if there is one."""
    parents: dict[int, int | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            route = [node]
            while (parent := parents[route[-1]]) is not None:
                route.append(parent)
            return route[::-1]
        for nxt in edges.get(node, []):
            if nxt not in parents:
                parents[nxt] = node
                queue.append(nxt)
    return None


async def _check_pathway(
    session: AsyncSession,
    device_id: int,
    from_version: str,
    to_version: str,
    *,
    ignoring: int | None = None,
) -> tuple[Firmware, Firmware]:
    """The two ends of a pathway once it satisfies every rule of the CPL's pathway graph."""
    from_version = v.firmware_version(from_version, "fromVersion")
    to_version = v.firmware_version(to_version, "toVersion")
    firmware = await _firmware_by_version(session, device_id)
    start, end = firmware.get(from_version), firmware.get(to_version)
    if start is None:
        raise v.not_found("fromVersion", f"Device has no firmware {from_version}.")
    if end is None:
        raise v.not_found("toVersion", f"Device has no firmware {to_version}.")
    if start.id == end.id:
        raise v.invalid("toVersion", "A pathway cannot lead from a version to itself.")
    if end.status is not FirmwareStatus.ACTIVE:
        raise v.invalid(
            "toVersion", f"Firmware {to_version} is withdrawn; nothing may upgrade to it."
        )
    published = await session.exec(
        select(UpgradePathway).where(
            UpgradePathway.device_id == device_id,
            UpgradePathway.status == PathwayStatus.PUBLISHED,
        )
    )
    edges: dict[int, list[int]] = defaultdict(list)
    for pathway in published:
        if pathway.id == ignoring:
            continue
        if (pathway.from_firmware_id, pathway.to_firmware_id) == (start.id, end.id):
            raise v.conflict(
                "toVersion", f"A published pathway {from_version} → {to_version} already exists."
            )
        edges[pathway.from_firmware_id].append(pathway.to_firmware_id)
    route = _find_route(edges, end.id, start.id)
    if route is not None:
        versions = {f.id: f.version for f in firmware.values()}
        cycle = " → ".join(versions[i] for i in [*route, end.id])
        raise v.conflict("toVersion", f"This pathway would close a cycle: {cycle}.")
    return start, end


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
    pathway = UpgradePathway(
        device_id=owned.device.id,
        from_firmware_id=start.id,
        to_firmware_id=end.id,
        notes=notes,
        published_by=principal.party_id,
    )
    session.add(pathway)
    await session.flush()
    changes = _changes(
        {},
        {"from": start.version, "to": end.version, "status": pathway.status, "notes": notes},
    )
    await record(
        session,
        _audit(
            principal, ChangeKind.PATHWAY_PUBLISHED, owned.device.id, changes, pathway_id=pathway.id
        ),
    )
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
        _audit(
            principal,
            ChangeKind.PATHWAY_CORRECTED,
            pathway.device_id,
            _changes(before, after),
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
        _audit(
            principal,
            ChangeKind.PATHWAY_WITHDRAWN,
            pathway.device_id,
            _changes(before, {"status": pathway.status, "revision": pathway.revision}),
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
    wanted = {
        "zigbeeBand": zigbee_band,
        "zigbeeStackVersion": v.text(zigbee_stack_version, "zigbeeStackVersion", v.MAX_ZIGBEE_TEXT),
        "zigbeeChipsetVendor": v.text(
            zigbee_chipset_vendor, "zigbeeChipsetVendor", v.MAX_ZIGBEE_TEXT
        ),
    }
    wanted = {field: value for field, value in wanted.items() if value is not None}
    if not wanted:
        raise v.invalid(
            "zigbeeBand",
            "Give at least one of zigbeeBand, zigbeeStackVersion, zigbeeChipsetVendor.",
        )
    before = {
        "zigbeeBand": device.zigbee_band,
        "zigbeeStackVersion": device.zigbee_stack_version,
        "zigbeeChipsetVendor": device.zigbee_chipset_vendor,
    }
    changes = _changes(before, wanted, always=True)
    device.zigbee_band = wanted.get("zigbeeBand", device.zigbee_band)
    device.zigbee_stack_version = wanted.get("zigbeeStackVersion", device.zigbee_stack_version)
    device.zigbee_chipset_vendor = wanted.get("zigbeeChipsetVendor", device.zigbee_chipset_vendor)
    device.updated_at = utcnow()
    session.add(device)
    await record(
        session,
        _audit(principal, ChangeKind.ZIGBEE_INFORMATION_CHANGED, device.id, changes, reason=reason),
    )
    await session.flush()
    return device
