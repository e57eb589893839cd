"""Per-device pathway graphs for the planner, read in bulk and cached by the data revision.

The routing itself is the pure planner (``resolvers.planner``); this module feeds it. A fleet
plan of tens of thousands of meters over thousands of devices has to answer in about a second,
so:

* each device's firmware and pathways are read once per request, for all devices together, in
  a constant number of statements (two, plus chunking of very long id lists);
* the graphs are kept across requests in a process-wide :class:`GraphCache` keyed by the data
  revision (the ``data_revision`` row every committed write bumps), so while the CPL is
  unchanged a request costs one small statement for the revision and nothing more;
* rows are read as plain Core columns, not ORM objects, since building ORM instances would
  cost more than the planning.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from models.database import RequestSession, chunks
from models.tables import (
    DataRevision,
    Device,
    Firmware,
    FirmwareStatus,
    PathwayStatus,
    UpgradePathway,
)
from resolvers.collector import collector_paused
from resolvers.planner import FirmwareNode, PathwayEdge, PathwayGraph

__all__ = ["DEFAULT_MAX_DEVICES", "GraphCache", "data_revision"]

DEFAULT_MAX_DEVICES = 50_000

# The tables, not the models: selecting Table columns keeps SQLAlchemy on its Core path, with no
# ORM compile or entity loading per row.
_DEVICE: sa.Table = Device.__table__  # type: ignore[attr-defined]
_FIRMWARE: sa.Table = Firmware.__table__  # type: ignore[attr-defined]
_PATHWAY: sa.Table = UpgradePathway.__table__  # type: ignore[attr-defined]


async def data_revision(db: RequestSession) -> int:
    """The CPL's data revision; any committed write changes it, so equal means unchanged."""
    found = await db.fetch(select(DataRevision.revision).where(DataRevision.id == 1))
    if not found:
        # Without the row no write could ever invalidate a cache: refuse rather than go stale.
        raise RuntimeError("the data_revision row is missing; run the database migrations")
    return int(found[0])


async def _load_graphs(db: RequestSession, device_ids: Sequence[int]) -> dict[int, PathwayGraph]:
    """Graphs of the given devices that exist, in two statements (per chunk of ids).

    The firmware statement is a LEFT JOIN from ``device`` so that it also tells which ids are
    devices at all: a device without firmware still gets a row and so an empty graph, while an
    id that is not a device gets none and is left out of the result. Every pathway is loaded,
    WITHDRAWN ones too, and the graph decides which are edges, so the routing rules live in one
    place.
    """
    firmware_rows = await _fetch_in_chunks(db, device_ids, _firmware_of)
    pathway_rows = await _fetch_in_chunks(db, device_ids, _pathways_of)
    with collector_paused():
        return _build_graphs(firmware_rows, pathway_rows)


async def _fetch_in_chunks(
    db: RequestSession, device_ids: Sequence[int], statement: Callable[[Sequence[int]], sa.Select]
) -> list[Any]:
    """The rows of `statement` for every chunk of ids, one statement a chunk, in chunk order."""
    rows: list[Any] = []
    for chunk in chunks(device_ids):
        rows += await db.fetch(statement(chunk))
    return rows


def _firmware_of(device_ids: Sequence[int]) -> sa.Select:
    return (
        sa.select(
            _DEVICE.c.id,
            _FIRMWARE.c.id,
            _FIRMWARE.c.version,
            _FIRMWARE.c.status,
            _FIRMWARE.c.added_to_cpl_on,
        )
        .select_from(_DEVICE.outerjoin(_FIRMWARE, _FIRMWARE.c.device_id == _DEVICE.c.id))
        .where(_DEVICE.c.id.in_(device_ids))
    )


def _pathways_of(device_ids: Sequence[int]) -> sa.Select:
    return sa.select(
        _PATHWAY.c.device_id,
        _PATHWAY.c.id,
        _PATHWAY.c.from_firmware_id,
        _PATHWAY.c.to_firmware_id,
        _PATHWAY.c.status,
    ).where(_PATHWAY.c.device_id.in_(device_ids))


