"""Fleets by premises: premises "shapes" (the device and firmware of each device of a premises)
with a count of premises of each shape, each distinct shape planned once with the premises
planner (`resolvers.planning.premises_plan`), and the meters totalled into the fleet's summary.

Every device of a premises that is updated over the air counts as a meter, once per premises
of its shape, exactly as a fleet item's meters count: up to date (no steps), upgradable (by its
own number of steps) or blocked (by its block's reason). Devices not updated over the air (IHDs)
are not meters of the plan. The summary also counts the premises, and the premises and meters
blocked by prerequisites (`PREREQUISITE_NOT_MET`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from models.database import RequestSession
from resolvers.planning.fleet_plan import FleetSummary, reason_order
from resolvers.planning.planner import BlockReason
from resolvers.planning.premises import PremisesPlan
from resolvers.planning.premises_plan import (
    MAX_PREMISES_DEVICES,
    PremisesItem,
    plan_premises_of,
)
from resolvers.reads.snapshot import CplSnapshot

__all__ = [
    "BAD_PREMISES_COUNT",
    "FleetPremises",
    "PremisesEntry",
    "PremisesTally",
    "plan_fleet_premises",
    "shape_problem",
    "with_premises",
]

BAD_PREMISES_COUNT = "premisesCount must be at least 1"
NO_DEVICES = "a premises needs at least one device"
TOO_MANY_DEVICES = f"a premises has at most {MAX_PREMISES_DEVICES} devices"


@dataclass(frozen=True, slots=True)
class FleetPremises:
    """`count` premises whose devices are `devices` (the caller's, as given)."""

    devices: tuple[PremisesItem, ...]
    count: int


@dataclass(slots=True)
class PremisesEntry:
    """The answer for the premises shape at `index` (0-based): a plan, or a problem."""

    index: int
    count: int
    plan: PremisesPlan | None
    problem: str | None


@dataclass(slots=True)
class PremisesTally:
    """The premises and meters of a fleet's premises shapes, for its summary."""

    premises: int = 0
    premises_blocked_by_prerequisites: int = 0
    meters: int = 0
    up_to_date: int = 0
    upgradable: int = 0
    blocked: int = 0
    meters_blocked_by_prerequisites: int = 0
    by_steps: dict[int, int] = field(default_factory=dict)
    by_reason: dict[BlockReason | None, int] = field(default_factory=dict)

    def add(self, plan: PremisesPlan, count: int, devices: int) -> None:
        self.premises += count
        steps: dict[int, int] = {}
        for step in plan.steps:
            steps[step.index] = steps.get(step.index, 0) + 1
        blocked = {block.index: block.reason for block in plan.blocked}
        quiet = {device.index for device in plan.not_updatable}
        if BlockReason.PREREQUISITE_NOT_MET in blocked.values():
            self.premises_blocked_by_prerequisites += count
        for index in range(devices):
            if index in quiet:
                continue
            self.meters += count
            if index in blocked:
                reason = blocked[index]
                self.blocked += count
                self.by_reason[reason] = self.by_reason.get(reason, 0) + count
                if reason is BlockReason.PREREQUISITE_NOT_MET:
                    self.meters_blocked_by_prerequisites += count
                continue
            taken = steps.get(index, 0)
            self.by_steps[taken] = self.by_steps.get(taken, 0) + count
            if taken:
                self.upgradable += count
            else:
                self.up_to_date += count


def shape_problem(premises: FleetPremises) -> str | None:
    """What is wrong with a shape on its face (no device, too many, a count below 1), or None."""
    problems = []
    if not premises.devices:
        problems.append(NO_DEVICES)
    if len(premises.devices) > MAX_PREMISES_DEVICES:
        problems.append(TOO_MANY_DEVICES)
    if premises.count < 1:
        problems.append(BAD_PREMISES_COUNT)
    return "; ".join(problems) or None


async def plan_fleet_premises(
    db: RequestSession, snapshot: CplSnapshot, shapes: Sequence[FleetPremises]
) -> tuple[list[PremisesEntry], PremisesTally]:
    """Each shape's entry (its plan made once however many times it is given) and the tally of
    premises and meters. A shape with no device, too many, or a count below 1 has a problem and
    no plan, and counts nowhere."""
    distinct: dict[tuple[PremisesItem, ...], int] = {}
    problems = [shape_problem(shape) for shape in shapes]
    for shape, problem in zip(shapes, problems, strict=True):
        if problem is None:
            distinct.setdefault(shape.devices, len(distinct))
    plans = await plan_premises_of(db, snapshot, list(distinct))
    tally = PremisesTally()
    entries = []
    for index, (shape, problem) in enumerate(zip(shapes, problems, strict=True)):
        plan = None if problem is not None else plans[distinct[shape.devices]]
        if plan is not None:
            tally.add(plan, shape.count, len(shape.devices))
        entries.append(PremisesEntry(index, shape.count, plan, problem))
    return entries, tally


def with_premises(summary: FleetSummary, tally: PremisesTally) -> FleetSummary:
    """The fleet's summary with the premises' meters and counts added in."""
    by_steps = dict(summary.meters_by_step_count)
    for steps, meters in tally.by_steps.items():
        by_steps[steps] = by_steps.get(steps, 0) + meters
    by_reason = dict(summary.blocked_by_reason)
    for reason, meters in tally.by_reason.items():
        by_reason[reason] = by_reason.get(reason, 0) + meters
    return replace(
        summary,
        meters=summary.meters + tally.meters,
        up_to_date=summary.up_to_date + tally.up_to_date,
        upgradable=summary.upgradable + tally.upgradable,
        blocked=summary.blocked + tally.blocked,
        meters_by_step_count=sorted(by_steps.items()),
        blocked_by_reason=sorted(by_reason.items(), key=reason_order),
        premises=tally.premises,
        premises_blocked_by_prerequisites=tally.premises_blocked_by_prerequisites,
        meters_blocked_by_prerequisites=tally.meters_blocked_by_prerequisites,
    )
