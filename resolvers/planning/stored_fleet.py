"""A Supplier's stored fleet: checked, grouped, replaced whole, and read back by its Party only.

Items are checked by the very planner `fleetPlan` uses (`resolvers.planning.fleet_plan`): an
item it would answer with a `problem` (bad input, a device or firmware version not on the CPL)
refuses the whole fleet, naming every such item; nothing is stored. The rest become groups,
one per (device, firmware version), the meters of items naming the same one summed (by id or
by identifiers alike). Premises shapes are checked and stored alongside
(`resolvers.planning.stored_premises`): a shape that cannot be stored refuses the fleet too.
A replacement is one unit of work: the Party's groups and shapes deleted and the new ones
inserted, all or nothing; a caller-scoped one, which moves the fleet's own revision and not the
CPL's data revision (no other Party's answer or ETag changes with it).

Who owns a fleet is the caller's row scope (`permissions.row_scopes`) under the policy's
`OWN_FLEET` rule: the Party its token names, and no one else, whatever its category.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.database import RequestSession
from models.fleets import FleetGroup, StoredFleet
from models.tables import utcnow
from permissions.row_scopes import Scope
from resolvers.planning.fleet_items import FleetItem
from resolvers.planning.fleet_plan import MAX_FLEET_ITEMS, FleetResult, FleetSummary, plan_fleet
from resolvers.planning.fleet_premises import FleetPremises, with_premises
from resolvers.planning.stored_premises import (
    StoredShape,
    check_shapes,
    delete_shapes,
    insert_shapes,
    load_shapes,
    plan_stored_shapes,
    shapes_of,
)
from resolvers.reads.snapshot import CplSnapshot
from resolvers.writes.unit_of_work import Work

__all__ = [
    "MAX_FLEET_GROUPS",
    "MAX_FLEET_METERS",
    "FleetRejected",
    "Group",
    "Stored",
    "fleet_revision",
    "group_items",
    "load_fleet",
    "plan_groups",
    "replace_fleet",
    "replay_fleet",
]

MAX_FLEET_GROUPS = MAX_FLEET_ITEMS  # what one plan of the stored fleet takes
MAX_FLEET_METERS = 2**31 - 1  # GraphQL's Int: `StoredFleet.meters` must hold the sum
INSERT_CHUNK = 5_000  # groups a statement: well under SQLite's and asyncpg's bound parameters


@dataclass(frozen=True, slots=True)
class Group:
    """Meters on one device and firmware version (the version normalised, upper case)."""

    device_id: int
    firmware_version: str
    meter_count: int


class FleetRejected(Exception):
    """The fleet cannot be stored: `problems` are (item index from 0, problem), in order, and
    `premises_problems` (premises shape index from 0, problem); with neither, `message` says
    what is wrong with the fleet as a whole."""

    def __init__(
        self,
        message: str,
        problems: Sequence[tuple[int, str]] = (),
        premises_problems: Sequence[tuple[int, str]] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems)
        self.premises_problems = list(premises_problems)


def too_many(count: int) -> FleetRejected:
    return FleetRejected(
        f"A stored fleet holds at most {MAX_FLEET_GROUPS:,} items (devices and firmware "
        f"versions) and premises devices; {count:,} were given. Sum your meters by device and "
        "firmware version."
    )


async def group_items(
    db: RequestSession,
    snapshot: CplSnapshot,
    items: Sequence[FleetItem],
    premises: Sequence[FleetPremises] = (),
) -> tuple[list[Group], list[StoredShape], FleetSummary]:
    """The fleet's groups, by device id and version, its premises shapes, and its plan's
    summary (premises counted in as `fleetPlan` counts them); `FleetRejected` naming every item
    and shape that cannot be stored, or when there are too many items or meters."""
    given = len(items) + sum(len(shape.devices) for shape in premises)
    if given > MAX_FLEET_GROUPS:
        raise too_many(given)
    result = await plan_fleet(db, snapshot, items)
    problems = [(e.index, e.problem) for e in result.entries if e.problem is not None]
    shapes, shape_problems = await check_shapes(db, snapshot, premises)
    if problems or shape_problems:
        count = len(problems) + len(shape_problems)
        what = f"item{'s' if count > 1 else ''}"
        if shape_problems:
            what = "items and premises" if problems else "premises"
        raise FleetRejected(
            f"{count:,} {what} of the fleet cannot be stored; nothing was stored.",
            problems,
            shape_problems,
        )
    sums: dict[tuple[int, str], int] = {}
    for entry in result.entries:
        assert entry.device_id is not None  # an entry without a problem names its device
        key = (entry.device_id, entry.firmware_version)
        sums[key] = sums.get(key, 0) + entry.meter_count
    devices = sum(shape.count * len(shape.devices) for shape in shapes)
    if sum(sums.values()) + devices > MAX_FLEET_METERS:
        raise FleetRejected(
            f"The meters of a stored fleet (and its premises' devices) must add up to at most "
            f"{MAX_FLEET_METERS:,}."
        )
    groups = [Group(device, version, meters) for (device, version), meters in sorted(sums.items())]
    summary = result.summary
    if shapes:
        _, tally = await plan_stored_shapes(db, snapshot, shapes)
        summary = with_premises(summary, tally)
    return groups, shapes, summary


@dataclass(slots=True)
class Stored:
    """A stored fleet's row, its groups (by device id and version) and its premises shapes (in
    order); `id` is the row's, which stays the same across replacements (what an idempotency
    record remembers)."""

    fleet: StoredFleet
    groups: list[Group]
    premises: list[StoredShape] = field(default_factory=list)

    @property
    def id(self) -> int | None:
        return self.fleet.id


def _fleet_of(scope: Scope) -> Any:
    return select(StoredFleet).where(*scope.where(col(StoredFleet.party_id)))


def _groups_of(fleet_id: int | None) -> Any:
    return (
        select(FleetGroup.device_id, FleetGroup.firmware_version, FleetGroup.meter_count)
        .where(col(FleetGroup.fleet_id) == fleet_id)
        .order_by(col(FleetGroup.device_id), col(FleetGroup.firmware_version))
    )


async def fleet_revision(sessions: async_sessionmaker[AsyncSession], scope: Scope) -> int:
    """The revision of the fleet in `scope` (the caller's own; 0 while its Party has stored
    none), in one statement: read afresh for each answer that reads the fleet, whose cache key
    holds it (`permissions.policy.FLEET_SCOPED`), so a replacement through any process is in
    the next answer of every process."""
    async with sessions() as session:
        statement = select(StoredFleet.revision).where(*scope.where(col(StoredFleet.party_id)))
        return (await session.exec(statement)).first() or 0


async def replace_fleet(
    work: Work, groups: Sequence[Group], premises: Sequence[StoredShape] = ()
) -> Stored:
    """The caller's fleet replaced whole by `groups` and `premises`, in the unit of work's
    transaction. It records no change: a fleet is in no history, event or delivery anyone else
    reads."""
    if work.scope.owner is None:  # the policy lets only a Supplier, scoped to its Party, here
        raise PermissionError("no Party owns this fleet")
    session = work.session
    fleet = (await session.exec(_fleet_of(work.scope))).first()
    if fleet is None:
        fleet = StoredFleet(party_id=work.scope.owner)
    else:
        fleet.replaced_at = utcnow()
        fleet.revision += 1
        await session.exec(sa.delete(FleetGroup).where(col(FleetGroup.fleet_id) == fleet.id))
        await delete_shapes(session, fleet.id)
    session.add(fleet)
    await session.flush()
    rows = [
        {
            "fleet_id": fleet.id,
            "device_id": group.device_id,
            "firmware_version": group.firmware_version,
            "meter_count": group.meter_count,
        }
        for group in groups
    ]
    table: sa.Table = FleetGroup.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
    for start in range(0, len(rows), INSERT_CHUNK):
        await session.exec(sa.insert(table), params=rows[start : start + INSERT_CHUNK])
    await insert_shapes(session, fleet.id, premises)
    return Stored(fleet, list(groups), list(premises))


async def replay_fleet(work: Work, kind: str, row_id: int) -> Stored:
    """An idempotent retry's result: the caller's stored fleet as it is now, found only within
    the caller's own scope, read in the retry's own transaction."""
    fleet = (
        await work.session.exec(_fleet_of(work.scope).where(col(StoredFleet.id) == row_id))
    ).first()
    if fleet is None:
        raise PermissionError("this fleet is not the caller's")
    rows = (await work.session.exec(_groups_of(fleet.id))).all()
    shapes = (await work.session.exec(shapes_of(fleet.id))).all()
    work.session.expunge(fleet)  # stays readable after the transaction rolls back
    return Stored(fleet, [Group(*row) for row in rows], load_shapes(shapes))


async def load_fleet(db: RequestSession, scope: Scope) -> Stored | None:
    """The fleet in `scope` (the caller's own), its groups and shapes; None when its Party has
    stored none."""
    found = await db.fetch(_fleet_of(scope))
    if not found:
        return None
    rows = await db.fetch(_groups_of(found[0].id))
    shapes = await db.fetch(shapes_of(found[0].id))
    return Stored(found[0], [Group(*row) for row in rows], load_shapes(shapes))


async def plan_groups(
    db: RequestSession, snapshot: CplSnapshot, groups: Sequence[Group]
) -> FleetResult:
    """The stored groups planned against the CPL of `snapshot`, by `fleetPlan`'s planner: an
    entry per group, in the groups' order."""
    items = [
        FleetItem(
            device_id=group.device_id,
            bad_device_id=False,
            manufacturer_identifier=None,
            model_identifier=None,
            hardware_version=None,
            firmware_version=group.firmware_version,
            meter_count=group.meter_count,
        )
        for group in groups
    ]
    return await plan_fleet(db, snapshot, items)
