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

from resolvers.planning.premises import PremisesPlan as Planned
from resolvers.planning.premises_plan import (
    MAX_PREMISES_DEVICES,
    PremisesItem,
    plan_premises_of,
)
from schema.ids import BAD_USER_INPUT, decode_id
from schema.planning import PlanBlockReason
from schema.types import Device, UpgradePathway


@strawberry.enum(description="Who takes a step: the DCC rolls out Comms Hub (CHF, GPF) firmware.")
class UpgradeActor(enum.Enum):
    SUPPLIER = "SUPPLIER"
    DCC = "DCC"


@strawberry.input(description="A device of the premises and the firmware it runs.")
class PremisesDeviceInput:
    device_id: strawberry.ID | None = None
    manufacturer_identifier: str | None = None
    model_identifier: str | None = None
    hardware_version: str | None = None
    firmware_version: str


@strawberry.type(description="One over-the-air upgrade of one device of the premises.")
class PremisesStep:
    order: int = strawberry.field(description="From 1: a step never waits for a later one.")
    index: int = strawberry.field(description="The device's position in `devices`, from 0.")
    device: Device
    pathway: UpgradePathway
    carried_out_by: UpgradeActor
    waits_for: list[int] = strawberry.field(
        description="The orders of the steps this one waits for: its device's previous step, "
        "and the last step of each device whose firmware it needs."
    )


@strawberry.type(description="A device that cannot reach its latest firmware, and why.")
class PremisesBlock:
    index: int = strawberry.field(description="The device's position in `devices`, from 0.")
    device: Device | None = strawberry.field(description="Null when it is not on the CPL.")
    firmware_version: str
    reason: PlanBlockReason
    detail: str


@strawberry.type(
    description="Steps in order; devices that cannot be upgraded, and those IHDs (and any type "
    "not updated over the air) that are not planned at all."
)
class PremisesPlan:
    steps: list[PremisesStep]
    blocked: list[PremisesBlock]
    not_updatable_over_the_air: list[Device]


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


def items_of(devices: list[PremisesDeviceInput]) -> list[PremisesItem]:
    """The planner's items; a deviceId that does not decode is the item's problem."""
    items = []
    for data in devices:
        device_id = decode_id("device", data.device_id) if data.device_id is not None else None
        items.append(
            PremisesItem(
                device_id=device_id,
                bad_device_id=data.device_id is not None and device_id is None,
                manufacturer_identifier=data.manufacturer_identifier,
                model_identifier=data.model_identifier,
                hardware_version=data.hardware_version,
                firmware_version=data.firmware_version,
                meter_count=1,
            )
        )
    return items


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
    @strawberry.field(
        description="An ordered plan for every device of one premises to its latest firmware: "
        "the Comms Hub's steps (by the DCC) first, each step after the steps it waits for; "
        f"at most {MAX_PREMISES_DEVICES} devices."
    )
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
