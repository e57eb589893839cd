"""Finding devices: the filters of `Query.devices`, keyset pagination and the total count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import select

from models.database import RequestSession
from models.tables import Device, DeviceType, Manufacturer, ZigbeeBand
from resolvers.paging import Page, page_of


@dataclass(frozen=True)
class DeviceSearch:
    """What a caller may filter on. Restricted fields are checked by the policy before this."""

    manufacturer_identifier: str | None = None
    device_type: DeviceType | None = None
    model_identifier: str | None = None
    hardware_version: str | None = None
    zigbee_band: ZigbeeBand | None = None
    zigbee_stack_version: str | None = None
    zigbee_chipset_vendor: str | None = None

    def conditions(self) -> list[Any]:
        equal = {
            Device.device_type: self.device_type,
            Device.model_identifier: _upper(self.model_identifier),
            Device.hardware_version: _upper(self.hardware_version),
            Device.zigbee_band: self.zigbee_band,
            Device.zigbee_stack_version: self.zigbee_stack_version,
            Device.zigbee_chipset_vendor: self.zigbee_chipset_vendor,
        }
        conditions = [column == value for column, value in equal.items() if value is not None]
        if self.manufacturer_identifier is not None:
            conditions.append(
                Device.manufacturer_id.in_(
                    select(Manufacturer.id).where(
                        Manufacturer.identifier == _upper(self.manufacturer_identifier)
                    )
                )
            )
        return conditions


def _upper(value: str | None) -> str | None:
    return value.strip().upper() if value is not None else None


async def search_devices(
    db: RequestSession, search: DeviceSearch, first: int, after_id: int | None
) -> Page[Device]:
    """One page in id order after `after_id`; the count covers every page of the search."""
    return await page_of(db, Device, search.conditions(), first, after_id)
