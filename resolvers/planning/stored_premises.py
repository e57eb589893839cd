"""A stored fleet's premises shapes: checked, merged, stored and read back with their fleet.

A shape is checked device by device by the very planner `fleetPlan` uses for its items
(`resolvers.planning.fleet_plan`, each device an item of one meter): a device it would answer
with a problem (bad input, no such device, a firmware version not on the CPL for it), or a shape
`fleetPlan` would answer with a problem (no device, too many, a count below 1), is a problem of
the shape; the caller refuses the fleet on any. What is stored is each device's id and
normalised version, in the order given (a premises plan numbers its devices by it); shapes with
the same devices in the same order are one, their premises summed, in the order first given.

Planned again on every read (`plan_stored_shapes`) with the premises planner (`premisesPlan`'s),
as `fleetPlan` plans the premises it is given. Nothing here knows GraphQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.database import RequestSession
from models.fleets import FleetPremisesShape
from resolvers.planning.fleet_items import FleetItem
from resolvers.planning.fleet_plan import plan_fleet
from resolvers.planning.fleet_premises import (
    FleetPremises,
    PremisesEntry,
    PremisesTally,
    plan_fleet_premises,
    shape_problem,
)
from resolvers.planning.premises_plan import PremisesItem
from resolvers.reads.snapshot import CplSnapshot

__all__ = [
    "StoredShape",
    "check_shapes",
    "delete_shapes",
    "insert_shapes",
    "load_shapes",
    "plan_stored_shapes",
    "shapes_of",
]

INSERT_CHUNK = 5_000  # shapes a statement, as the groups'


@dataclass(frozen=True, slots=True)
class StoredShape:
    """`count` premises whose devices are `devices`: (device id, normalised version) each."""

    devices: tuple[tuple[int, str], ...]
    count: int

    def premises(self) -> FleetPremises:
        """The shape as the premises planner takes it."""
        items = tuple(
            PremisesItem(device_id, False, None, None, None, version, 1)
            for device_id, version in self.devices
        )
        return FleetPremises(items, self.count)


async def check_shapes(
    db: RequestSession, snapshot: CplSnapshot, shapes: Sequence[FleetPremises]
) -> tuple[list[StoredShape], list[tuple[int, str]]]:
    """The shapes to store (merged) and the problems of those that cannot be: (shape index from
    0, problem), in order. Each device's problem says which device (`device 2: ...`, from 0)."""
    items: list[FleetItem] = []
    for shape in shapes:
        items.extend(replace(device, meter_count=1) for device in shape.devices)
    result = await plan_fleet(db, snapshot, items) if items else None
    problems: list[tuple[int, str]] = []
    counts: dict[tuple[tuple[int, str], ...], int] = {}
    at = 0
    for index, shape in enumerate(shapes):
        entries = result.entries[at : at + len(shape.devices)] if result is not None else []
        at += len(shape.devices)
        found = [shape_problem(shape)]
        found += [f"device {n}: {e.problem}" for n, e in enumerate(entries) if e.problem]
        if any(found):
            problems.append((index, "; ".join(p for p in found if p)))
            continue
        devices = tuple((e.device_id, e.firmware_version) for e in entries)
        key: tuple[tuple[int, str], ...] = devices  # type: ignore[assignment]  # an entry without a problem names its device
        counts[key] = counts.get(key, 0) + shape.count
    return [StoredShape(devices, count) for devices, count in counts.items()], problems


async def plan_stored_shapes(
    db: RequestSession, snapshot: CplSnapshot, shapes: Sequence[StoredShape]
) -> tuple[list[PremisesEntry], PremisesTally]:
    """Each stored shape planned (`fleetPlan`'s premises planner), and their tally."""
    return await plan_fleet_premises(db, snapshot, [shape.premises() for shape in shapes])


def _table() -> sa.Table:
    return FleetPremisesShape.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass


async def delete_shapes(session: AsyncSession, fleet_id: int | None) -> None:
    """The fleet's shapes deleted, in the caller's transaction."""
    await session.exec(
        sa.delete(FleetPremisesShape).where(col(FleetPremisesShape.fleet_id) == fleet_id)
    )


async def insert_shapes(
    session: AsyncSession, fleet_id: int | None, shapes: Sequence[StoredShape]
) -> None:
    """The fleet's shapes inserted in order, in the caller's transaction."""
    rows = [
        {
            "fleet_id": fleet_id,
            "position": position,
            "premises_count": shape.count,
            "devices": [[device_id, version] for device_id, version in shape.devices],
        }
        for position, shape in enumerate(shapes)
    ]
    for start in range(0, len(rows), INSERT_CHUNK):
        await session.exec(sa.insert(_table()), params=rows[start : start + INSERT_CHUNK])


def shapes_of(fleet_id: int | None) -> Any:
    """The statement reading a fleet's shapes, in order."""
    return (
        select(FleetPremisesShape.premises_count, FleetPremisesShape.devices)
        .where(col(FleetPremisesShape.fleet_id) == fleet_id)
        .order_by(col(FleetPremisesShape.position))
    )


def load_shapes(rows: Sequence[Any]) -> list[StoredShape]:
    """The shapes of the rows `shapes_of` reads."""
    return [
        StoredShape(tuple((int(d), str(v)) for d, v in devices), int(count))
        for count, devices in rows
    ]
