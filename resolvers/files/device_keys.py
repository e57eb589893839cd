"""Devices named by their identifiers (manufacturer identifier, model identifier, hardware
version) rather than by id, as fleet plans and fleet files may name them."""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa

from models.database import RequestSession, chunks
from models.tables import Device, Manufacturer

__all__ = ["DeviceKey", "device_ids_by_key", "device_key"]

_MANUFACTURER: sa.Table = Manufacturer.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
_DEVICE: sa.Table = Device.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass

DeviceKey = tuple[str, str, str]
"""(manufacturer identifier, model identifier, hardware version), upper case."""


def device_key(manufacturer: str, model: str, hardware: str) -> DeviceKey:
    return manufacturer.strip().upper(), model.strip().upper(), hardware.strip().upper()


async def device_ids_by_key(
    db: RequestSession, keys: Collection[DeviceKey]
) -> dict[DeviceKey, int]:
    """Device ids by (manufacturer identifier, model identifier, hardware version).

    Keys are normalised (stripped, upper case) and the result is keyed by the normalised key;
    keys naming no device are absent. One statement for up to 5,000 distinct manufacturers and
    5,000 distinct models: it filters by both sets and the exact triples are matched here,
    which stays one short statement where a row-value IN list would need three parameters a
    key and be chunked far sooner.
    """
    wanted = {device_key(*key) for key in keys}
    if not wanted:
        return {}
    manufacturers = sorted({key[0] for key in wanted})
    models = sorted({key[1] for key in wanted})
    found: dict[DeviceKey, int] = {}
    for manufacturer_chunk in chunks(manufacturers):
        for model_chunk in chunks(models):
            rows = await db.fetch(
                sa.select(
                    _MANUFACTURER.c.identifier,
                    _DEVICE.c.model_identifier,
                    _DEVICE.c.hardware_version,
                    _DEVICE.c.id,
                )
                .select_from(
                    _DEVICE.join(_MANUFACTURER, _MANUFACTURER.c.id == _DEVICE.c.manufacturer_id)
                )
                .where(
                    _MANUFACTURER.c.identifier.in_(manufacturer_chunk),
                    _DEVICE.c.model_identifier.in_(model_chunk),
                )
            )
            for manufacturer, model, hardware, device_id in rows:
                key = (manufacturer, model, hardware)
                if key in wanted:
                    found[key] = device_id
    return found
