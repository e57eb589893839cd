"""Upgrade planning: one meter's pathway to the latest (or a chosen) firmware, and a fleet's.

The planner is `resolvers.planner` (pure); graphs come from the process-wide cache keyed by the
data revision (`resolvers.planning.GraphCache`), so an unchanged CPL is never reloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from resolvers import planning
from resolvers.planner import BlockReason, Plan
from resolvers.planning import MAX_FLEET_ITEMS, FleetEntry, FleetItem, plan_fleet
from schema.ids import BAD_USER_INPUT, decode_id
from schema.query import not_found
from schema.types import Device, Firmware, UpgradePathway

PlanBlockReason = strawberry.enum(BlockReason, name="PlanBlockReason")
MAX_INT = 2**31 - 1  # GraphQL's Int


@dataclass(frozen=True, slots=True)
class PlanSource:
    device_id: int
    plan: Plan


@strawberry.type(description="The ordered pathways from the firmware a meter runs to a target.")
class UpgradePlan:
    @strawberry.field
    async def device(self, root: strawberry.Parent[PlanSource], info: Info) -> Device:
        return await info.context.loaders.device.load(root.device_id)

    @strawberry.field(name="from")
    async def from_(self, root: strawberry.Parent[PlanSource], info: Info) -> Firmware | None:
        start = root.plan.start
        return None if start is None else await info.context.loaders.firmware.load(start.id)

    @strawberry.field(description="toVersion, or else the device's latest firmware.")
    async def target(self, root: strawberry.Parent[PlanSource], info: Info) -> Firmware | None:
        target = root.plan.target
        return None if target is None else await info.context.loaders.firmware.load(target.id)

    @strawberry.field
    def reachable(self, root: strawberry.Parent[PlanSource]) -> bool:
        return root.plan.reachable

    @strawberry.field
    def reason(self, root: strawberry.Parent[PlanSource]) -> PlanBlockReason | None:
        return root.plan.reason

    @strawberry.field(description="Fewest steps; among equals, the lowest pathway ids.")
    async def steps(self, root: strawberry.Parent[PlanSource], info: Info) -> list[UpgradePathway]:
        if not root.plan.steps:
            return []
        return await info.context.loaders.pathway.load_many([s.id for s in root.plan.steps])


@strawberry.type
class StepCount:
    steps: int
    meters: int


@strawberry.type
class FleetSummary:
    meters: int
    up_to_date: int
    upgradable: int
    blocked: int
    meters_by_step_count: list[StepCount]


@strawberry.type
class FleetPlanEntry:
    @strawberry.field(description="The item's position in `items`, from 0.")
    def index(self, root: strawberry.Parent[FleetEntry]) -> int:
        return root.index

    @strawberry.field
    async def device(self, root: strawberry.Parent[FleetEntry], info: Info) -> Device | None:
        if root.device_id is None:
            return None
        return await info.context.loaders.device.load(root.device_id)

    @strawberry.field
    def firmware_version(self, root: strawberry.Parent[FleetEntry]) -> str:
        return root.firmware_version

    @strawberry.field
    def meter_count(self, root: strawberry.Parent[FleetEntry]) -> int:
        return root.meter_count

    @strawberry.field
    def plan(self, root: strawberry.Parent[FleetEntry]) -> UpgradePlan | None:
        return None if root.plan is None else PlanSource(root.device_id, root.plan)

    @strawberry.field(description="Why this item could not be planned.")
    def problem(self, root: strawberry.Parent[FleetEntry]) -> str | None:
        return root.problem


@strawberry.type
class FleetPlan:
    entries: list[FleetPlanEntry]
    summary: FleetSummary


@strawberry.input
class FleetItemInput:
    device_id: strawberry.ID | None = None
    manufacturer_identifier: str | None = None
    model_identifier: str | None = None
    hardware_version: str | None = None
    firmware_version: str
    meter_count: int = 1


def _item(data: FleetItemInput) -> FleetItem:
    device_id = decode_id("device", data.device_id) if data.device_id is not None else None
    return FleetItem(
        device_id=device_id,
        bad_device_id=data.device_id is not None and device_id is None,
        manufacturer_identifier=data.manufacturer_identifier,
        model_identifier=data.model_identifier,
        hardware_version=data.hardware_version,
        firmware_version=data.firmware_version,
        meter_count=data.meter_count,
    )


def _summary(summary: planning.FleetSummary) -> FleetSummary:
    return FleetSummary(
        meters=summary.meters,
        up_to_date=summary.up_to_date,
        upgradable=summary.upgradable,
        blocked=summary.blocked,
        meters_by_step_count=[
            StepCount(steps=s, meters=m) for s, m in summary.meters_by_step_count
        ],
    )


@strawberry.type
class PlanningQueries:
    @strawberry.field(
        description="How a meter on `fromVersion` reaches `toVersion` (default: the device's "
        "latest firmware) by PUBLISHED pathways through ACTIVE firmware, in the fewest steps."
    )
    async def upgrade_path(
        self,
        info: Info,
        device_id: strawberry.ID,
        from_version: str,
        to_version: str | None = None,
    ) -> UpgradePlan | None:
        pk = decode_id("device", device_id)
        graph = await info.context.loaders.graph.load(pk) if pk is not None else None
        if graph is None:
            raise not_found("device")
        return PlanSource(pk, graph.plan(from_version, to_version))

    @strawberry.field(
        description=f"Plans for a fleet: up to {MAX_FLEET_ITEMS:,} items a call, each device "
        "and firmware planned once; items that cannot be planned get a `problem`."
    )
    async def fleet_plan(self, info: Info, items: list[FleetItemInput]) -> FleetPlan:
        if len(items) > MAX_FLEET_ITEMS:
            raise GraphQLError(
                f"A fleet plan takes at most {MAX_FLEET_ITEMS:,} items a call; "
                f"{len(items):,} were given. Split the fleet into several calls.",
                extensions={"code": BAD_USER_INPUT},
            )
        if sum(max(item.meter_count, 0) for item in items) > MAX_INT:
            raise GraphQLError(
                f"The meters of one call must add up to at most {MAX_INT:,}.",
                extensions={"code": BAD_USER_INPUT},
            )
        result = await plan_fleet(
            info.context.db, info.context.services.graphs, [_item(i) for i in items]
        )
        return FleetPlan(entries=result.entries, summary=_summary(result.summary))
