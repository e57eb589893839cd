"""Per-request DataLoaders. The CPL's own rows (manufacturers, devices, firmware, pathways) come
from the caller's view of the data revision's snapshot (`resolvers.reads.snapshot`), taken once a
request; an id it does not hold yet (a row newer than the snapshot) is read from the database
and put through the same view. History and
webhooks cost one statement a relation of a page, not one a row.

Built fresh for every request (never shared across callers), so a loader's cache can never hand
one Party's view to another.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlmodel import select
from strawberry.dataloader import DataLoader

from models.database import RequestSession, chunks
from models.tables import (
    AuditEvent,
    Device,
    Firmware,
    Manufacturer,
    Prerequisite,
    UpgradePathway,
    Webhook,
)
from resolvers.reads.snapshot import CplSnapshot, SnapshotCache, in_view

T = TypeVar("T")


def _group(rows: Iterable[T], key: Callable[[T], int]) -> dict[int, list[T]]:
    grouped: dict[int, list[T]] = defaultdict(list)
    for row in rows:
        grouped[key(row)].append(row)
    return grouped


class _Loader:
    """A loader of the request, made the first time it is used: most requests read the
    snapshot alone, and a page's answers are mostly reused (`schema.completions`)."""

    def __init__(self, make: Callable[[Loaders], Callable[[list[int]], Any]]) -> None:
        self.make = make

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, loaders: Loaders, owner: type | None = None) -> DataLoader[int, Any]:
        loader = loaders.__dict__[self.name] = DataLoader(self.make(loaders))
        return loader


class Loaders:
    """The request's loaders; each loads by primary or foreign key in one batch."""

    manufacturer = _Loader(lambda self: self._in_snapshot("manufacturers", Manufacturer))
    device = _Loader(lambda self: self._in_snapshot("devices", Device))
    firmware = _Loader(lambda self: self._in_snapshot("firmware", Firmware))
    pathway = _Loader(lambda self: self._in_snapshot("pathways", UpgradePathway))
    prerequisite = _Loader(lambda self: self._in_snapshot("prerequisites", Prerequisite))
    event = _Loader(lambda self: self._by_id(AuditEvent))
    webhook = _Loader(lambda self: self._by_id(Webhook))
    devices_of_manufacturer = _Loader(lambda self: self._related("devices_of_manufacturer"))
    firmware_of_device = _Loader(lambda self: self._related("firmware_of_device"))
    pathways_from = _Loader(lambda self: self._related("pathways_from"))
    pathways_to = _Loader(lambda self: self._related("pathways_to"))
    prerequisites_of = _Loader(lambda self: self._related("prerequisites_of"))
    history_of_device = _Loader(
        lambda self: self._many(AuditEvent, AuditEvent.device_id, AuditEvent.id)
    )
    history_of_firmware = _Loader(
        lambda self: self._many(AuditEvent, AuditEvent.firmware_id, AuditEvent.id)
    )
    history_of_pathway = _Loader(
        lambda self: self._many(AuditEvent, AuditEvent.pathway_id, AuditEvent.id)
    )
    history_of_prerequisite = _Loader(
        lambda self: self._many(AuditEvent, AuditEvent.prerequisite_id, AuditEvent.id)
    )

    def __init__(
        self, db: RequestSession, snapshots: SnapshotCache, granted: tuple[str, ...]
    ) -> None:
        self.db = db
        self.granted = granted  # the caller's capability: which view of the CPL it reads
        self._snapshots = snapshots
        self._snapshot: asyncio.Future[CplSnapshot] | None = None
        self.held: CplSnapshot | None = None  # once loaded: read synchronously

    async def snapshot(self) -> CplSnapshot:
        """The caller's view of the snapshot this request reads, the same for all its fields:
        at once when the snapshot is known current (no task, no turn of the loop), else as
        one load that every field of the request awaits."""
        if self.held is not None:
            return self.held
        if self._snapshot is None:
            if (fresh := self._snapshots.fresh()) is not None:
                self.held = fresh.view(self.granted)
                return self.held
            self._snapshot = asyncio.ensure_future(self._view())
        self.held = await self._snapshot
        return self.held

    async def _view(self) -> CplSnapshot:
        return (await self._snapshots.current()).view(self.granted)

    # Relations of the CPL's rows: the value itself once the snapshot is held (a plain value
    # resolves without graphql-core's awaitable machinery), else an awaitable of it.

    def one(self, rows: str, loader: DataLoader, key: int) -> Any:
        """A row by id; one newer than the held snapshot is loaded."""
        if self.held is not None and (row := getattr(self.held, rows).get(key)) is not None:
            return row
        return loader.load(key)

    def related(self, index: str, loader: DataLoader, key: int) -> Any:
        if self.held is not None:
            return getattr(self.held, index).get(key, [])
        return loader.load(key)

    def latest_firmware(self, device_id: int) -> Any:
        if self.held is not None:
            return self.held.latest_firmware.get(device_id)
        return self._latest_later(device_id)

    def withdrawal(self, kind: str, key: int) -> Any:
        """The day a firmware's or pathway's announced withdrawal takes effect (None: none)."""
        if self.held is not None:
            return self.held.withdrawals.get((kind, key))
        return self._withdrawal_later(kind, key)

    async def _withdrawal_later(self, kind: str, key: int) -> Any:
        return (await self.snapshot()).withdrawals.get((kind, key))

    async def _latest_later(self, device_id: int) -> Any:
        return (await self.snapshot()).latest_firmware.get(device_id)

    def _in_snapshot(self, rows: str, model: Any) -> Callable[[list[int]], Any]:
        from_database = self._by_id(model)

        async def load(keys: list[int]) -> list[Any]:
            held = getattr(await self.snapshot(), rows)
            found = {key: held[key] for key in keys if key in held}
            missing = [key for key in keys if key not in found]
            if missing:
                newer = [in_view(row, self.granted) for row in await from_database(missing)]
                found |= dict(zip(missing, newer, strict=True))
            return [found.get(key) for key in keys]

        return load

    def _related(self, index: str) -> Callable[[list[int]], Any]:
        async def load(keys: list[int]) -> list[list[Any]]:
            related = getattr(await self.snapshot(), index)
            return [related.get(key, []) for key in keys]

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
