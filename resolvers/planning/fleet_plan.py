"""Fleet plans: every item planned to its device's latest firmware, and the meters totalled.

Two passes over the items around the reads: the first (``resolvers.planning.fleet_items``)
normalises and checks them and gathers the devices to look up; then one statement for devices named
by identifiers, and each device's graph from the CPL snapshot the caller holds; the second plans
each distinct (device, firmware version) once and totals the meters. Nothing here knows GraphQL: the
schema layer decodes ids and turns results into types.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from models.database import RequestSession
from resolvers.files.device_keys import DeviceKey, device_ids_by_key
from resolvers.planning.fleet_items import (
    UNKNOWN_DEVICE_ID,
    UNKNOWN_DEVICE_KEY,
    UNKNOWN_FIRMWARE,
    CheckedItems,
    FleetItem,
    check_items,
)
from resolvers.planning.planner import BlockReason, PathwayGraph, Plan
from resolvers.planning.slices import SLICE, Sliced, in_slices
from resolvers.reads.snapshot import CplSnapshot

__all__ = [
    "MAX_FLEET_ITEMS",
    "FleetEntry",
    "FleetResult",
    "FleetSummary",
    "plan_fleet",
]

MAX_FLEET_ITEMS = 50_000
GRAPH_SLICE = 100  # graphs built between two turns of the loop: each reads tens of rows


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
    reachable plans, by ascending steps, 0 included. ``blocked_by_reason`` holds (reason,
    meters) for the blocked meters, by the reasons' order, items with a problem (reason None)
    last; only reasons some item had.
    """

    meters: int
    up_to_date: int
    upgradable: int
    blocked: int
    meters_by_step_count: list[tuple[int, int]]
    blocked_by_reason: list[tuple[BlockReason | None, int]] = field(default_factory=list)
    # Fleets by premises (`resolvers.planning.fleet_premises`): their premises, and the premises
    # and meters blocked by prerequisites.
    premises: int = 0
    premises_blocked_by_prerequisites: int = 0
    meters_blocked_by_prerequisites: int = 0


@dataclass(slots=True)
class FleetResult:
    entries: list[FleetEntry]
    summary: FleetSummary
    graphs: dict[int, PathwayGraph] = field(default_factory=dict)
    """The graphs planned over, by device id: the versions of a plan's steps are theirs."""


async def plan_fleet(
    db: RequestSession, snapshot: CplSnapshot, items: Sequence[FleetItem]
) -> FleetResult:
    """Plan every item to its device's latest firmware and total the meters.

    An item that cannot be planned (bad input, unknown device, firmware version unknown for the
    device) gets a ``problem`` and no plan, and never fails the call; its meters count as
    blocked (a meterCount below 1 counts as 0). Plans that exist but are not reachable
    (NO_PATHWAY, TARGET_NOT_ACTIVE, UNKNOWN_TARGET_VERSION for a device with no ACTIVE
    firmware) are returned as plans and count as blocked too.

    Statements, whatever the number of items and devices (but for chunking of 5,000 ids): one
    for identifier lookups if any item names a device that way, and nothing else: the graphs
    are the snapshot's, built the first time a device is planned in its revision.

    The passes run in slices (``resolvers.planning.slices``): other requests are served between
    them.

    Raises ``ValueError`` for more than ``MAX_FLEET_ITEMS`` items: the bound keeps one call's
    time and memory predictable, and a caller with more meters splits the fleet.
    """
    if len(items) > MAX_FLEET_ITEMS:
        raise ValueError(
            f"a fleet plan takes at most {MAX_FLEET_ITEMS:,} items a call and "
            f"{len(items):,} were given; split the fleet into several calls"
        )
    checked = await in_slices(check_items(items))
    ids_by_key = await device_ids_by_key(db, checked.wanted_keys) if checked.wanted_keys else {}
    checked.wanted_ids.update(ids_by_key.values())
    graphs = await in_slices(_graphs(snapshot, checked.wanted_ids))
    result = await in_slices(_plan(items, checked, ids_by_key, graphs))
    result.graphs = graphs
    return result


def _graphs(snapshot: CplSnapshot, device_ids: set[int]) -> Sliced[dict[int, PathwayGraph]]:
    """The graph of each device wanted (built the first time in the snapshot's revision)."""
    graphs: dict[int, PathwayGraph] = {}
    for count, device_id in enumerate(device_ids):
        if count % GRAPH_SLICE == GRAPH_SLICE - 1:
            yield
        if (graph := snapshot.graph(device_id)) is not None:
            graphs[device_id] = graph
    return graphs


def _plan(
    items: Sequence[FleetItem],
    checked: CheckedItems,
    ids_by_key: dict[DeviceKey, int],
    graphs: dict[int, PathwayGraph],
) -> Sliced[FleetResult]:
    """The second pass: plan each distinct (device, version) once, build entries and totals."""
    versions, problems, keys = checked.versions, checked.problems, checked.keys
    entries: list[FleetEntry] = []
    append = entries.append
    memo: dict[tuple[int, str], Plan | None] = {}
    meters = up_to_date = upgradable = blocked = 0
    by_steps: dict[int, int] = {}
    by_reason: dict[BlockReason | None, int] = {}
    for index, item in enumerate(items):
        if index % SLICE == SLICE - 1:
            yield
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
            by_reason[None] = by_reason.get(None, 0) + counted
        elif plan.reachable:
            steps = len(plan.steps)
            by_steps[steps] = by_steps.get(steps, 0) + counted
            if steps:
                upgradable += counted
            else:
                up_to_date += counted
        else:
            blocked += counted
            by_reason[plan.reason] = by_reason.get(plan.reason, 0) + counted
        append(FleetEntry(index, device_id, version, meter_count, plan, problem))

    summary = FleetSummary(
        meters=meters,
        up_to_date=up_to_date,
        upgradable=upgradable,
        blocked=blocked,
        meters_by_step_count=sorted(by_steps.items()),
        blocked_by_reason=sorted(by_reason.items(), key=reason_order),
    )
    return FleetResult(entries=entries, summary=summary)


_REASONS = list(BlockReason)


def reason_order(item: tuple[BlockReason | None, int]) -> int:
    """By the reasons' declared order; items with a problem (no plan, no reason) last."""
    return _REASONS.index(item[0]) if item[0] is not None else len(_REASONS)
