"""Per-request DataLoaders: each relation of a page of rows costs one statement, not one a row.

Built fresh for every request (never shared across callers), so a loader's cache can never hand
one Party's view to another.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlmodel import select
from strawberry.dataloader import DataLoader

from models.database import RequestSession, chunks
from models.tables import AuditEvent, Device, Firmware, Manufacturer, UpgradePathway, Webhook
from resolvers.planner import PathwayGraph
from resolvers.planning import GraphCache

T = TypeVar("T")


def _group(rows: Iterable[T], key: Callable[[T], int]) -> dict[int, list[T]]:
    grouped: dict[int, list[T]] = defaultdict(list)
    for row in rows:
        grouped[key(row)].append(row)
    return grouped


class Loaders:
    """The request's loaders; each loads by primary or foreign key in one batch."""

    def __init__(self, db: RequestSession, graphs: GraphCache) -> None:
        self.db = db
        self.graph = DataLoader(self._graphs(graphs))
        self.manufacturer = DataLoader(self._by_id(Manufacturer))
        self.device = DataLoader(self._by_id(Device))
        self.firmware = DataLoader(self._by_id(Firmware))
        self.pathway = DataLoader(self._by_id(UpgradePathway))
        self.event = DataLoader(self._by_id(AuditEvent))
        self.webhook = DataLoader(self._by_id(Webhook))
        self.devices_of_manufacturer = DataLoader(
            self._many(Device, Device.manufacturer_id, Device.id)
        )
        self.firmware_of_device = DataLoader(
            self._many(Firmware, Firmware.device_id, Firmware.added_to_cpl_on, Firmware.id)
        )
        self.pathways_from = DataLoader(
            self._many(UpgradePathway, UpgradePathway.from_firmware_id, UpgradePathway.id)
        )
        self.pathways_to = DataLoader(
            self._many(UpgradePathway, UpgradePathway.to_firmware_id, UpgradePathway.id)
        )
        self.history_of_device = DataLoader(
            self._many(AuditEvent, AuditEvent.device_id, AuditEvent.id)
        )
        self.history_of_firmware = DataLoader(
            self._many(AuditEvent, AuditEvent.firmware_id, AuditEvent.id)
        )
        self.history_of_pathway = DataLoader(
            self._many(AuditEvent, AuditEvent.pathway_id, AuditEvent.id)
        )

    def prime_devices(self, devices: Iterable[Device]) -> None:
        for device in devices:
            self.device.prime(device.id, device)

    def _graphs(self, cache: GraphCache) -> Callable[[list[int]], Any]:
        async def load(keys: list[int]) -> list[PathwayGraph | None]:
            found = await cache.graphs(self.db, keys)
            return [found.get(key) for key in keys]

        return load

    def _by_id(self, model: Any) -> Callable[[list[int]], Any]:
        async def load(keys: list[int]) -> list[Any]:
            found: dict[int, Any] = {}
            for chunk in chunks(keys):
                for row in await self.db.fetch(select(model).where(model.id.in_(chunk))):
                    found[row.id] = row
            return [found.get(key) for key in keys]

        return load

    def _many(self, model: Any, column: Any, *order: Any) -> Callable[[list[int]], Any]:
        async def load(keys: list[int]) -> list[list[Any]]:
            rows: list[Any] = []
            for chunk in chunks(keys):
                rows += await self.db.fetch(select(model).where(column.in_(chunk)).order_by(*order))
            grouped = _group(rows, lambda row: getattr(row, column.key))
            return [grouped.get(key, []) for key in keys]

        return load
