"""The CPL in memory, one snapshot per data revision: manufacturers, devices, firmware, pathways
and prerequisites (and the withdrawals announced for a later day), read with Core statements
when the revision moves and shared by every request until it moves again. The planner's
per-device graphs are derived from it, each built the first time it is asked for and kept with
the snapshot, so a new revision starts without any.

The CPL changes a few times a day and is small (the real one: about 500 devices, 5,000
firmware, 10,000 pathways), while every front-end page reads a slice of it through a dozen
relations. Read from memory, a page costs no statement at all; each async ORM statement costs
about 1.6 ms here. History, audit events and webhooks are not in it: they are read per request.
A write bumps the revision, and the next request of any process loads the snapshot anew (the
writer's at once, the others' within `CPL_REVISION_MAX_AGE_MS`).
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections import defaultdict, namedtuple
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from models.notice import ScheduledWithdrawal
from models.revision import RevisionClock, read_revision
from models.tables import (
    Device,
    Firmware,
    FirmwareStatus,
    Manufacturer,
    PathwayStatus,
    PredecessorStatement,
    Prerequisite,
    UpgradePathway,
)
from permissions.policy import hidden_fields
from resolvers.planning.planner import FirmwareNode, PathwayEdge, PathwayGraph, latest_order

_TABLES: dict[str, sa.Table] = {
    "manufacturers": Manufacturer.__table__,  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
    "devices": Device.__table__,  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
    "firmware": Firmware.__table__,  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
    "pathways": UpgradePathway.__table__,  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
    "prerequisites": Prerequisite.__table__,  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
}


_WITHDRAWALS: sa.Table = ScheduledWithdrawal.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
_SCHEDULED = sa.select(
    _WITHDRAWALS.c.firmware_id, _WITHDRAWALS.c.pathway_id, _WITHDRAWALS.c.effective_on
).where(_WITHDRAWALS.c.applied_at.is_(None))

# Rows are kept as named tuples: attribute access as on the ORM's objects, a fraction of the
# memory, and a cheap miss where graphql-core asks a value whether it is awaitable (SQLAlchemy's
# rows answer a missing attribute through an exception of their own, measured at a tenth of a
# real-scale page's time).
_RECORDS: dict[str, type[Any]] = {
    name: namedtuple(f"{name.title()}Row", [column.key for column in table.columns])
    for name, table in _TABLES.items()
}
_TABLE_OF_RECORD: dict[type, str] = {record: name for name, record in _RECORDS.items()}
# The GraphQL type each table's rows are the source of: the policy table names its fields.
_TYPES = {
    "manufacturers": "Manufacturer",
    "devices": "Device",
    "firmware": "Firmware",
    "pathways": "UpgradePathway",
    "prerequisites": "Prerequisite",
}
_TABLE_OF_MODEL: dict[type, str] = {
    Manufacturer: "manufacturers",
    Device: "devices",
    Firmware: "firmware",
    UpgradePathway: "pathways",
    Prerequisite: "prerequisites",
}


def _index(rows: Iterable[Any], key: Callable[[Any], Any], order: Callable[[Any], Any]):
    grouped: dict[Any, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[key(row)].append(row)
    for members in grouped.values():
        members.sort(key=order)
    return dict(grouped)


def _column(field_name: str) -> str:
    """The column behind a GraphQL field of the same row (`zigbeeStackVersion`:
    `zigbee_stack_version`), as Strawberry names the field after the attribute."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", field_name).lower()


