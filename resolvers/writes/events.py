"""The change log's entries, built once for the mutations and the file import alike.

Each builder returns a typed `Change` with the before and after of every field it names; the
unit of work stores it as an audit event and hands it to the change log's consumers.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import date
from typing import Any

from models.tables import ChangeKind, Device, utcnow
from resolvers.writes.change_log import Change, FieldChange
from resolvers.writes.entry_rules import public_history


def _value(value: Any) -> str | None:
    if value is None or type(value) is str:
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def changes(
    before: Mapping[str, Any], after: Mapping[str, Any], *, always: bool = False
) -> tuple[FieldChange, ...]:
    """Each field's before and after: the changed ones, or with `always` every one given.

    Writes that touch SSC-only fields record them `always`: whether an entry is there must not
    tell a reader who cannot see the values that a guess was right or that a value is unset,
    and an entry naming them hides the event's free-text reason from such readers."""
    found = []
    for name, value in after.items():
        old, new = _value(before.get(name)), _value(value)
        if always or old != new:
            found.append(FieldChange(name, old, new))
    return tuple(found)


def device_added(device_id: int, manufacturer_identifier: str, fields: Mapping[str, Any]) -> Change:
    """A new device's change; every field is recorded (SSC-only ones included, `always`)."""
    changed = changes({}, {"manufacturer": manufacturer_identifier, **fields}, always=True)
    return Change(ChangeKind.DEVICE_ADDED, device_id, changed)


def firmware_added(firmware_id: int, row: Mapping[str, Any]) -> Change:
    """A new firmware's change; `row` holds its column values. The SSC-only stack version is
    recorded `always`, set or not."""
    changed = changes(
        {},
        {
            "version": row["version"],
            "status": row["status"],
            "imageHash": row["image_hash"],
            "addedToCplOn": row["added_to_cpl_on"],
            **public_history(row),
        },
    )
    stack = changes({}, {"zigbeeStackVersion": row.get("zigbee_stack_version")}, always=True)
    return Change(
        ChangeKind.FIRMWARE_ADDED, row["device_id"], changed + stack, firmware_id=firmware_id
    )


def firmware_details_changed(
    firmware_id: int,
    device_id: int,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    reason: str | None,
) -> Change:
    """A firmware's entry facts or statement changed (`before` and `after` by history name);
    a change that names the SSC-only stack version records it `always`."""
    public = {name: value for name, value in after.items() if name != "zigbeeStackVersion"}
    changed = changes(before, public)
    if "zigbeeStackVersion" in after:
        stack = {"zigbeeStackVersion": after["zigbeeStackVersion"]}
        changed += changes(before, stack, always=True)
    return Change(
        ChangeKind.FIRMWARE_DETAILS_CHANGED,
        device_id,
        changed,
        reason=reason,
        firmware_id=firmware_id,
    )


def pathway_published(
    pathway_id: int, row: Mapping[str, Any], from_version: str, to_version: str
) -> Change:
    """A new pathway's change; `row` holds its column values."""
    changed = changes(
        {},
        {"from": from_version, "to": to_version, "status": row["status"], "notes": row["notes"]},
    )
    return Change(ChangeKind.PATHWAY_PUBLISHED, row["device_id"], changed, pathway_id=pathway_id)


def prerequisite_declared(
    prerequisite_id: int, device_id: int, row: Mapping[str, Any], firmware: str | None
) -> Change:
    """A new prerequisite's change; `row` holds its column values, `firmware` the firmware it
    names as history shows them (`prerequisites.firmware_text`)."""
    changed = changes(
        {},
        {
            "requiresDeviceType": row["requires_device_type"],
            "requiresAnyOfFirmware": firmware,
            "requiresGbcsVersion": row["requires_gbcs_version"],
            "status": row["status"],
        },
    )
    return Change(
        ChangeKind.PREREQUISITE_DECLARED,
        device_id,
        changed,
        firmware_id=row["firmware_id"],
        prerequisite_id=prerequisite_id,
    )


def zigbee_set(device: Device, wanted: dict[str, Any], reason: str | None) -> Change:
    """Set the given Zigbee fields (validated by `rules.zigbee_fields`, None left out) and
    return its change (a mutation's and the import's alike)."""
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
