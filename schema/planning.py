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
from typing import Any, cast

import strawberry
from graphql import GraphQLError, GraphQLResolveInfo
from strawberry.dataloader import DataLoader
from strawberry.types import Info
from strawberry.types.nodes import FragmentSpread, InlineFragment, Selection

from resolvers.planning.fleet_items import FleetItem
from resolvers.planning.fleet_plan import MAX_FLEET_ITEMS, FleetEntry, plan_fleet
from resolvers.planning.fleet_premises import with_premises
from resolvers.planning.planner import BlockReason, Plan
from resolvers.planning.slices import SLICE, Sliced, in_slices
from schema.execution import DEFINITION
from schema.ids import BAD_USER_INPUT, decode_id
from schema.premises import FleetPremisesEntry, FleetPremisesInput, fleet_premises, premises_inputs
from schema.query import not_found
from schema.types import Device, Firmware, PlanBlockReason, UpgradePathway

MAX_INT = 2**31 - 1  # GraphQL's Int


@strawberry.type(description="The ordered pathways from the firmware a meter runs to a target.")
class UpgradePlan:
    device: Device
    from_: Firmware | None = strawberry.field(name="from")
    target: Firmware | None = strawberry.field(
        description="toVersion, or else the device's latest firmware."
    )
    reachable: bool
    reason: PlanBlockReason | None
    steps: list[UpgradePathway] = strawberry.field(
        description="Fewest steps; among equals, the lowest pathway ids."
    )
    contact: str | None = strawberry.field(
        description="For a blocked plan, whom to ask: the manufacturer's firmware contact "
        "(`Manufacturer.firmwareContact`); null for a reachable plan."
    )


@strawberry.type
class StepCount:
    steps: int
    meters: int


@strawberry.type(description="Blocked meters of one reason.")
class BlockedMeters:
    reason: PlanBlockReason | None = strawberry.field(
        description="Why their plans are blocked; null for items that could not be planned "
        "(they have a `problem`)."
    )
    meters: int = strawberry.field(description="Their meters, as the items count them.")


@strawberry.type
class FleetSummary:
    meters: int
    up_to_date: int
    upgradable: int
    blocked: int
    meters_by_step_count: list[StepCount]
    blocked_by_reason: list[BlockedMeters] = strawberry.field(
        description="The blocked meters by reason, in the reasons' order, items with a problem "
        "last; only reasons some item has."
    )
    premises: int = strawberry.field(description="Premises planned (fleets by premises).")
    premises_blocked_by_prerequisites: int = strawberry.field(
        description="Premises with a device blocked by PREREQUISITE_NOT_MET."
    )
    meters_blocked_by_prerequisites: int


@strawberry.type
class FleetPlanEntry:
    index: int = strawberry.field(description="The item's position in `items`, from 0.")
    device: Device | None
    firmware_version: str
    meter_count: int
    plan: UpgradePlan | None
    problem: str | None = strawberry.field(description="Why this item could not be planned.")


@strawberry.type
class FleetPlan:
    entries: list[FleetPlanEntry]
    summary: FleetSummary
    premises: list[FleetPremisesEntry] = strawberry.field(
        description="The plan of each premises shape given in `premises`, in order."
    )


@strawberry.input
class FleetItemInput:
    device_id: strawberry.ID | None = None
    manufacturer_identifier: str | None = None
    model_identifier: str | None = None
    hardware_version: str | None = None
    firmware_version: str
    meter_count: int = 1


@dataclass(slots=True)
class PlanView:
    """An UpgradePlan's fields; relations the query did not select are left empty."""

    device: Any
    from_: Any
    target: Any
    reachable: bool
    reason: BlockReason | None
    steps: list[Any]
    contact: str | None


@dataclass(slots=True)
class EntryView:
    index: int
    device: Any
    firmware_version: str
    meter_count: int
    plan: PlanView | None
    problem: str | None


def _selects(selections: list[Selection], path: tuple[str, ...]) -> bool:
    """Whether the query selects `path` below these selections, through fragments too."""
    for selection in selections:
        if isinstance(selection, FragmentSpread | InlineFragment):
            if _selects(selection.selections, path):
                return True
        elif selection.name == path[0] and (
            len(path) == 1 or _selects(selection.selections, path[1:])
        ):
            return True
    return False


