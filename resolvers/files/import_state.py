"""What a CPL file's import reads of the CPL before it plans: the devices and firmware as they
are (a statement each, plain rows), and the firmware as it will be once the file's rows are
written, for the checks of its entries (`resolvers.files.import_entries`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import Device, Firmware, FirmwareStatus, Manufacturer
from resolvers.files.import_entries import ENTRY_COLUMNS
from resolvers.files.import_pathways import FirmwareRef

DeviceKey = tuple[str, str, str]
_MANUFACTURER: sa.Table = Manufacturer.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
_DEVICE: sa.Table = Device.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
_FIRMWARE: sa.Table = Firmware.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass


def stand_in(index: int) -> int:
    """The id the file's `index`-th new firmware has until it is written: never a row's."""
    return -(index + 1)


async def stored_devices(session: AsyncSession) -> dict[DeviceKey, dict[str, Any]]:
    device, manufacturer = _DEVICE, _MANUFACTURER
    rows = await session.exec(  # type: ignore[call-overload]  # exec() types only sqlmodel's select()
        sa.select(
            manufacturer.c.identifier,
            device.c.model_identifier,
            device.c.hardware_version,
            device.c.id,
            device.c.model_name,
            device.c.device_type,
            device.c.zigbee_band,
            device.c.zigbee_stack_version,
            device.c.zigbee_chipset_vendor,
        ).select_from(device.join(manufacturer, manufacturer.c.id == device.c.manufacturer_id))
    )
    return {(r[0], r[1], r[2]): dict(r._mapping) for r in rows}


async def stored_firmware(session: AsyncSession) -> dict[tuple[int, str], dict[str, Any]]:
    table = _FIRMWARE
    rows = await session.exec(  # type: ignore[call-overload]  # exec() types only sqlmodel's select()
        sa.select(
            table.c.id,
            table.c.device_id,
            table.c.version,
            table.c.status,
            table.c.image_hash,
            table.c.added_to_cpl_on,
            *(table.c[column] for column in ENTRY_COLUMNS),
        )
    )
    return {(r.device_id, r.version): dict(r._mapping) for r in rows}


def entry_state(
    stored: dict[DeviceKey, dict[str, Any]],
    firmware: dict[tuple[int, str], dict[str, Any]],
    withdrawn: set[int],
    new: Iterable[tuple[DeviceKey, str, bool]],
) -> tuple[dict[str, tuple[DeviceKey, FirmwareRef]], dict[DeviceKey, dict[str, FirmwareRef]]]:
    """The CPL's entry ids, and every device's firmware by version as it will be: the ids in
    `withdrawn` WITHDRAWN, and the file's `new` firmware (key, version, withdrawn) under
    stand-in ids, in order."""
    key_of = {device["id"]: key for key, device in stored.items()}
    versions: dict[DeviceKey, dict[str, FirmwareRef]] = {}
    entries: dict[str, tuple[DeviceKey, FirmwareRef]] = {}
    for row in firmware.values():
        key = key_of[row["device_id"]]
        status = FirmwareStatus.WITHDRAWN if row["id"] in withdrawn else row["status"]
        ref = FirmwareRef(row["id"], row["version"], status)
        versions.setdefault(key, {})[row["version"]] = ref
        if row["cpl_entry_id"] is not None:
            entries[row["cpl_entry_id"]] = (key, ref)
    for index, (key, version, gone) in enumerate(new):
        status = FirmwareStatus.WITHDRAWN if gone else FirmwareStatus.ACTIVE
        versions.setdefault(key, {})[version] = FirmwareRef(stand_in(index), version, status)
    return entries, versions