def _build_graphs(firmware_rows: list[Any], pathway_rows: list[Any]) -> dict[int, PathwayGraph]:
    firmware: dict[int, list[FirmwareNode]] = {}
    pathways: dict[int, list[PathwayEdge]] = {}
    active = FirmwareStatus.ACTIVE
    published = PathwayStatus.PUBLISHED
    for device_id, firmware_id, version, status, added_on in firmware_rows:
        nodes = firmware.get(device_id)
        if nodes is None:
            nodes = firmware[device_id] = []
        if firmware_id is not None:
            nodes.append(FirmwareNode(firmware_id, version, status is active, added_on))
    for device_id, pathway_id, from_id, to_id, status in pathway_rows:
        edges = pathways.get(device_id)
        if edges is None:
            edges = pathways[device_id] = []
        edges.append(PathwayEdge(pathway_id, from_id, to_id, status is published))
    return {
        device_id: PathwayGraph(nodes, pathways.get(device_id, ()))
        for device_id, nodes in firmware.items()
    }


class GraphCache:
    """Pathway graphs of devices, shared by every request of the process, for one data revision.

    One per app. Each call reads the revision first; when it differs from the cached one the
    cache is dropped whole, so a committed change is seen by the next request and an unchanged
    CPL is never reloaded. Ids that are not devices are cached too (as absent), so repeating an
    unknown id costs nothing more while the revision holds.

    Safe under asyncio: every revision change starts a new generation (a new dict), and a load
    is stored only into the generation it began in, and only if that is still the current one,
    so a slow request can never put older data into a cache a newer revision has replaced.
    "Differs", not "is newer": a request whose snapshot predates a commit resets the cache to
    its older revision, which costs the next request a reload but can never serve stale data
    as current, and a database restored to an earlier revision is still noticed. Concurrent
    requests may load the same device twice; that only costs time.

    Memory is bounded by ``max_devices`` entries; the oldest stored are evicted first.
    """

    def __init__(self, max_devices: int = DEFAULT_MAX_DEVICES) -> None:
        if max_devices < 1:
            raise ValueError("max_devices must be at least 1")
        self.max_devices = max_devices
        self._revision: int | None = None
        # None marks an id known not to be a device. The dict is the generation: replaced,
        # never cleared, on a revision change.
        self._graphs: dict[int, PathwayGraph | None] = {}
        self.loaded = 0
        """How many device graphs were read from the database (for tests and metrics)."""

    @property
    def revision(self) -> int | None:
        return self._revision

    def __len__(self) -> int:
        return len(self._graphs)

    async def graphs(
        self, db: RequestSession, device_ids: Collection[int]
    ) -> dict[int, PathwayGraph]:
        """The graph of every id that is a device; ids that are not devices are left out.

        One statement for the revision, plus two (per 5,000 ids) for devices not yet cached.
        """
        revision = await data_revision(db)
        if revision != self._revision:
            self._revision = revision
            self._graphs = {}
        cached = self._graphs
        found: dict[int, PathwayGraph] = {}
        missing: list[int] = []
        for device_id in set(device_ids):
            if device_id in cached:
                graph = cached[device_id]
                if graph is not None:
                    found[device_id] = graph
            else:
                missing.append(device_id)
        if not missing:
            return found
        missing.sort()  # stable statements and index-friendly IN lists
        loaded = await _load_graphs(db, missing)
        self.loaded += len(loaded)
        found.update(loaded)
        if self._graphs is cached:  # still the generation this load began in
            for device_id in missing:
                cached[device_id] = loaded.get(device_id)
            excess = len(cached) - self.max_devices
            if excess > 0:
                for device_id in list(_first(cached, excess)):
                    del cached[device_id]
        return found


def _first(mapping: dict[int, Any], count: int) -> Iterator[int]:
    """The ``count`` oldest keys (dicts keep insertion order)."""
    for index, key in enumerate(mapping):
        if index >= count:
            return
        yield key
