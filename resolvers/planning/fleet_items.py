"""The items of a fleet plan as the caller sent them, and what is wrong with them on their face.

The first of a fleet plan's two passes (``resolvers.planning.fleet_plan``): each item's firmware
version normalised, its problems found without reading anything, and the ids and identifier keys of
the devices left to look up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.codes import IDENTIFIER_DIGITS, VERSION_DIGITS, hex_code
from resolvers.files.device_keys import DeviceKey, device_key
from resolvers.planning.slices import SLICE, Sliced

__all__ = [
    "BAD_DEVICE_ID",
    "BAD_FIRMWARE",
    "BAD_METER_COUNT",
    "BOTH_GIVEN",
    "NO_DEVICE_GIVEN",
    "UNKNOWN_DEVICE_ID",
    "UNKNOWN_DEVICE_KEY",
    "UNKNOWN_FIRMWARE",
    "CheckedItems",
    "FleetItem",
    "check_items",
]


@dataclass(frozen=True, slots=True)
class FleetItem:
    """One line of a fleet: a device (by id or by identifiers), a firmware version, meters.

    ``bad_device_id`` is set by the schema layer when the caller gave a deviceId that does not
    decode, so the item gets a problem instead of failing the whole call.
    """

    device_id: int | None
    bad_device_id: bool
    manufacturer_identifier: str | None
    model_identifier: str | None
    hardware_version: str | None
    firmware_version: str
    meter_count: int


# Problems say what was wrong with what the caller sent and never echo values or anything
# about devices beyond whether the one named exists.
BOTH_GIVEN = (
    "give either deviceId or manufacturerIdentifier, modelIdentifier and hardwareVersion, not both"
)
NO_DEVICE_GIVEN = "give deviceId, or manufacturerIdentifier, modelIdentifier and hardwareVersion"
BAD_DEVICE_ID = "deviceId is not a valid device id"
UNKNOWN_DEVICE_ID = "no device has this deviceId"
UNKNOWN_DEVICE_KEY = (
    "no device has this manufacturerIdentifier, modelIdentifier and hardwareVersion"
)
UNKNOWN_FIRMWARE = "firmwareVersion is not on the CPL for this device"
BAD_FIRMWARE = "firmwareVersion must be 8 hexadecimal digits"
BAD_METER_COUNT = "meterCount must be at least 1"
_NAMES = ("manufacturerIdentifier", "modelIdentifier", "hardwareVersion")


def _missing_parts(item: FleetItem) -> str:
    parts = (item.manufacturer_identifier, item.model_identifier, item.hardware_version)
    missing = [name for name, part in zip(_NAMES, parts, strict=True) if part is None]
    return f"{' and '.join(missing)} missing: {NO_DEVICE_GIVEN}"


def _input_problems(item: FleetItem, version: str) -> tuple[list[str], DeviceKey | None]:
    """What is wrong with the item on its face, and its normalised key if it names one."""
    problems: list[str] = []
    key: DeviceKey | None = None
    parts = (item.manufacturer_identifier, item.model_identifier, item.hardware_version)
    by_id = item.device_id is not None or item.bad_device_id
    any_part = any(part is not None for part in parts)
    if by_id and any_part:
        problems.append(BOTH_GIVEN)
    elif item.bad_device_id:
        problems.append(BAD_DEVICE_ID)
    elif not by_id:
        if None in parts:
            problems.append(_missing_parts(item) if any_part else NO_DEVICE_GIVEN)
        else:
            key = device_key(*parts)  # type: ignore[arg-type]  # None not in parts: each part is a str
            for name, part in zip(_NAMES, key, strict=True):
                if hex_code(part, IDENTIFIER_DIGITS) is None:
                    problems.append(f"{name} must be 4 hexadecimal digits")
    if hex_code(version, VERSION_DIGITS) is None:
        problems.append(BAD_FIRMWARE)
    if item.meter_count < 1:
        problems.append(BAD_METER_COUNT)
    return problems, (None if problems else key)


@dataclass(slots=True)
class CheckedItems:
    """The first pass over the items: normalised versions, problems and what to look up."""

    versions: list[str]
    problems: list[str | None]
    keys: list[DeviceKey | None]
    wanted_keys: set[DeviceKey]
    wanted_ids: set[int]


def check_items(items: Sequence[FleetItem]) -> Sliced[CheckedItems]:
    """The first pass, before anything is read: which items have problems, which devices to
    look up by id and which by identifiers. In slices (`resolvers.planning.slices.in_slices`)."""
    count = len(items)
    checked = CheckedItems([""] * count, [None] * count, [None] * count, set(), set())
    versions, problems, keys = checked.versions, checked.problems, checked.keys
    wanted_ids = checked.wanted_ids
    for index, item in enumerate(items):
        if index % SLICE == SLICE - 1:
            yield
        version = versions[index] = item.firmware_version.strip().upper()
        # Fast path for the common, well-formed item named by id.
        if (
            item.device_id is not None
            and not item.bad_device_id
            and item.manufacturer_identifier is None
            and item.model_identifier is None
            and item.hardware_version is None
            and item.meter_count >= 1
            and hex_code(version, VERSION_DIGITS) is not None
        ):
            wanted_ids.add(item.device_id)
            continue
        found, key = _input_problems(item, version)
        if found:
            problems[index] = "; ".join(found)
        elif key is not None:
            keys[index] = key
            checked.wanted_keys.add(key)
        elif item.device_id is not None:
            wanted_ids.add(item.device_id)
    return checked
