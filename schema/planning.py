"""Upgrade planning: one meter's pathway to the latest (or a chosen) firmware, and a fleet's.

The planner is `resolvers.planning.planner` (pure); each device's graph comes from the request's CPL
snapshot (`resolvers.reads.snapshot.CplSnapshot.graph`), built once per data revision.

A fleet plan answers tens of thousands of entries. Strawberry spends microseconds on every
field that has a resolver, so the plan types here have none: the rows a query selects (steps,
ends, devices) are loaded up front in one batch each, and every field is a plain attribute of
a view built from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, cast

import strawberry
from graphql import GraphQLError, GraphQLResolveInfo
from strawberry.types import Info

from resolvers.planning.fleet_items import FleetItem
from resolvers.planning.fleet_plan import MAX_FLEET_ITEMS, FleetEntry, FleetResult, plan_fleet
from resolvers.planning.fleet_premises import FleetPremises, with_premises
from resolvers.planning.slices import SLICE, Sliced, in_slices
from schema.ids import BAD_USER_INPUT, decode_id
from schema.lean import DEFINITION
from schema.plan_views import PlanView, plan_views, rows, selections, selects
from schema.premises import (
    FleetPremisesEntry,
    FleetPremisesInput,
    fleet_premises,
    planner_item,
    premises_inputs,
    premises_shapes,
)
from schema.query import not_found
from schema.types import Device, Firmware, PlanBlockReason, UpgradePathway

MAX_INT = 2**31 - 1  # GraphQL's Int


@strawberry.type
class ScheduledWithdrawal:
    effective_on: date
    firmware: Firmware | None
    pathway: UpgradePathway | None


@strawberry.type
class UpgradePlan:
    device: Device
    from_: Firmware | None = strawberry.field(name="from")
    target: Firmware | None
    reachable: bool
    reason: PlanBlockReason | None
    steps: list[UpgradePathway]
    withdrawals_scheduled: list[ScheduledWithdrawal]
    contact: str | None


@strawberry.type
class StepCount:
    steps: int
    meters: int


@strawberry.type
class BlockedMeters:
    reason: PlanBlockReason | None
    meters: int


@strawberry.type
class FleetSummary:
    meters: int
    up_to_date: int
    upgradable: int
    blocked: int
    meters_by_step_count: list[StepCount]
    blocked_by_reason: list[BlockedMeters]
    premises: int
    premises_blocked_by_prerequisites: int
    meters_blocked_by_prerequisites: int


@strawberry.type
class FleetPlanEntry:
    index: int
    device: Device | None
    firmware_version: str
    meter_count: int
    plan: UpgradePlan | None
    problem: str | None


@strawberry.type
class FleetPlan:
    entries: list[FleetPlanEntry]
    summary: FleetSummary
    premises: list[FleetPremisesEntry]


@strawberry.input
class FleetItemInput:
    device_id: strawberry.ID | None = None
    manufacturer_identifier: str | None = None
    model_identifier: str | None = None
    hardware_version: str | None = None
    firmware_version: str
    meter_count: int = 1


@dataclass(slots=True)
class EntryView:
    index: int
    device: Any
    firmware_version: str
    meter_count: int
    plan: PlanView | None
    problem: str | None


def _items(inputs: list[FleetItemInput]) -> Sliced[list[FleetItem]]:
    items: list[FleetItem] = []
    for index, data in enumerate(inputs):
        if index % SLICE == SLICE - 1:
            yield
        items.append(planner_item(data, data.meter_count))
    return items


def _inputs(values: list[dict[str, Any]]) -> Sliced[list[FleetItemInput]]:
    """graphql-core's coerced `items` (dicts by GraphQL name, defaults filled in) as the
    resolver's inputs: what Strawberry's own conversion makes, at a fraction of its cost."""
    inputs: list[FleetItemInput] = []
    for index, value in enumerate(values):
        if index % SLICE == SLICE - 1:
            yield
        inputs.append(
            FleetItemInput(
                device_id=value.get("deviceId"),
                manufacturer_identifier=value.get("manufacturerIdentifier"),
                model_identifier=value.get("modelIdentifier"),
                hardware_version=value.get("hardwareVersion"),
                firmware_version=value["firmwareVersion"],
                meter_count=value.get("meterCount", 1),
            )
        )
    return inputs


def _entries(
    entries: list[FleetEntry], devices: dict[int, Any], views: dict[int, PlanView]
) -> Sliced[list[EntryView]]:
    made: list[EntryView] = []
    for e in entries:
        if e.index % SLICE == SLICE - 1:
            yield
        made.append(
            EntryView(
                index=e.index,
                device=devices.get(e.device_id) if e.device_id is not None else None,
                firmware_version=e.firmware_version,
                meter_count=e.meter_count,
                plan=views[id(e.plan)] if e.plan is not None else None,
                problem=e.problem,
            )
        )
    return made


def fleet_items_in_slices(schema: strawberry.Schema) -> None:
    """`fleetPlan`'s items converted here, in slices, instead of by Strawberry.

    Profiled on 50,000 items, Strawberry's argument conversion was over half of the call, all
    of it in one go before the resolver starts: it looks each field's type and name up again
    for every item. graphql-core has already checked and coerced the items; this makes the
    resolver's inputs from them with a turn of the loop every `SLICE` items."""
    query_type = schema._schema.query_type
    assert query_type is not None  # the schema has a Query: fleetPlan is one of its fields
    field_def = query_type.fields["fleetPlan"]
    field = field_def.extensions[DEFINITION]
    if field.extensions or schema.exception_handlers:  # Strawberry's wrapper would run them
        return
    info_class = schema.config.info_class
    resolver = field.base_resolver.wrapped_func

    async def resolve(
        source: Any,
        info: GraphQLResolveInfo,
        items: list[dict[str, Any]],
        premises: list[dict[str, Any]] | None = None,
    ) -> Any:
        inputs = await in_slices(_inputs(items))
        shapes = premises_inputs(premises) if premises is not None else None
        return await resolver(source, info_class(_raw_info=info, _field=field), inputs, shapes)

    field_def.resolve = resolve


