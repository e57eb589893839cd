"""What a committed change does to each Supplier's stored fleet, in meters, worked out in the
change's own transaction.

A change names one device. The fleets that hold meters on it are found through the index of
fleet groups by device and firmware version (`models.fleets.FleetGroup`), in one statement
whatever the number of Parties; when none does (most changes), that statement is all it costs.
Otherwise the device's firmware and pathways are read as the transaction now holds them (the
state after every change of the unit of work), and each change's state before is made by
undoing the unit's changes on that device, last first. Each distinct firmware version held is
planned once on each side, by `fleetPlan`'s planner, and the meters are summed per Party:

- affected: meters whose plan changes (its outcome, target or steps), or whose firmware,
  target or a step is the firmware or pathway the change names;
- newly blocked: not blocked before, blocked after (as `FleetSummary.blocked` counts);
- newly upgradable: not upgradable before, upgradable after (as `FleetSummary.upgradable`).

A withdrawal announced for a later day changes nothing yet: its "after" is the state with it
applied, so each owner hears now what it will do. Rows are written for the Parties with
affected meters only, and read only for their own Party (`models.notice.FleetImpact`).
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.database import chunks
from models.fleets import FleetGroup, StoredFleet
from models.notice import FleetImpact
from models.tables import ChangeKind, Firmware, FirmwareStatus, PathwayStatus, UpgradePathway
from resolvers.planning.planner import FirmwareNode, PathwayEdge, PathwayGraph, Plan
from resolvers.writes.change_log import Change, Recorded

__all__ = ["PLAN_KINDS", "Meters", "State", "fleet_impacts", "impact_of", "store_impacts"]

_K = ChangeKind
# The kinds that may change a plan, or name a firmware or pathway a plan uses.
PLAN_KINDS = frozenset(
    {
        _K.FIRMWARE_ADDED.value,
        _K.FIRMWARE_WITHDRAWN.value,
        _K.PATHWAY_PUBLISHED.value,
        _K.PATHWAY_CORRECTED.value,
        _K.PATHWAY_WITHDRAWN.value,
        _K.FIRMWARE_WITHDRAWAL_SCHEDULED.value,
        _K.PATHWAY_WITHDRAWAL_SCHEDULED.value,
    }
)
_TABLE: sa.Table = FleetImpact.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass


class _Outcome(enum.Enum):
    UP_TO_DATE = "up to date"
    UPGRADABLE = "upgradable"
    BLOCKED = "blocked"


def _outcome(plan: Plan) -> _Outcome:
    if not plan.reachable:
        return _Outcome.BLOCKED
    return _Outcome.UPGRADABLE if plan.steps else _Outcome.UP_TO_DATE


def _route(plan: Plan) -> tuple[Any, ...]:
    return (plan.reachable, plan.target.id if plan.target else None, [s.id for s in plan.steps])


@dataclass(slots=True)
class Meters:
    """One Party's numbers for one change."""

    affected: int = 0
    newly_blocked: int = 0
    newly_upgradable: int = 0


@dataclass(slots=True)
class State:
    """One device's firmware and pathways, as the planner takes them, at one moment."""

    nodes: dict[int, FirmwareNode]
    edges: dict[int, PathwayEdge]

    def graph(self) -> PathwayGraph:
        return PathwayGraph(self.nodes.values(), self.edges.values())

    def copy(self) -> State:
        return State(dict(self.nodes), dict(self.edges))

    def _by_version(self, version: str | None) -> int | None:
        return next((n.id for n in self.nodes.values() if n.version == version), None)

    def with_edge(self, pathway_id: int | None, **values: Any) -> None:
        if pathway_id in self.edges:
            self.edges[pathway_id] = replace(self.edges[pathway_id], **values)

    def with_node(self, firmware_id: int | None, **values: Any) -> None:
        if firmware_id in self.nodes:
            self.nodes[firmware_id] = replace(self.nodes[firmware_id], **values)

    def before(self, change: Change) -> State:
        """The state before `change`, this being the state after it."""
        earlier = self.copy()
        kind = change.action.value
        if kind == "FIRMWARE_ADDED":
            earlier.nodes.pop(change.firmware_id or 0, None)
        elif kind == "FIRMWARE_WITHDRAWN":
            earlier.with_node(change.firmware_id, active=True)
        elif kind == "PATHWAY_PUBLISHED":
            earlier.edges.pop(change.pathway_id or 0, None)
        elif kind == "PATHWAY_WITHDRAWN":
            earlier.with_edge(change.pathway_id, published=True)
        elif kind == "PATHWAY_CORRECTED":
            ends = {c.field: c.before for c in change.changes}
            if "from" in ends:
                earlier.with_edge(change.pathway_id, from_id=self._by_version(ends["from"]))
            if "to" in ends:
                earlier.with_edge(change.pathway_id, to_id=self._by_version(ends["to"]))
        return earlier

    def announced(self, change: Change) -> State:
        """The state once a withdrawal announced by `change` takes effect (else this one)."""
        later = self.copy()
        kind = change.action.value
        if kind == "FIRMWARE_WITHDRAWAL_SCHEDULED":
            later.with_node(change.firmware_id, active=False)
        elif kind == "PATHWAY_WITHDRAWAL_SCHEDULED":
            later.with_edge(change.pathway_id, published=False)
        return later