@functools.cache
def hidden_columns(granted: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """By table, the columns a capability's view holds as None: those of the fields the policy
    table does not grant it. Only columns: a relation is a row of its own table, hidden by that
    table's columns. A restricted field with no column behind it is an error here (a test
    builds every category's view), not a value left in every view."""
    hidden: dict[str, tuple[str, ...]] = {}
    for table, type_name in _TYPES.items():
        columns = _RECORDS[table]._fields
        names = [_column(name) for name in sorted(hidden_fields(granted, type_name))]
        missing = [n for n in names if n not in columns]
        if missing:
            raise LookupError(f"no column of {table} for the hidden fields {missing}")
        if names:
            hidden[table] = tuple(names)
    return hidden


@functools.lru_cache(maxsize=64)
def _hidden_key(granted: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`hidden_columns` as a view's key, sorted by table: worked out once a capability (a
    handful of them), not on every request."""
    return tuple(sorted(hidden_columns(granted).items()))


def in_view(row: Any, granted: tuple[str, ...]) -> Any:
    """A row read outside the snapshot (one newer than it, a mutation's result) as the
    capability's view holds it: a record with the hidden columns None."""
    table = _TABLE_OF_MODEL.get(type(row))
    if table is None:
        return row  # already a record: every record is made through a view
    record = _RECORDS[table](*(getattr(row, name) for name in _RECORDS[table]._fields))
    hidden = hidden_columns(granted).get(table)
    return record._replace(**dict.fromkeys(hidden, None)) if hidden else record


@dataclass(frozen=True)
class CplSnapshot:
    """Rows by id (named tuples: attributes named as the columns, like the ORM's), and the
    relations the schema follows, each in the order the schema promises."""

    revision: int
    manufacturers: dict[int, Any]
    devices: dict[int, Any]
    firmware: dict[int, Any]
    pathways: dict[int, Any]
    prerequisites: dict[int, Any]
    device_ids: list[int]  # ascending, for keyset pages
    devices_of_manufacturer: dict[int, list[Any]]
    firmware_of_device: dict[int, list[Any]]  # oldest on the CPL first
    pathways_from: dict[int, list[Any]]
    pathways_to: dict[int, list[Any]]
    prerequisites_of: dict[int, list[Any]]  # by firmware, in any status, in id order
    latest_firmware: dict[int, Any]  # the planner's default target, by device
    firmware_by_entry: dict[str, Any]  # by CPL entry id
    # Withdrawals announced for a later day, not yet applied: the day, by ("firmware" or
    # "pathway", id). Usable until then; plans and `withdrawalScheduledOn` say so.
    withdrawals: dict[tuple[str, int], date] = field(default_factory=dict, compare=False)
    # Built by `graph` on demand: a fleet plan touches thousands of devices, a page none.
    graphs: dict[int, PathwayGraph] = field(default_factory=dict, repr=False, compare=False)
    _views: dict[tuple[tuple[str, tuple[str, ...]], ...], CplSnapshot] = field(
        default_factory=dict, compare=False, repr=False
    )
    # Completed answers of this view's rows, kept by the compiled execution
    # (`schema.completions`) and dropped with the view: this view's alone, like its rows.
    answers: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def holds(self, row: Any) -> bool:
        """Whether `row` is this view's own row (not one read after it, nor another view's)."""
        table = _TABLE_OF_RECORD.get(row.__class__)
        return table is not None and getattr(self, table).get(row.id) is row

    def view(self, granted: tuple[str, ...]) -> CplSnapshot:
        """The CPL as a capability may read it: a snapshot of its own in which every column the
        capability is not granted is None. The search, its filters, counts, relations and the
        compiled execution all read rows from here, so no query shape can reach a value the
        view does not hold. Made once per (revision, columns hidden), so capabilities that
        hide the same columns share one; the snapshot of a capability that is granted every
        column is this one."""
        key = _hidden_key(granted)
        if not key:
            return self
        found = self._views.get(key)
        if found is None:
            hidden = dict(key)
            rows = {
                table: [
                    row._replace(**dict.fromkeys(hidden[table], None)) if table in hidden else row
                    for row in getattr(self, table).values()
                ]
                for table in _TYPES
            }
            # The planner's graphs hold no restricted column: every view shares them.
            found = CplSnapshot.of(self.revision, rows, self.graphs, self.withdrawals)
            self._views[key] = found
        return found

    @classmethod
    def of(
        cls,
        revision: int,
        rows: dict[str, list[Any]],
        graphs: dict[int, PathwayGraph] | None = None,
        withdrawals: dict[tuple[str, int], date] | None = None,
    ) -> CplSnapshot:
        """Indexed from the tables' rows; `graphs`, a memo shared with another view of them."""
        by_id = {name: {row.id: row for row in found} for name, found in rows.items()}
        ident = _id
        firmware_of_device = _index(
            rows["firmware"], lambda r: r.device_id, lambda r: (r.added_to_cpl_on, r.id)
        )
        return cls(
            revision=revision,
            manufacturers=by_id["manufacturers"],
            devices=by_id["devices"],
            firmware=by_id["firmware"],
            pathways=by_id["pathways"],
            prerequisites=by_id["prerequisites"],
            device_ids=sorted(by_id["devices"]),
            devices_of_manufacturer=_index(rows["devices"], lambda r: r.manufacturer_id, ident),
            firmware_of_device=firmware_of_device,
            pathways_from=_index(rows["pathways"], lambda r: r.from_firmware_id, ident),
            pathways_to=_index(rows["pathways"], lambda r: r.to_firmware_id, ident),
            prerequisites_of=_index(rows["prerequisites"], lambda r: r.firmware_id, ident),
            latest_firmware={
                device_id: latest
                for device_id, listed in firmware_of_device.items()
                if (latest := _latest(listed)) is not None
            },
            firmware_by_entry={
                row.cpl_entry_id: row for row in rows["firmware"] if row.cpl_entry_id is not None
            },
            graphs={} if graphs is None else graphs,
            withdrawals=withdrawals or {},
        )

    def matching_devices(self, matches: Callable[[Any], bool] | None) -> list[Any]:
        """The devices `matches` keeps (all of them for None), in ascending id order
        (`resolvers.reads.paging` cuts a page of them)."""
        if matches is None:
            return self.ordered_devices
        return [row for row in self.ordered_devices if matches(row)]

    @functools.cached_property
    def ordered_devices(self) -> list[Any]:
        """Every device in ascending id order, listed once a view: most pages filter nothing."""
        return [self.devices[i] for i in self.device_ids]

    def graph(self, device_id: int) -> PathwayGraph | None:
        """The planner's graph of a device, None if it is no device of this snapshot.

        Edges are the pathways leaving the device's firmware, WITHDRAWN ones too: the graph
        decides which it plans over, so the routing rules live in one place."""
        graph = self.graphs.get(device_id)
        if graph is None and device_id in self.devices:
            firmware = self.firmware_of_device.get(device_id, [])
            graph = self.graphs[device_id] = PathwayGraph(
                [
                    FirmwareNode(
                        f.id,
                        f.version,
                        f.status is FirmwareStatus.ACTIVE,
                        f.added_to_cpl_on,
                        f.predecessors is not PredecessorStatement.NOT_SUPPLIED,
                    )
                    for f in firmware
                ],
                [
                    PathwayEdge(
                        p.id,
                        p.from_firmware_id,
                        p.to_firmware_id,
                        p.status is PathwayStatus.PUBLISHED,
                    )
                    for f in firmware
                    for p in self.pathways_from.get(f.id, ())
                ],
            )
        return graph


def _id(row: Any) -> int:
    return row.id


def _latest(firmware: list[Any]) -> Any:
    active = [row for row in firmware if row.status is FirmwareStatus.ACTIVE]
    return max(active, key=lambda r: latest_order(r.added_to_cpl_on, r.id), default=None)


class SnapshotCache:
    """The snapshot of the revision now: loaded once per revision however many requests wait,
    the previous one dropped as soon as a newer one is ready."""

    def __init__(self, engine: AsyncEngine, revision: RevisionClock) -> None:
        self.engine = engine
        self.revision = revision
        self.loads = 0  # for tests and metrics
        self._snapshot: CplSnapshot | None = None
        self._loading: dict[int, asyncio.Future[CplSnapshot]] = {}

    def fresh(self) -> CplSnapshot | None:
        """The snapshot when it is known to be current without waiting (`RevisionClock.known`),
        else None: `current` then waits for the revision, or a load."""
        revision = self.revision.known()
        snapshot = self._snapshot
        if revision is not None and snapshot is not None and snapshot.revision >= revision:
            return snapshot
        return None

    async def current(self) -> CplSnapshot:
        revision = await self.revision.current()
        snapshot = self._snapshot
        if snapshot is not None and snapshot.revision >= revision:
            return snapshot
        loading = self._loading.get(revision)
        if loading is None:
            loading = self._loading[revision] = asyncio.ensure_future(self._load(revision))
        return await asyncio.shield(loading)

    async def _load(self, wanted: int) -> CplSnapshot:
        """One consistent read (a repeatable-read transaction on PostgreSQL, a read transaction
        on SQLite), labelled with the revision it saw, which may be newer than the one wanted."""
        try:
            async with self.engine.connect() as connection:
                if connection.dialect.name == "postgresql":
                    await connection.execution_options(isolation_level="REPEATABLE READ")
                else:  # pysqlite begins no transaction for reads on its own
                    await connection.exec_driver_sql("BEGIN")
                revision = await read_revision(connection)
                rows = {
                    name: [
                        _RECORDS[name](*row) for row in await connection.execute(sa.select(table))
                    ]
                    for name, table in _TABLES.items()
                }
                withdrawals = {
                    (
                        "firmware" if firmware_id is not None else "pathway",
                        firmware_id or pathway_id,
                    ): day
                    for firmware_id, pathway_id, day in await connection.execute(_SCHEDULED)
                }
        finally:
            self._loading.pop(wanted, None)
        snapshot = CplSnapshot.of(revision, rows, None, withdrawals)
        self.loads += 1
        if self._snapshot is None or self._snapshot.revision < snapshot.revision:
            self._snapshot = snapshot
        return snapshot
