"""Prerequisites: what a firmware needs at the same premises, declared and withdrawn.

A Manufacturer declares them for its own firmware only, SECAS on anyone's behalf: the firmware is
loaded with its device's manufacturer in one statement and the caller's row scope applied to
it, by the very pieces the pathways' writes use (`resolvers.writes.mutations`); one `Change` a
write, so history, webhooks and subscriptions follow as they do for pathways. The rules are
plain functions of values already loaded, for the mutations and the file import alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

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
    Prerequisite,
    utcnow,
)
from resolvers.planning.premises_rules import gbcs_key, type_cycle
from resolvers.writes import events
from resolvers.writes import mutations as writes
from resolvers.writes import validation as v
from resolvers.writes.change_log import Change
from resolvers.writes.events import changes
from resolvers.writes.mutations import _firmware, _owned, _with_manufacturer
from resolvers.writes.unit_of_work import Work

MAX_REQUIRED_FIRMWARE = 50
MAX_GBCS_TEXT = 20
Required = tuple[int, str, DeviceType, str]  # a firmware's id, version, device type, device key


def requirement(
    required: Sequence[int | None] | None, gbcs: str | None
) -> tuple[list[int | None] | None, str | None]:
    """Exactly one of the two kinds: the firmware ids named (deduplicated, in order; None for
    an id that does not decode) or the GBCS version (trimmed, checked)."""
    gbcs = v.text(gbcs, "requiresGbcsVersion", MAX_GBCS_TEXT)
    if (required is None) == (gbcs is None):
        raise v.invalid(
            "requiresAnyOfFirmware",
            "Give either requiresAnyOfFirmware or requiresGbcsVersion: exactly one of them.",
        )
    if gbcs is not None:
        if gbcs_key(gbcs) is None:
            raise v.invalid(
                "requiresGbcsVersion", "requiresGbcsVersion must be a GBCS version, like v4.0."
            )
        return None, gbcs
    assert required is not None  # one of the two is given
    if not required:
        raise v.invalid("requiresAnyOfFirmware", "requiresAnyOfFirmware must not be empty.")
    if len(required) > MAX_REQUIRED_FIRMWARE:
        raise v.invalid(
            "requiresAnyOfFirmware",
            f"requiresAnyOfFirmware names at most {MAX_REQUIRED_FIRMWARE} firmware.",
        )
    if None in required:
        raise v.not_found("requiresAnyOfFirmware", "No firmware with that id.")
    return list(dict.fromkeys(required)), None


def check_required(wanted: DeviceType, ids: Sequence[int], found: Iterable[Required]) -> list[int]:
    """The named firmware's ids, once each is on the CPL and of the type required."""
    rows = {row[0]: row for row in found}
    if any(pk not in rows for pk in ids):
        raise v.not_found("requiresAnyOfFirmware", "No firmware with that id.")
    if any(rows[pk][2] is not wanted for pk in ids):
        raise v.invalid(
            "requiresAnyOfFirmware",
            f"requiresAnyOfFirmware must name firmware of {wanted.value} devices.",
        )
    return sorted(ids)


def check_declaration(
    own_type: DeviceType,
    firmware: Any,
    wanted: DeviceType,
    declared: Iterable[tuple[str, str]],
) -> None:
    """A prerequisite of `firmware` (of a device of `own_type`) on a device of `wanted`, given
    the (dependent, provider) device types of every PUBLISHED prerequisite."""
    if firmware.status is not FirmwareStatus.ACTIVE:
        raise v.invalid(
            "firmwareId",
            f"Firmware {firmware.version} is withdrawn: nothing may upgrade to it, so nothing "
            "needs its prerequisites.",
        )
    if wanted is own_type:
        raise v.invalid(
            "requiresDeviceType", "A prerequisite names a device of another type than its own."
        )
    cycle = type_cycle(declared, own_type.value, wanted.value)
    if cycle is not None:
        raise v.conflict(
            "requiresDeviceType",
            f"Prerequisites between device types would form a cycle ({' → '.join(cycle)}), "
            "so no premises could order its updates.",
        )


def same(existing: Any, ids: list[int] | None, gbcs: str | None, wanted: DeviceType) -> bool:
    """Whether a PUBLISHED prerequisite already says what a declaration would."""
    if existing.requires_device_type is not wanted:
        return False
    if ids is not None:
        return sorted(existing.requires_firmware_ids or ()) == ids
    return gbcs_key(existing.requires_gbcs_version) == gbcs_key(gbcs)


def firmware_text(found: Iterable[Required], ids: Sequence[int]) -> str:
    """The named firmware as history shows them: device key and version, in id order."""
    rows = {row[0]: row for row in found}
    return ", ".join(f"{rows[pk][3]} {rows[pk][1]}" for pk in ids)


def prerequisite_row(
    firmware_id: int, wanted: DeviceType, ids: list[int] | None, gbcs: str | None, by: str
) -> dict[str, Any]:
    now = utcnow()
    return {
        "firmware_id": firmware_id,
        "requires_device_type": wanted,
        "requires_firmware_ids": ids,
        "requires_gbcs_version": gbcs,
        "status": PathwayStatus.PUBLISHED,
        "declared_at": now,
        "declared_by": by,
        "updated_at": now,
    }