@strawberry.type
class PlanningQueries:
    @strawberry.field
    async def upgrade_path(
        self,
        info: Info,
        device_id: strawberry.ID,
        from_version: str,
        to_version: str | None = None,
    ) -> UpgradePlan | None:
        pk = decode_id("device", device_id)
        snapshot = await info.context.loaders.snapshot()
        graph = snapshot.graph(pk) if pk is not None else None
        if pk is None or graph is None:
            raise not_found("device")
        plan = graph.plan(from_version, to_version)
        view = (await plan_views(info, (), [(pk, plan)]))[id(plan)]
        return cast(UpgradePlan, view)  # a PlanView has its fields: Strawberry reads them by name

    @strawberry.field
    async def fleet_plan(
        self,
        info: Info,
        items: list[FleetItemInput],
        premises: list[FleetPremisesInput] | None = None,
    ) -> FleetPlan:
        shapes = premises or []
        given = len(items) + sum(len(shape.devices) for shape in shapes)
        if given > MAX_FLEET_ITEMS:
            raise GraphQLError(
                f"A fleet plan takes at most {MAX_FLEET_ITEMS:,} items and premises devices a "
                f"call; {given:,} were given. Split the fleet into several calls.",
                extensions={"code": BAD_USER_INPUT},
            )
        meters = sum(max(s.premises_count, 0) * len(s.devices) for s in shapes)
        if meters + sum(max(item.meter_count, 0) for item in items) > MAX_INT:
            raise GraphQLError(
                f"The meters of one call must add up to at most {MAX_INT:,}.",
                extensions={"code": BAD_USER_INPUT},
            )
        snapshot = await info.context.loaders.snapshot()
        fleet = await in_slices(_items(items))
        result = await plan_fleet(info.context.db, snapshot, fleet)
        return await fleet_plan_answer(info, result, shapes=premises_shapes(shapes))


async def fleet_plan_answer(
    info: Info,
    result: FleetResult,
    prefix: tuple[str, ...] = (),
    shapes: list[FleetPremises] | None = None,
) -> FleetPlan:
    """A `FleetPlan` of the planner's result (and of the premises `shapes`, planned here), with
    the rows the query selects under `prefix` (where the plan is, below the field resolved)
    loaded in one batch each."""
    entries = result.entries
    # An entry with a plan names its device (FleetEntry: a plan or a problem).
    planned = [
        (e.device_id, e.plan) for e in entries if e.plan is not None and e.device_id is not None
    ]
    views = await plan_views(info, (*prefix, "entries", "plan"), planned)
    devices: dict[int, Any] = {}
    if selects(selections(info), (*prefix, "entries", "device")):
        devices = await rows(
            info.context.loaders.device, {e.device_id for e in entries if e.device_id}
        )
    summary, by_premises = result.summary, cast(list[FleetPremisesEntry], [])
    if shapes:
        by_premises, tally = await fleet_premises(info, shapes)
        summary = with_premises(summary, tally)
    return FleetPlan(
        premises=by_premises,
        # EntryViews have FleetPlanEntry's fields: Strawberry reads them by name.
        entries=cast(list[FleetPlanEntry], await in_slices(_entries(entries, devices, views))),
        summary=FleetSummary(
            meters=summary.meters,
            up_to_date=summary.up_to_date,
            upgradable=summary.upgradable,
            blocked=summary.blocked,
            meters_by_step_count=[
                StepCount(steps=s, meters=m) for s, m in summary.meters_by_step_count
            ],
            blocked_by_reason=[
                BlockedMeters(reason=r, meters=m) for r, m in summary.blocked_by_reason
            ],
            premises=summary.premises,
            premises_blocked_by_prerequisites=summary.premises_blocked_by_prerequisites,
            meters_blocked_by_prerequisites=summary.meters_blocked_by_prerequisites,
        ),
    )
