"""The views of upgrade plans that the plan types read (`schema.planning`, `schema.fleets`):
one per distinct plan, with the rows the query selects (steps, ends, devices, announced
withdrawals, the manufacturer's contact) loaded up front in one batch each, so that no plan
field needs a resolver of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from strawberry.dataloader import DataLoader
from strawberry.types import Info
from strawberry.types.nodes import FragmentSpread, InlineFragment, Selection

from resolvers.planning.planner import BlockReason, Plan
from resolvers.planning.slices import SLICE, Sliced, in_slices


@dataclass(slots=True)
class PlanView:
    """An UpgradePlan's fields; relations the query did not select are left empty."""

    device: Any
    from_: Any
    target: Any
    reachable: bool
    reason: BlockReason | None
    steps: list[Any]
    contact: str | None = None
    withdrawals_scheduled: list[Any] = field(default_factory=list)


@dataclass(slots=True)
class WithdrawalView:
    effective_on: date
    firmware: Any
    pathway: Any


def scheduled_in(snapshot: Any, plan: Plan) -> list[WithdrawalView]:
    """The announced withdrawals a plan runs into: of a step, a firmware a step enters, or its
    target, in the plan's order, each once."""
    found: dict[tuple[str, int], WithdrawalView] = {}
    named = [(("pathway", s.id), ("firmware", s.to_id)) for s in plan.steps]
    keys = [key for pair in named for key in pair]
    if plan.target is not None:
        keys.append(("firmware", plan.target.id))
    for key in keys:
        day = snapshot.withdrawals.get(key)
        if day is not None and key not in found:
            row = (snapshot.firmware if key[0] == "firmware" else snapshot.pathways).get(key[1])
            is_firmware = key[0] == "firmware"
            found[key] = WithdrawalView(
                day, row if is_firmware else None, None if is_firmware else row
            )
    return list(found.values())


def selects(selections: list[Selection], path: tuple[str, ...]) -> bool:
    """Whether the query selects `path` below these selections, through fragments too."""
    for selection in selections:
        if isinstance(selection, FragmentSpread | InlineFragment):
            if selects(selection.selections, path):
                return True
        elif selection.name == path[0] and (
            len(path) == 1 or selects(selection.selections, path[1:])
        ):
            return True
    return False


def selections(info: Info) -> list[Selection]:
    return [s for field in info.selected_fields for s in field.selections]


async def rows(loader: DataLoader[int, Any], keys: set[int]) -> dict[int, Any]:
    ordered = sorted(keys)
    return dict(zip(ordered, await loader.load_many(ordered), strict=True))


async def plan_views(
    info: Info, prefix: tuple[str, ...], plans: list[tuple[int, Plan]]
) -> dict[int, PlanView]:
    """A view of each distinct plan (by `id`), with the rows the query selects under `prefix`
    loaded in one batch each."""
    selected = selections(info)

    def wanted(*names: str) -> bool:
        return any(selects(selected, (*prefix, name)) for name in names)

    loaders = info.context.loaders
    pathways: dict[int, Any] = {}
    firmware: dict[int, Any] = {}
    devices: dict[int, Any] = {}
    if wanted("steps"):
        pathways = await rows(loaders.pathway, {s.id for _, p in plans for s in p.steps})
    if wanted("from", "target"):
        ends = {f.id for _, p in plans for f in (p.start, p.target) if f is not None}
        firmware = await rows(loaders.firmware, ends)
    if wanted("device"):
        devices = await rows(loaders.device, {device_id for device_id, _ in plans})
    contacts: dict[int, str | None] = {}
    if wanted("contact"):
        snapshot = await loaders.snapshot()
        blocked = {device_id for device_id, plan in plans if not plan.reachable}
        contacts = {device_id: _contact(snapshot, device_id) for device_id in blocked}
    views = await in_slices(_views(plans, devices, firmware, pathways, contacts))
    if wanted("withdrawalsScheduled"):
        held = await loaders.snapshot()
        if held.withdrawals:
            for _, plan in plans:
                views[id(plan)].withdrawals_scheduled = scheduled_in(held, plan)
    return views


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