async def required_firmware(session: AsyncSession, ids: Iterable[int]) -> list[Required]:
    """Each named firmware's id, version, device type and device key, in one statement."""
    rows = await session.exec(
        select(  # type: ignore[call-overload]  # sqlmodel's select() types at most 4 columns
            Firmware.id,
            Firmware.version,
            Device.device_type,
            Manufacturer.identifier,
            Device.model_identifier,
            Device.hardware_version,
        )
        .join(Device, col(Device.id) == Firmware.device_id)
        .join(Manufacturer, col(Manufacturer.id) == Device.manufacturer_id)
        .where(col(Firmware.id).in_(list(ids)))
    )
    return [(pk, version, kind, f"{m}/{model}/{hw}") for pk, version, kind, m, model, hw in rows]


async def declared_types(session: AsyncSession) -> list[tuple[str, str]]:
    """(type of the firmware, type it requires) of every PUBLISHED prerequisite."""
    rows = await session.exec(
        select(col(Device.device_type), col(Prerequisite.requires_device_type))
        .select_from(Prerequisite)
        .join(Firmware, col(Firmware.id) == Prerequisite.firmware_id)
        .join(Device, col(Device.id) == Firmware.device_id)
        .where(Prerequisite.status == PathwayStatus.PUBLISHED)
        .distinct()
    )
    return [(dependent.value, provider.value) for dependent, provider in rows]


async def declare_prerequisite(
    work: Work,
    *,
    firmware_id: int | None,
    requires_device_type: DeviceType,
    requires_any_of_firmware: list[int | None] | None,
    requires_gbcs_version: str | None,
) -> Prerequisite:
    firmware = await _firmware(work, firmware_id)
    session = work.session
    named, gbcs = requirement(requires_any_of_firmware, requires_gbcs_version)
    own_type = (
        await session.exec(select(col(Device.device_type)).where(Device.id == firmware.device_id))
    ).one()
    check_declaration(own_type, firmware, requires_device_type, await declared_types(session))
    ids: list[int] | None = None
    text = None
    if named is not None:
        found = await required_firmware(session, [pk for pk in named if pk is not None])
        ids = check_required(requires_device_type, named, found)  # type: ignore[arg-type]  # requirement() refused None
        text = firmware_text(found, ids)
    existing = await session.exec(
        select(Prerequisite).where(
            Prerequisite.firmware_id == firmware.id,
            Prerequisite.status == PathwayStatus.PUBLISHED,
        )
    )
    for earlier in existing:
        if same(earlier, ids, gbcs, requires_device_type):
            raise v.conflict(
                "requiresDeviceType", "This firmware already has that prerequisite, published."
            )
    assert firmware.id is not None  # a loaded row
    row = prerequisite_row(firmware.id, requires_device_type, ids, gbcs, work.principal.party_id)
    prerequisite = Prerequisite(**row)
    session.add(prerequisite)
    await session.flush()
    assert prerequisite.id is not None  # flushed
    work.log.append(events.prerequisite_declared(prerequisite.id, firmware.device_id, row, text))
    return prerequisite


async def _prerequisite(work: Work, prerequisite_id: int | None) -> tuple[Prerequisite, int]:
    """The prerequisite and its firmware's device, once the caller's scope covers them."""
    statement = (
        _with_manufacturer(Prerequisite, Firmware.device_id, device_of=Firmware)
        .join(Prerequisite, col(Prerequisite.firmware_id) == Firmware.id)
        .where(Prerequisite.id == prerequisite_id)
    )
    prerequisite, device_id, _ = await _owned(
        work, statement, "prerequisiteId", "No prerequisite with that id."
    )
    return prerequisite, device_id


async def withdraw_prerequisite(
    work: Work, *, prerequisite_id: int | None, reason: str
) -> Prerequisite:
    prerequisite, device_id = await _prerequisite(work, prerequisite_id)
    reason = v.text(reason, "reason", v.MAX_REASON, required=True)
    if prerequisite.status is PathwayStatus.WITHDRAWN:
        raise v.conflict("prerequisiteId", "This prerequisite is already withdrawn.")
    before = {"status": prerequisite.status}
    prerequisite.status = PathwayStatus.WITHDRAWN
    prerequisite.updated_at = utcnow()
    work.log.append(
        Change(
            ChangeKind.PREREQUISITE_WITHDRAWN,
            device_id,
            changes(before, {"status": prerequisite.status}),
            reason=reason,
            firmware_id=prerequisite.firmware_id,
            prerequisite_id=prerequisite.id,
        )
    )
    await work.session.flush()
    return prerequisite


async def replay(work: Work, kind: str, row_id: int) -> Any:
    """An idempotent replay's first result, re-authorised as a fresh call would be."""
    if kind != "prerequisite":
        return await writes.replay(work, kind, row_id)
    prerequisite = (await _prerequisite(work, row_id))[0]
    work.session.expunge(prerequisite)  # stays readable after the transaction rolls back
    return prerequisite
