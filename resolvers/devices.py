"""Finding devices: the filters of `Query.devices`, keyset pagination and the total count, over
the snapshot of the CPL (`resolvers.snapshot`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from models.tables import DeviceType, ZigbeeBand
from resolvers.paging import Page
from resolvers.snapshot import CplSnapshot

CASE_FREE = frozenset({"manufacturer_identifier", "model_identifier", "hardware_version"})


@dataclass(frozen=True)
class DeviceSearch:
    """What a caller may filter on. Restricted fields are checked by the policy before this.
    Each field set must equal the device's value; identifiers in any case."""

    manufacturer_identifier: str | None = None
    device_type: DeviceType | None = None
    model_identifier: str | None = None
    hardware_version: str | None = None
    zigbee_band: ZigbeeBand | None = None
    zigbee_stack_version: str | None = None
    zigbee_chipset_vendor: str | None = None

    def wanted(self) -> dict[str, Any]:
        """The set fields, as the stored values they must equal."""
        return {
            name: value.strip().upper() if name in CASE_FREE else value
            for name, value in asdict(self).items()
            if value is not None
        }


def search_devices(
    snapshot: CplSnapshot, search: DeviceSearch, first: int, after_id: int | None
) -> Page[Any]:
    """One page in id order after `after_id`; the count covers every page of the search."""
    wanted = search.wanted()
    identifier = wanted.pop("manufacturer_identifier", None)
    manufacturers = snapshot.manufacturers

    def matches(device: Any) -> bool:
        if (
            identifier is not None
            and manufacturers[device.manufacturer_id].identifier != identifier
        ):
            return False
        return all(getattr(device, name) == value for name, value in wanted.items())

    rows, has_next, total = snapshot.page_of_devices(matches, first, after_id)

    async def count() -> int:
        return total

    return Page(rows=rows, has_next=has_next, count=count)