def _uses(plan: Plan, firmware_id: int | None, pathway_id: int | None) -> bool:
    ends = {f.id for f in (plan.start, plan.target) if f is not None}
    return firmware_id in ends or any(
        step.id == pathway_id or step.to_id == firmware_id for step in plan.steps
    )


def impact_of(
    change: Change,
    before: PathwayGraph,
    after: PathwayGraph,
    holders: dict[str, list[tuple[str, int]]],
) -> dict[str, Meters]:
    """Each Party's meters for one change: `holders` lists, by firmware version, the (Party,
    meters) of the groups on the change's device; each version is planned once a side."""
    found: dict[str, Meters] = {}
    for version, groups in holders.items():
        old, new = before.plan(version), after.plan(version)
        was, now = _outcome(old), _outcome(new)
        touched = (
            was is not now
            or _route(old) != _route(new)
            or _uses(old, change.firmware_id, change.pathway_id)
            or _uses(new, change.firmware_id, change.pathway_id)
        )
        if not touched:
            continue
        blocked = was is not _Outcome.BLOCKED and now is _Outcome.BLOCKED
        upgradable = was is not _Outcome.UPGRADABLE and now is _Outcome.UPGRADABLE
        for party, meters in groups:
            numbers = found.setdefault(party, Meters())
            numbers.affected += meters
            numbers.newly_blocked += meters if blocked else 0
            numbers.newly_upgradable += meters if upgradable else 0
    return found


async def _rows(
    session: AsyncSession, statement: Callable[[Sequence[int]], Any], ids: Iterable[int]
) -> list[Any]:
    found: list[Any] = []
    for chunk in chunks(sorted(ids)):
        found += (await session.exec(statement(chunk))).all()
    return found


async def _states(session: AsyncSession, devices: set[int]) -> dict[int, State]:
    """Each device's state as the transaction holds it now."""
    states = {device: State({}, {}) for device in devices}
    firmware = await _rows(
        session,
        lambda ids: select(  # type: ignore[call-overload]  # sqlmodel's select() types at most 4 columns
            Firmware.id,
            Firmware.device_id,
            Firmware.version,
            Firmware.status,
            Firmware.added_to_cpl_on,
        ).where(col(Firmware.device_id).in_(ids)),
        devices,
    )
    for pk, device, version, status, added_on in firmware:
        node = FirmwareNode(pk, version, status is FirmwareStatus.ACTIVE, added_on)
        states[device].nodes[pk] = node
    pathways = await _rows(
        session,
        lambda ids: select(  # type: ignore[call-overload]  # sqlmodel's select() types at most 4 columns
            UpgradePathway.id,
            UpgradePathway.device_id,
            UpgradePathway.from_firmware_id,
            UpgradePathway.to_firmware_id,
            UpgradePathway.status,
        ).where(col(UpgradePathway.device_id).in_(ids)),
        devices,
    )
    for pk, device, start, end, status in pathways:
        states[device].edges[pk] = PathwayEdge(pk, start, end, status is PathwayStatus.PUBLISHED)
    return states


async def fleet_impacts(
    session: AsyncSession, recorded: Sequence[Recorded]
) -> list[tuple[int, str, Meters]]:
    """(event id, Party, meters) for every recorded change and every Party whose stored fleet
    it affects, in event order."""
    relevant = [r for r in recorded if r.change is not None and r.action in PLAN_KINDS]
    if not relevant:
        return []
    groups = await _rows(
        session,
        lambda ids: (
            select(
                FleetGroup.device_id,
                FleetGroup.firmware_version,
                FleetGroup.meter_count,
                StoredFleet.party_id,
            )
            .join(StoredFleet, col(StoredFleet.id) == col(FleetGroup.fleet_id))
            .where(col(FleetGroup.device_id).in_(ids))
        ),
        {r.device_id for r in relevant},
    )
    if not groups:
        return []
    holders: dict[int, dict[str, list[tuple[str, int]]]] = defaultdict(dict)
    for device, version, meters, party in groups:
        holders[device].setdefault(version, []).append((party, meters))
    states = await _states(session, set(holders))
    found: list[tuple[int, str, Meters]] = []
    for event in reversed(relevant):
        if event.device_id not in holders:
            continue
        change = event.change
        assert change is not None
        after = states[event.device_id]
        before = after.before(change)
        states[event.device_id] = before
        later = after.announced(change).graph()
        planned = impact_of(change, before.graph(), later, holders[event.device_id])
        found += [(event.id, party, meters) for party, meters in sorted(planned.items())]
    found.sort(key=lambda row: (row[0], row[1]))
    return found


async def store_impacts(session: AsyncSession, recorded: Sequence[Recorded]) -> int:
    """Write the impacts of `recorded` in the change's transaction; returns how many rows."""
    rows = [
        {
            "event_id": event_id,
            "party_id": party,
            "affected_meters": meters.affected,
            "newly_blocked_meters": meters.newly_blocked,
            "newly_upgradable_meters": meters.newly_upgradable,
        }
        for event_id, party, meters in await fleet_impacts(session, recorded)
        if meters.affected
    ]
    for chunk in chunks(rows):
        await session.exec(sa.insert(_TABLE), params=list(chunk))
    return len(rows)
