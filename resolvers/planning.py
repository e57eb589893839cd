"""Upgrade planning against the database: per-device pathway graphs, cached, and fleet plans.

The routing itself is the pure planner (``resolvers.planner``); this module feeds it. A fleet
plan of tens of thousands of meters over thousands of devices has to answer in about a second,
so:

* each device's firmware and pathways are read once per request, for all devices together, in
  a constant number of statements (two, plus chunking of very long id lists);
* the graphs are kept across requests in a process-wide :class:`GraphCache` keyed by the data
  revision (the ``data_revision`` row every committed write bumps), so while the CPL is
  unchanged a request costs one small statement for the revision (and one for devices
  named by identifiers) and nothing more;
* rows are read as plain Core columns, not ORM objects, since building ORM instances would
  cost more than the planning;
* each distinct (device, firmware version) of a request is planned once.

Nothing here knows GraphQL: the schema layer decodes ids and turns results into types.
"""

from __future__ import annotations

import gc
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from models.codes import IDENTIFIER_DIGITS, VERSION_DIGITS, hex_code
from models.database import RequestSession, chunks
from models.tables import (
    DataRevision,
    Device,
    Firmware,
    FirmwareStatus,
    Manufacturer,
    PathwayStatus,
    UpgradePathway,
)
from resolvers.planner import BlockReason, FirmwareNode, PathwayEdge, PathwayGraph, Plan

__all__ = [
    "MAX_FLEET_ITEMS",
    "FleetEntry",
    "FleetItem",
    "FleetResult",
    "FleetSummary",
    "GraphCache",
    "data_revision",
    "device_ids_by_key",
    "plan_fleet",
]

MAX_FLEET_ITEMS = 50_000
DEFAULT_MAX_DEVICES = 50_000

# The tables, not the models: selecting Table columns keeps SQLAlchemy on its Core path, with no
# ORM compile or entity loading per row.
_MANUFACTURER: sa.Table = Manufacturer.__table__  # type: ignore[attr-defined]
_DEVICE: sa.Table = Device.__table__  # type: ignore[attr-defined]
_FIRMWARE: sa.Table = Firmware.__table__  # type: ignore[attr-defined]
_PATHWAY: sa.Table = UpgradePathway.__table__  # type: ignore[attr-defined]

DeviceKey = tuple[str, str, str]
"""(manufacturer identifier, model identifier, hardware version), upper case."""


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
    firmware_rows: list[Any] = []
    pathway_rows: list[Any] = []
    for chunk in chunks(device_ids):
        firmware_rows += await db.fetch(
            sa.select(
                _DEVICE.c.id,
                _FIRMWARE.c.id,
                _FIRMWARE.c.version,
                _FIRMWARE.c.status,
                _FIRMWARE.c.added_to_cpl_on,
            )
            .select_from(_DEVICE.outerjoin(_FIRMWARE, _FIRMWARE.c.device_id == _DEVICE.c.id))
            .where(_DEVICE.c.id.in_(chunk))
        )
    for chunk in chunks(device_ids):
        pathway_rows += await db.fetch(
            sa.select(
                _PATHWAY.c.device_id,
                _PATHWAY.c.id,
                _PATHWAY.c.from_firmware_id,
                _PATHWAY.c.to_firmware_id,
                _PATHWAY.c.status,
            ).where(_PATHWAY.c.device_id.in_(chunk))
        )
    with collector_paused():
        return _build_graphs(firmware_rows, pathway_rows)


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


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around a synchronous bulk build (never an await).

    Building a hundred thousand small objects that all survive would otherwise trigger repeated
    full collections over an already large heap (the cache itself): measured, that doubled the
    time of a cold load and of a 50,000-item plan. None of these objects form cycles, and no
    other coroutine can run inside the block, so nothing else sees the pause.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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


def _key(manufacturer: str, model: str, hardware: str) -> DeviceKey:
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
    wanted = {_key(*key) for key in keys}
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


@dataclass(slots=True)
class FleetEntry:
    """The answer for one item, at ``index`` (0-based) of the input.

    Exactly one of ``plan`` and ``problem`` is set. ``device_id`` is the device planned for (also
    when it was named by identifiers), None when the item named no known device.
    ``firmware_version`` is the caller's, normalised (stripped, upper case).
    """

    index: int
    device_id: int | None
    firmware_version: str
    meter_count: int
    plan: Plan | None
    problem: str | None


@dataclass(slots=True)
class FleetSummary:
    """Meters by outcome: ``up_to_date + upgradable + blocked == meters``.

    Up to date: reachable in 0 steps; upgradable: reachable in one or more; blocked: an
    unreachable plan or a problem item. ``meters_by_step_count`` holds (steps, meters) for the
    reachable plans, by ascending steps, 0 included.
    """

    meters: int
    up_to_date: int
    upgradable: int
    blocked: int
    meters_by_step_count: list[tuple[int, int]]


