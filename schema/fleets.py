"""A Supplier's stored fleet in GraphQL: `myFleet` and `replaceFleet`.

Only the Party that stored a fleet reads it: the policy table's `OWN_FLEET` rule lets a Supplier
in, scoped to its own Party (`permissions.row_scopes`), and refuses every other category
(`null` and one FORBIDDEN error) before anything here runs. The response cache keys `myFleet`
on the caller's identity (`permissions.policy.CALLER_SCOPED`), so two Suppliers never share
an answer. The plan is `fleetPlan`'s, made by the same planner and the same conversion
(`schema.planning.fleet_plan_answer`), its premises shapes planned as `fleetPlan` plans its
`premises`; like the plan types, the group and premises types have no resolvers: their rows
are loaded up front in one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, cast

import strawberry
from sqlalchemy.exc import IntegrityError
from strawberry.types import Info

from permissions.row_scopes import row_scope
from permissions.strawberry_adapter import policy_directives
from resolvers.planning.slices import in_slices
from resolvers.planning.stored_fleet import (
    FleetRejected,
    Group,
    Stored,
    group_items,
    load_fleet,
    plan_groups,
    replace_fleet,
    replay_fleet,
)
from resolvers.planning.stored_premises import StoredShape
from resolvers.writes import validation as v
from resolvers.writes.idempotency import IdempotencyKey, request_hash
from resolvers.writes.unit_of_work import Work
from schema.mutations import ConflictError, MutationError, ValidationError
from schema.plan_views import rows, selections, selects
from schema.planning import FleetItemInput, FleetPlan, _items, fleet_plan_answer
from schema.premises import FleetPremisesInput, premises_shapes
from schema.types import Device


@strawberry.type
class FleetGroup:
    device: Device
    firmware_version: str
    meter_count: int


@strawberry.type
class StoredPremisesDevice:
    device: Device
    firmware_version: str


@strawberry.type
class StoredPremises:
    premises_count: int
    devices: list[StoredPremisesDevice]


@strawberry.type
class StoredFleet:
    replaced_at: datetime
    meters: int
    groups: list[FleetGroup]
    premises: list[StoredPremises]
    plan: FleetPlan


@strawberry.input
class ReplaceFleetInput:
    items: list[FleetItemInput]
    premises: list[FleetPremisesInput] | None = None
    idempotency_key: str | None = None


@strawberry.type
class FleetItemProblem:
    index: int
    problem: str


@strawberry.type
class InvalidFleetError(MutationError):
    problems: list[FleetItemProblem]
    premises_problems: list[FleetItemProblem]


@strawberry.type
class ReplaceFleetSuccess:
    fleet: StoredFleet


ReplaceFleetPayload = Annotated[
    ReplaceFleetSuccess | InvalidFleetError | ValidationError | ConflictError,
    strawberry.union("ReplaceFleetPayload"),
]


@dataclass(slots=True)
class _GroupView:
    device: Any
    firmware_version: str
    meter_count: int


@dataclass(slots=True)
class _DeviceView:
    device: Any
    firmware_version: str


@dataclass(slots=True)
class _PremisesView:
    premises_count: int
    devices: list[_DeviceView]


@dataclass(slots=True)
class _FleetView:
    replaced_at: datetime
    meters: int
    groups: list[_GroupView]
    premises: list[_PremisesView]
    plan: Any


async def stored_fleet_answer(info: Info, stored: Stored, prefix: tuple[str, ...]) -> StoredFleet:
    """A `StoredFleet` of the stored rows; its plan made only when the query selects it, with
    the rows the query selects under `prefix` (where the fleet is) loaded in one batch each."""
    selected = selections(info)
    groups, shapes = stored.groups, stored.premises
    wanted: set[int] = set()
    if selects(selected, (*prefix, "groups", "device")):
        wanted.update(g.device_id for g in groups)
    if selects(selected, (*prefix, "premises", "devices", "device")):
        wanted.update(device_id for shape in shapes for device_id, _ in shape.devices)
    devices = await rows(info.context.loaders.device, wanted) if wanted else {}
    plan = None
    if selects(selected, (*prefix, "plan")):
        snapshot = await info.context.loaders.snapshot()
        result = await plan_groups(info.context.db, snapshot, groups)
        planned = [shape.premises() for shape in shapes]
        plan = await fleet_plan_answer(info, result, (*prefix, "plan"), shapes=planned)
    view = _FleetView(
        replaced_at=stored.fleet.replaced_at,
        meters=sum(g.meter_count for g in groups),
        groups=[
            _GroupView(devices.get(g.device_id), g.firmware_version, g.meter_count) for g in groups
        ],
        premises=[_premises_view(shape, devices) for shape in shapes],
        plan=plan,
    )
    return cast(StoredFleet, view)  # a _FleetView has its fields: Strawberry reads them by name


def _premises_view(shape: StoredShape, devices: dict[int, Any]) -> _PremisesView:
    return _PremisesView(
        shape.count, [_DeviceView(devices.get(d), version) for d, version in shape.devices]
    )


@strawberry.type
class FleetQueries:
    @strawberry.field(
        directives=policy_directives("Query", "myFleet"),
    )
    async def my_fleet(self, info: Info) -> StoredFleet | None:
        scope = row_scope(info.context.principal, "Query", "myFleet")
        stored = await load_fleet(info.context.db, scope)
        return None if stored is None else await stored_fleet_answer(info, stored, ())


def _rejected(rejection: FleetRejected) -> InvalidFleetError:
    return InvalidFleetError(
        code="VALIDATION",
        message=rejection.message,
        field="items" if rejection.problems or not rejection.premises_problems else "premises",
        problems=[FleetItemProblem(index=i, problem=p) for i, p in rejection.problems],
        premises_problems=[
            FleetItemProblem(index=i, problem=p) for i, p in rejection.premises_problems
        ],
    )


@strawberry.type
class FleetMutations:
    @strawberry.mutation(
        directives=policy_directives("Mutation", "replaceFleet"),
    )
    async def replace_fleet(
        self, info: Info, input: ReplaceFleetInput
    ) -> ReplaceFleetPayload | None:
        principal = info.context.principal
        try:
            key = v.text(input.idempotency_key, "idempotencyKey", v.MAX_IDEMPOTENCY_KEY)
            groups: list[Group] = []
            shapes: list[StoredShape] = []
            rejected = None
            try:
                items = await in_slices(_items(input.items))
                premises = premises_shapes(input.premises or [])
                snapshot = await info.context.loaders.snapshot()
                groups, shapes, _ = await group_items(info.context.db, snapshot, items, premises)
            except FleetRejected as rejection:
                if not key:
                    return _rejected(rejection)
                rejected = rejection  # unless the key's first request was stored: a retry
            idempotency = None
            if key:
                arguments: dict[str, Any] = {
                    "items": [strawberry.asdict(item) for item in input.items]
                }
                if input.premises is not None:  # a fleet of items alone hashes as it always did
                    arguments["premises"] = [strawberry.asdict(p) for p in input.premises]
                digest = request_hash("replaceFleet", arguments)
                idempotency = IdempotencyKey(key, "replaceFleet", digest, "fleet", replay_fleet)

            async def write(work: Work) -> Stored:
                if rejected is not None:
                    raise rejected
                return await replace_fleet(work, groups, shapes)

            scope = row_scope(principal, "Mutation", "replaceFleet")
            stored = await info.context.services.writes.run(
                principal, scope, write, idempotency, cpl=False
            )
        except FleetRejected as rejection:
            return _rejected(rejection)
        except v.MutationFailure as failure:
            error = ConflictError if failure.code == "CONFLICT" else ValidationError
            return error(code=failure.code, message=failure.message, field=failure.field)
        except IntegrityError:
            # Only reachable when a concurrent first replacement for the Party won the race.
            return ConflictError(
                code="CONFLICT", message="A concurrent change conflicts with this one.", field=None
            )
        info.context.forget_reads()
        return ReplaceFleetSuccess(fleet=await stored_fleet_answer(info, stored, ("fleet",)))
