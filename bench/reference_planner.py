"""An independent reference planner, beside which the API's plans are measured and checked.

One SQL statement fetches a device's firmware and published pathways (``BASELINE_BY_ID``, or
by the device's identifiers), then a plain breadth-first search in Python plans the route. It
shares no code with ``resolvers/planning/``: its answers are the benchmark's cross-check.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models.tables import Device, Firmware, FirmwareStatus, Manufacturer, PathwayStatus
from models.tables import UpgradePathway as Pathway

Outcome = tuple[bool, tuple[int, ...]] | None
"""A plan as both sides see it: (reachable, pathway ids of the steps), or None for a problem."""


_F: sa.Table = Firmware.__table__  # type: ignore[attr-defined]
_P: sa.Table = Pathway.__table__  # type: ignore[attr-defined]
_D: sa.Table = Device.__table__  # type: ignore[attr-defined]
_M: sa.Table = Manufacturer.__table__  # type: ignore[attr-defined]
# Every firmware of the device, each with its outgoing PUBLISHED pathways (one row per pathway,
# or one row with NULLs when there is none): the whole graph in one statement.
_GRAPH = _F.outerjoin(
    _P, sa.and_(_P.c.from_firmware_id == _F.c.id, _P.c.status == PathwayStatus.PUBLISHED)
)
_COLUMNS = (_F.c.id, _F.c.version, _F.c.status, _F.c.added_to_cpl_on, _P.c.id, _P.c.to_firmware_id)
BASELINE_BY_ID = (
    sa.select(*_COLUMNS).select_from(_GRAPH).where(_F.c.device_id == sa.bindparam("device_id"))
)
BASELINE_BY_KEY = (
    sa.select(*_COLUMNS)
    .select_from(
        _GRAPH.join(_D, _D.c.id == _F.c.device_id).join(_M, _M.c.id == _D.c.manufacturer_id)
    )
    .where(
        _M.c.identifier == sa.bindparam("manufacturer"),
        _D.c.model_identifier == sa.bindparam("model"),
        _D.c.hardware_version == sa.bindparam("hardware"),
    )
)


def bfs(rows: Sequence[Any], from_version: str) -> Outcome:
    """Fewest steps to the latest ACTIVE firmware over PUBLISHED pathways into ACTIVE firmware.

    Outgoing pathways are expanded in ascending id order, which is the API's documented
    tie-break (lowest pathway ids among equally short routes). None: the version is unknown.
    """
    firmware: dict[int, tuple[str, bool, Any]] = {}
    edges: dict[int, list[tuple[int, int]]] = {}
    for firmware_id, version, status, added_on, pathway_id, to_id in rows:
        firmware[firmware_id] = (version, status is FirmwareStatus.ACTIVE, added_on)
        if pathway_id is not None:
            edges.setdefault(firmware_id, []).append((pathway_id, to_id))
    wanted = from_version.strip().upper()
    start = next((fid for fid, (v, _, _) in firmware.items() if v.upper() == wanted), None)
    if start is None:
        return None
    active = [fid for fid, (_, is_active, _) in firmware.items() if is_active]
    if not active:
        return (False, ())
    target = max(active, key=lambda fid: (firmware[fid][2], fid))
    parent: dict[int, tuple[int, int] | None] = {start: None}
    queue = deque([start])
    while queue and target not in parent:
        node = queue.popleft()
        for pathway_id, to_id in sorted(edges.get(node, ())):
            if to_id not in parent and to_id in firmware and firmware[to_id][1]:
                parent[to_id] = (node, pathway_id)
                queue.append(to_id)
    if target not in parent:
        return (False, ())
    steps: list[int] = []
    node = target
    while (link := parent[node]) is not None:
        node, pathway_id = link
        steps.append(pathway_id)
    return (True, tuple(reversed(steps)))


async def baseline_path(engine: AsyncEngine, device_id: int, version: str) -> Outcome:
    async with engine.connect() as connection:
        rows = (await connection.execute(BASELINE_BY_ID, {"device_id": device_id})).all()
    return bfs(rows, version)


@dataclass
class BaselineFleet:
    outcomes: list[Outcome]
    summary: dict[str, Any]
    statements: int


async def baseline_fleet(engine: AsyncEngine, items: list[dict[str, Any]]) -> BaselineFleet:
    """The same items, planned the plain way: one statement per distinct device named."""
    graphs: dict[tuple[Any, ...], Sequence[Any]] = {}
    memo: dict[tuple[tuple[Any, ...], str], Outcome] = {}
    outcomes: list[Outcome] = []
    meters = up_to_date = upgradable = blocked = 0
    by_steps: dict[int, int] = {}
    async with engine.connect() as connection:
        for item in items:
            reference = item_reference(item)
            count = item.get("meterCount", 1)
            outcome: Outcome = None
            if reference is not None and count >= 1:
                version = item["firmwareVersion"].strip().upper()
                key = (reference, version)
                if key in memo:
                    outcome = memo[key]
                else:
                    rows = graphs.get(reference)
                    if rows is None:
                        rows = graphs[reference] = await _graph_rows(connection, reference)
                    outcome = memo[key] = bfs(rows, version)
            outcomes.append(outcome)
            counted = max(count, 0)
            meters += counted
            if outcome is None or not outcome[0]:
                blocked += counted
            else:
                steps = len(outcome[1])
                by_steps[steps] = by_steps.get(steps, 0) + counted
                if steps:
                    upgradable += counted
                else:
                    up_to_date += counted
    summary = {
        "meters": meters,
        "upToDate": up_to_date,
        "upgradable": upgradable,
        "blocked": blocked,
        "metersByStepCount": [{"steps": s, "meters": m} for s, m in sorted(by_steps.items())],
    }
    return BaselineFleet(outcomes, summary, len(graphs))


def item_reference(item: dict[str, Any]) -> tuple[Any, ...] | None:
    """("id", n) or ("key", manufacturer, model, hardware); None when the item names none."""
    names = ("manufacturerIdentifier", "modelIdentifier", "hardwareVersion")
    parts = [item.get(name) for name in names]
    if "deviceId" in item:
        prefix, _, number = item["deviceId"].partition(":")
        if prefix != "device" or not number.isdigit() or any(p is not None for p in parts):
            return None
        return ("id", int(number))
    if any(p is None for p in parts):
        return None
    return ("key", *(p.strip().upper() for p in parts))


async def _graph_rows(connection: AsyncConnection, reference: tuple[Any, ...]) -> Sequence[Any]:
    if reference[0] == "id":
        statement, parameters = BASELINE_BY_ID, {"device_id": reference[1]}
    else:
        _, manufacturer, model, hardware = reference
        statement = BASELINE_BY_KEY
        parameters = {"manufacturer": manufacturer, "model": model, "hardware": hardware}
    return (await connection.execute(statement, parameters)).all()


def api_outcome(plan: dict[str, Any] | None) -> Outcome:
    if plan is None:
        return None
    steps = tuple(int(step["id"].partition(":")[2]) for step in plan["steps"])
    return (plan["reachable"], steps)


def check_fleet(data: dict[str, Any], expected: BaselineFleet) -> int:
    """The API's entries and summary must equal the baseline's; returns the items checked."""
    entries = data["fleetPlan"]["entries"]
    assert len(entries) == len(expected.outcomes), "fleetPlan: wrong number of entries"
    for position, (entry, outcome) in enumerate(zip(entries, expected.outcomes, strict=True)):
        where = f"fleetPlan entry {position}"
        assert entry["index"] == position, f"{where} has index {entry['index']}"
        got = api_outcome(entry["plan"])
        assert (entry["problem"] is None) == (got is not None), f"{where}: not plan xor problem"
        assert got == outcome, f"{where}: API {got} != baseline {outcome}"
    summary = data["fleetPlan"]["summary"]
    assert summary == expected.summary, f"fleetPlan summary: API {summary} != {expected.summary}"
    return len(entries)