@dataclass(slots=True)
class FleetResult:
    entries: list[FleetEntry]
    summary: FleetSummary
    graphs: dict[int, PathwayGraph] = field(default_factory=dict)
    """The graphs planned over, by device id: the versions of a plan's steps are theirs."""


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
            key = _key(*parts)  # type: ignore[arg-type]
            for name, part in zip(_NAMES, key, strict=True):
                if hex_code(part, IDENTIFIER_DIGITS) is None:
                    problems.append(f"{name} must be 4 hexadecimal digits")
    if hex_code(version, VERSION_DIGITS) is None:
        problems.append(BAD_FIRMWARE)
    if item.meter_count < 1:
        problems.append(BAD_METER_COUNT)
    return problems, (None if problems else key)


@dataclass(slots=True)
class _Checked:
    """The first pass over the items: normalised versions, problems and what to look up."""

    versions: list[str]
    problems: list[str | None]
    keys: list[DeviceKey | None]
    wanted_keys: set[DeviceKey]
    wanted_ids: set[int]


async def plan_fleet(
    db: RequestSession, cache: GraphCache, items: Sequence[FleetItem]
) -> FleetResult:
    """Plan every item to its device's latest firmware and total the meters.

    An item that cannot be planned (bad input, unknown device, firmware version unknown for the
    device) gets a ``problem`` and no plan, and never fails the call; its meters count as
    blocked (a meterCount below 1 counts as 0). Plans that exist but are not reachable
    (NO_PATHWAY, TARGET_NOT_ACTIVE, UNKNOWN_TARGET_VERSION for a device with no ACTIVE
    firmware) are returned as plans and count as blocked too.

    Statements, whatever the number of items and devices (but for chunking of 5,000 ids): one
    for identifier lookups if any item names a device that way, one for the revision, and two
    for the devices whose graphs are not cached yet.

    Raises ``ValueError`` for more than ``MAX_FLEET_ITEMS`` items: the bound keeps one call's
    time and memory predictable, and a caller with more meters splits the fleet.
    """
    if len(items) > MAX_FLEET_ITEMS:
        raise ValueError(
            f"a fleet plan takes at most {MAX_FLEET_ITEMS:,} items a call and "
            f"{len(items):,} were given; split the fleet into several calls"
        )
    with collector_paused():
        checked = _check(items)
    ids_by_key = await device_ids_by_key(db, checked.wanted_keys) if checked.wanted_keys else {}
    checked.wanted_ids.update(ids_by_key.values())
    graphs = await cache.graphs(db, checked.wanted_ids) if checked.wanted_ids else {}
    with collector_paused():
        result = _plan(items, checked, ids_by_key, graphs)
    result.graphs = graphs
    return result


def _check(items: Sequence[FleetItem]) -> _Checked:
    count = len(items)
    checked = _Checked([""] * count, [None] * count, [None] * count, set(), set())
    versions, problems, keys = checked.versions, checked.problems, checked.keys
    wanted_ids = checked.wanted_ids
    for index, item in enumerate(items):
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


def _plan(
    items: Sequence[FleetItem],
    checked: _Checked,
    ids_by_key: dict[DeviceKey, int],
    graphs: dict[int, PathwayGraph],
) -> FleetResult:
    """The second pass: plan each distinct (device, version) once, build entries and totals."""
    versions, problems, keys = checked.versions, checked.problems, checked.keys
    entries: list[FleetEntry] = []
    append = entries.append
    memo: dict[tuple[int, str], Plan | None] = {}
    meters = up_to_date = upgradable = blocked = 0
    by_steps: dict[int, int] = {}
    for index, item in enumerate(items):
        version = versions[index]
        meter_count = item.meter_count
        problem = problems[index]
        plan: Plan | None = None
        device_id: int | None = None
        if problem is None:
            key = keys[index]
            if key is not None:
                device_id = ids_by_key.get(key)
                if device_id is None:
                    problem = UNKNOWN_DEVICE_KEY
            else:
                device_id = item.device_id
            if device_id is not None:
                memo_key = (device_id, version)
                if memo_key in memo:
                    plan = memo[memo_key]
                else:
                    graph = graphs.get(device_id)
                    if graph is not None:
                        plan = graph.plan(version)
                        if plan.reason is BlockReason.UNKNOWN_FROM_VERSION:
                            plan = None
                    memo[memo_key] = plan
                if plan is None:
                    if device_id in graphs:
                        problem = UNKNOWN_FIRMWARE
                    else:
                        problem = UNKNOWN_DEVICE_ID
                        device_id = None
        counted = meter_count if meter_count > 0 else 0
        meters += counted
        if plan is None:
            blocked += counted
        elif plan.reachable:
            steps = len(plan.steps)
            by_steps[steps] = by_steps.get(steps, 0) + counted
            if steps:
                upgradable += counted
            else:
                up_to_date += counted
        else:
            blocked += counted
        append(FleetEntry(index, device_id, version, meter_count, plan, problem))

    summary = FleetSummary(
        meters=meters,
        up_to_date=up_to_date,
        upgradable=upgradable,
        blocked=blocked,
        meters_by_step_count=sorted(by_steps.items()),
    )
    return FleetResult(entries=entries, summary=summary)