def _selections(info: Info) -> list[Selection]:
    return [s for field in info.selected_fields for s in field.selections]


async def _rows(loader: DataLoader[int, Any], keys: set[int]) -> dict[int, Any]:
    ordered = sorted(keys)
    return dict(zip(ordered, await loader.load_many(ordered), strict=True))


async def plan_views(
    info: Info, prefix: tuple[str, ...], plans: list[tuple[int, Plan]]
) -> dict[int, PlanView]:
    """A view of each distinct plan (by `id`), with the rows the query selects under `prefix`
    loaded in one batch each."""
    selections = _selections(info)

    def wanted(*names: str) -> bool:
        return any(_selects(selections, (*prefix, name)) for name in names)

    loaders = info.context.loaders
    pathways: dict[int, Any] = {}
    firmware: dict[int, Any] = {}
    devices: dict[int, Any] = {}
    if wanted("steps"):
        pathways = await _rows(loaders.pathway, {s.id for _, p in plans for s in p.steps})
    if wanted("from", "target"):
        ends = {f.id for _, p in plans for f in (p.start, p.target) if f is not None}
        firmware = await _rows(loaders.firmware, ends)
    if wanted("device"):
        devices = await _rows(loaders.device, {device_id for device_id, _ in plans})
    contacts: dict[int, str | None] = {}
    if wanted("contact"):
        snapshot = await loaders.snapshot()
        blocked = {device_id for device_id, plan in plans if not plan.reachable}
        contacts = {device_id: _contact(snapshot, device_id) for device_id in blocked}
    return await in_slices(_views(plans, devices, firmware, pathways, contacts))


def _contact(snapshot: Any, device_id: int) -> str | None:
    device = snapshot.devices.get(device_id)
    maker = snapshot.manufacturers.get(device.manufacturer_id) if device is not None else None
    return maker.firmware_contact if maker is not None else None


def _views(
    plans: list[tuple[int, Plan]],
    devices: dict[int, Any],
    firmware: dict[int, Any],
    pathways: dict[int, Any],
    contacts: dict[int, str | None],
) -> Sliced[dict[int, PlanView]]:
    views: dict[int, PlanView] = {}
    for count, (device_id, plan) in enumerate(plans):
        if count % SLICE == SLICE - 1:
            yield
        if id(plan) not in views:
            views[id(plan)] = PlanView(
                device=devices.get(device_id),
                from_=firmware.get(plan.start.id) if plan.start else None,
                target=firmware.get(plan.target.id) if plan.target else None,
                reachable=plan.reachable,
                reason=plan.reason,
                steps=[pathways.get(step.id) for step in plan.steps] if pathways else [],
                contact=None if plan.reachable else contacts.get(device_id),
            )
    return views


def _items(inputs: list[FleetItemInput]) -> Sliced[list[FleetItem]]:
    items: list[FleetItem] = []
    for index, data in enumerate(inputs):
        if index % SLICE == SLICE - 1:
            yield
        device_id = decode_id("device", data.device_id) if data.device_id is not None else None
        items.append(
            FleetItem(
                device_id=device_id,
                bad_device_id=data.device_id is not None and device_id is None,
                manufacturer_identifier=data.manufacturer_identifier,
                model_identifier=data.model_identifier,
                hardware_version=data.hardware_version,
                firmware_version=data.firmware_version,
                meter_count=data.meter_count,
            )
        )
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
        snapshot = await info.context.loaders.snapshot()
        graph = snapshot.graph(pk) if pk is not None else None
        if pk is None or graph is None:
            raise not_found("device")
        plan = graph.plan(from_version, to_version)
        view = (await plan_views(info, (), [(pk, plan)]))[id(plan)]
        return cast(UpgradePlan, view)  # a PlanView has its fields: Strawberry reads them by name

    @strawberry.field(
        description=f"Plans for a fleet: up to {MAX_FLEET_ITEMS:,} items a call, each device "
        "and firmware planned once; items that cannot be planned get a `problem`."
    )
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
        entries = result.entries
        # An entry with a plan names its device (FleetEntry: a plan or a problem).
        planned = [
            (e.device_id, e.plan) for e in entries if e.plan is not None and e.device_id is not None
        ]
        views = await plan_views(info, ("entries", "plan"), planned)
        devices: dict[int, Any] = {}
        if _selects(_selections(info), ("entries", "device")):
            devices = await _rows(
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
