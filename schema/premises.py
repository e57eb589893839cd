"""Premises plans: the devices of one premises (a Comms Hub, meters, a PPMID, an IHD ...)
planned together, the hub's steps first (`resolvers.planning.premises`).

Like the fleet plan's types (`schema.planning`), these have no resolvers: the rows a plan names
are loaded up front and every field is a plain attribute.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, cast

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from resolvers.planning.fleet_premises import (
    FleetPremises,
    PremisesEntry,
    PremisesTally,
    plan_fleet_premises,
)
from resolvers.planning.premises import PremisesPlan as Planned
from resolvers.planning.premises_plan import (
    MAX_PREMISES_DEVICES,
    PremisesItem,
    plan_premises_of,
)
from schema.ids import BAD_USER_INPUT, decode_id
from schema.types import Device, PlanBlockReason, UpgradePathway


@strawberry.enum
class UpgradeActor(enum.Enum):
    SUPPLIER = "SUPPLIER"
    DCC = "DCC"


@strawberry.input
class PremisesDeviceInput:
    device_id: strawberry.ID | None = None
    manufacturer_identifier: str | None = None
    model_identifier: str | None = None
    hardware_version: str | None = None
    firmware_version: str


@strawberry.type
class PremisesStep:
    order: int
    index: int
    device: Device
    pathway: UpgradePathway
    carried_out_by: UpgradeActor
    waits_for: list[int]


@strawberry.type
class PremisesBlock:
    index: int
    device: Device | None
    firmware_version: str
    reason: PlanBlockReason
    detail: str


@strawberry.type
class PremisesPlan:
    steps: list[PremisesStep]
    blocked: list[PremisesBlock]
    not_updatable_over_the_air: list[Device]


@strawberry.input
class FleetPremisesInput:
    devices: list[PremisesDeviceInput]
    premises_count: int = 1


@strawberry.type
class FleetPremisesEntry:
    index: int
    premises_count: int
    plan: PremisesPlan | None
    problem: str | None


@dataclass(slots=True)
class StepView:
    order: int
    index: int
    device: Any
    pathway: Any
    carried_out_by: UpgradeActor
    waits_for: list[int]


@dataclass(slots=True)
class BlockView:
    index: int
    device: Any
    firmware_version: str
    reason: PlanBlockReason
    detail: str


@dataclass(slots=True)
class PlanView:
    steps: list[StepView]
    blocked: list[BlockView]
    not_updatable_over_the_air: list[Any]


def planner_item(data: Any, meter_count: int) -> PremisesItem:
    """The planner's item of a device given in GraphQL (a `FleetItemInput` or a
    `PremisesDeviceInput`); a deviceId that does not decode is the item's problem."""
    device_id = decode_id("device", data.device_id) if data.device_id is not None else None
    return PremisesItem(
        device_id=device_id,
        bad_device_id=data.device_id is not None and device_id is None,
        manufacturer_identifier=data.manufacturer_identifier,
        model_identifier=data.model_identifier,
        hardware_version=data.hardware_version,
        firmware_version=data.firmware_version,
        meter_count=meter_count,
    )


def items_of(devices: list[PremisesDeviceInput]) -> list[PremisesItem]:
    """The planner's items of a premises' devices, each one meter."""
    return [planner_item(data, 1) for data in devices]


@dataclass(slots=True)
class EntryView:
    index: int
    premises_count: int
    plan: PlanView | None
    problem: str | None


def premises_inputs(values: list[dict[str, Any]]) -> list[FleetPremisesInput]:
    """graphql-core's coerced `premises` as the resolver's inputs (`fleet_items_in_slices`)."""
    return [
        FleetPremisesInput(
            devices=[
                PremisesDeviceInput(
                    device_id=device.get("deviceId"),
                    manufacturer_identifier=device.get("manufacturerIdentifier"),
                    model_identifier=device.get("modelIdentifier"),
                    hardware_version=device.get("hardwareVersion"),
                    firmware_version=device["firmwareVersion"],
                )
                for device in value["devices"]
            ],
            premises_count=value.get("premisesCount", 1),
        )
        for value in values
    ]


def premises_shapes(premises: list[FleetPremisesInput]) -> list[FleetPremises]:
    """The planner's shapes of the caller's `premises` (`fleetPlan`'s, `replaceFleet`'s)."""
    return [FleetPremises(tuple(items_of(p.devices)), p.premises_count) for p in premises]


async def fleet_premises(
    info: Info, shapes: list[FleetPremises]
) -> tuple[list[FleetPremisesEntry], PremisesTally]:
    """A fleet's premises shapes planned (each distinct one once), as the answer's entries, and
    their tally for the fleet's summary."""
    snapshot = await info.context.loaders.snapshot()
    entries, tally = await plan_fleet_premises(info.context.db, snapshot, shapes)
    views: dict[int, PlanView] = {}

    def entry(found: PremisesEntry) -> EntryView:
        plan = None
        if found.plan is not None:
            plan = views.get(id(found.plan)) or views.setdefault(
                id(found.plan), view(info, found.plan)
            )
        return EntryView(found.index, found.count, plan, found.problem)

    return cast(list[FleetPremisesEntry], [entry(found) for found in entries]), tally


def view(info: Info, plan: Planned) -> PlanView:
    """A plan with its rows from the request's snapshot (held: the plan was made from it)."""
    loaders = info.context.loaders
    snapshot = loaders.held
    assert snapshot is not None  # the plan was made from it

    return PlanView(
        steps=[
            StepView(
                order=step.order,
                index=step.index,
                device=snapshot.devices[step.device_id],
                pathway=snapshot.pathways[step.pathway.id],
                carried_out_by=UpgradeActor(step.carried_out_by),
                waits_for=list(step.waits_for),
            )
            for step in plan.steps
        ],
        blocked=[
            BlockView(
                index=block.index,
                device=snapshot.devices.get(block.device_id) if block.device_id else None,
                firmware_version=block.firmware_version,
                reason=block.reason,
                detail=block.detail,
            )
            for block in plan.blocked
        ],
        not_updatable_over_the_air=[
            snapshot.devices[cast(int, device.device_id)] for device in plan.not_updatable
        ],
    )


@strawberry.type
class PremisesQueries:
    @strawberry.field
    async def premises_plan(self, info: Info, devices: list[PremisesDeviceInput]) -> PremisesPlan:
        if len(devices) > MAX_PREMISES_DEVICES:
            raise GraphQLError(
                f"A premises plan takes at most {MAX_PREMISES_DEVICES} devices; "
                f"{len(devices)} were given.",
                extensions={"code": BAD_USER_INPUT},
            )
        snapshot = await info.context.loaders.snapshot()
        (plan,) = await plan_premises_of(info.context.db, snapshot, [items_of(devices)])
        return cast(PremisesPlan, view(info, plan))  # a PlanView has its fields, by name
