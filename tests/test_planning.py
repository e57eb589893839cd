"""Fleet planning and the snapshot's graphs against a real database (SQLite or PostgreSQL).

The point of ``resolvers.planning.fleet_plan`` and of the graphs ``CplSnapshot.graph`` derives is
their statement budget and that they follow the data revision, so these tests count the statements a
real engine sends and change real rows to check that a new revision's snapshot sees commits.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bench.generate import SyntheticCpl, load_synthetic_cpl
from models.database import RequestSession, create_engine, migrate, session_factory
from models.revision import RevisionClock
from models.tables import (
    DataRevision,
    Device,
    DeviceType,
    Firmware,
    FirmwareStatus,
    Manufacturer,
    PathwayStatus,
    PredecessorStatement,
    UpgradePathway,
    utcnow,
)
from resolvers.files.device_keys import device_ids_by_key
from resolvers.planning import fleet_items
from resolvers.planning.fleet_items import FleetItem
from resolvers.planning.fleet_plan import MAX_FLEET_ITEMS, FleetResult, plan_fleet
from resolvers.planning.planner import BlockReason, FirmwareNode, PathwayEdge, PathwayGraph
from resolvers.reads.snapshot import CplSnapshot, SnapshotCache
from tests.harness import fresh_database

NOW = utcnow()
BUMP = (
    update(DataRevision)
    .where(DataRevision.id == 1)  # type: ignore[arg-type]
    .values(revision=DataRevision.revision + 1)
)


@dataclass
class Db:
    """A real database with every statement its engine sends recorded."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    statements: list[str] = field(default_factory=list)

    def selects(self) -> list[str]:
        return [s for s in self.statements if s.lstrip().upper().startswith("SELECT")]

    async def run(self, snapshot: CplSnapshot, items: list[FleetItem]) -> FleetResult:
        """One request over `snapshot`: its own RequestSession, closed afterwards; statements
        counted afresh."""
        self.statements.clear()
        db = RequestSession(self.sessions)
        try:
            return await plan_fleet(db, snapshot, items)
        finally:
            await db.close()

    @asynccontextmanager
    async def snapshots(self) -> AsyncIterator[SnapshotCache]:
        """Snapshots as the app keeps them, with the revision read afresh on every request."""
        clock = RevisionClock(self.engine, max_age=0)
        try:
            yield SnapshotCache(self.engine, clock)
        finally:
            clock.close()

    async def snapshot(self) -> CplSnapshot:
        """The snapshot of the revision now."""
        async with self.snapshots() as snapshots:
            return await snapshots.current()

    async def commit(self, *changes: Any, bump: bool = True) -> None:
        """Commit ``changes``, with the revision bump every write makes unless told not to."""
        async with self.engine.begin() as connection:
            for change in changes:
                await connection.execute(change)
            if bump:
                await connection.execute(BUMP)


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[Db]:
    engine = create_engine(url)
    db = Db(engine, session_factory(engine))
    async with engine.connect():
        pass  # first connect: dialect set-up statements happen before anything is counted
    event.listen(
        engine.sync_engine,
        "before_cursor_execute",
        lambda conn, cursor, sql, *args: db.statements.append(sql),
    )
    try:
        yield db
    finally:
        await engine.dispose()


def by_id(device_id: int, version: str, meters: int = 1) -> FleetItem:
    return FleetItem(device_id, False, None, None, None, version, meters)


def by_key(
    manufacturer: str | None, model: str | None, hardware: str | None, version: str, meters: int = 1
) -> FleetItem:
    return FleetItem(None, False, manufacturer, model, hardware, version, meters)


# --- a small hand-made CPL ------------------------------------------------------------------

DEVICES = [
    # id, model, hardware
    (1, "1234", "0100"),  # chain AAAA0001 -> 0000BBBB -> 12345678; the shortcut is WITHDRAWN
    (2, "1234", "0200"),  # no firmware at all
    (3, "5678", "0100"),  # only WITHDRAWN firmware: no target
    (4, "9ABC", "0100"),  # 00000042 and 00000043 added the same day: 43 is latest (higher id)
]
FIRMWARE = [
    # id, device, version, active, added on
    (11, 1, "AAAA0001", True, date(2020, 1, 1)),
    (12, 1, "0000BBBB", True, date(2020, 2, 1)),
    (13, 1, "12345678", True, date(2020, 3, 1)),
    (31, 3, "00000031", False, date(2020, 1, 1)),
    (41, 4, "00000041", True, date(2020, 1, 1)),
    (42, 4, "00000042", True, date(2021, 1, 1)),
    (43, 4, "00000043", True, date(2021, 1, 1)),
]
PATHWAYS = [
    # id, device, from, to, published
    (101, 1, 11, 12, True),
    (102, 1, 12, 13, True),
    (103, 1, 11, 13, False),
    (401, 4, 41, 42, True),
]


async def load_small_cpl(url: str) -> None:
    engine = create_engine(url)
    await migrate(engine)
    async with engine.begin() as connection:
        await connection.execute(
            insert(Manufacturer), [{"id": 1, "identifier": "0A1B", "name": "Small"}]
        )
        await connection.execute(
            insert(Device),
            [
                {
                    "id": device_id,
                    "manufacturer_id": 1,
                    "device_type": DeviceType.ESME,
                    "model_identifier": model,
                    "model_name": f"Model {model}",
                    "hardware_version": hardware,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for device_id, model, hardware in DEVICES
            ],
        )
        await connection.execute(
            insert(Firmware),
            [
                {
                    "id": firmware_id,
                    "device_id": device_id,
                    "version": version,
                    "status": FirmwareStatus.ACTIVE if active else FirmwareStatus.WITHDRAWN,
                    "added_to_cpl_on": added_on,
                    "created_at": NOW,
                    # Each submission said what it had: its predecessors, or "N/A".
                    "predecessors": PredecessorStatement.LISTED
                    if any(to_id == firmware_id for *_, to_id, _ in PATHWAYS)
                    else PredecessorStatement.NONE_EARLIER,
                }
                for firmware_id, device_id, version, active, added_on in FIRMWARE
            ],
        )
        await connection.execute(
            insert(UpgradePathway),
            [
                {
                    "id": pathway_id,
                    "device_id": device_id,
                    "from_firmware_id": from_id,
                    "to_firmware_id": to_id,
                    "status": PathwayStatus.PUBLISHED if published else PathwayStatus.WITHDRAWN,
                    "revision": 1,
                    "published_at": NOW,
                    "published_by": "test",
                    "updated_at": NOW,
                }
                for pathway_id, device_id, from_id, to_id, published in PATHWAYS
            ],
        )
    await engine.dispose()


@pytest.fixture
async def small(tmp_path: Path) -> AsyncIterator[Db]:
    """A fresh small CPL per test, since some tests change it."""
    async with fresh_database(tmp_path) as url:
        await load_small_cpl(url)
        async with opened(url) as db:
            yield db


# --- a synthetic CPL of 1,000 devices -------------------------------------------------------


@pytest.fixture(scope="module")
async def synthetic(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Db, SyntheticCpl]]:
    async with fresh_database(tmp_path_factory.mktemp("planning")) as url:
        cpl = await load_synthetic_cpl(url, 1_000)
        async with opened(url) as db:
            yield db, cpl


def fleet(cpl: SyntheticCpl, items: int, devices: int, seed: int = 7) -> list[FleetItem]:
    """``items`` items over the first ``devices`` devices (each used), half named by key."""
    rng = random.Random(seed)
    chosen = cpl.devices[:devices]
    result = []
    for index in range(items):
        device = chosen[index % devices]
        version = rng.choice(device.firmware_versions)
        meters = rng.randint(1, 300)
        if index % 2:
            result.append(by_id(device.device_id, version, meters))
        else:
            result.append(
                by_key(
                    device.manufacturer_identifier.lower(),
                    f" {device.model_identifier} ",
                    device.hardware_version,
                    version.lower(),
                    meters,
                )
            )
    return result


def check_summary(result: FleetResult, items: list[FleetItem]) -> None:
    summary = result.summary
    assert summary.meters == sum(max(item.meter_count, 0) for item in items)
    assert summary.up_to_date + summary.upgradable + summary.blocked == summary.meters
    steps = [s for s, _ in summary.meters_by_step_count]
    assert steps == sorted(set(steps))
    assert sum(m for _, m in summary.meters_by_step_count) == (
        summary.up_to_date + summary.upgradable
    )
    assert dict(summary.meters_by_step_count).get(0, 0) == summary.up_to_date
    # The same totals again, straight from the entries.
    blocked = sum(
        max(e.meter_count, 0) for e in result.entries if e.plan is None or not e.plan.reachable
    )
    assert blocked == summary.blocked
    by_steps: dict[int, int] = {}
    for entry in result.entries:
        if entry.plan is not None and entry.plan.reachable:
            by_steps[len(entry.plan.steps)] = by_steps.get(len(entry.plan.steps), 0) + (
                entry.meter_count
            )
    assert sorted(by_steps.items()) == summary.meters_by_step_count
    by_reason: dict[BlockReason | None, int] = {}
    for item, entry in zip(items, result.entries, strict=True):
        if entry.plan is None or not entry.plan.reachable:
            reason = entry.plan.reason if entry.plan is not None else None
            by_reason[reason] = by_reason.get(reason, 0) + max(item.meter_count, 0)
    assert dict(summary.blocked_by_reason) == by_reason
    assert sum(meters for _, meters in summary.blocked_by_reason) == summary.blocked


def hand_built(firmware: list[Firmware], pathways: list[UpgradePathway]) -> PathwayGraph:
    return PathwayGraph(
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
                p.id, p.from_firmware_id, p.to_firmware_id, p.status is PathwayStatus.PUBLISHED
            )
            for p in pathways
        ],
    )


async def test_snapshot_graphs_plan_like_graphs_built_by_hand(synthetic):
    db, cpl = synthetic
    snapshot = await db.snapshot()
    assert snapshot.graph(999_999) is None  # not a device
    async with db.sessions() as session:
        for device in cpl.devices[:40]:
            firmware = (
                await session.exec(select(Firmware).where(Firmware.device_id == device.device_id))
            ).all()
            pathways = (
                await session.exec(
                    select(UpgradePathway).where(UpgradePathway.device_id == device.device_id)
                )
            ).all()
            expected = hand_built(list(firmware), list(pathways))
            graph = snapshot.graph(device.device_id)
            assert graph is not None and graph.latest() == expected.latest()
            targets = [None, *device.firmware_versions]
            for start in device.firmware_versions:
                for target in targets:
                    assert graph.plan(start, target) == expected.plan(start, target)


async def test_statements_do_not_grow_with_items_or_devices(synthetic):
    db, cpl = synthetic
    small_fleet, large_fleet = fleet(cpl, 100, 10), fleet(cpl, 10_000, 1_000)
    small_snapshot, large_snapshot = await db.snapshot(), await db.snapshot()

    small_result = await db.run(small_snapshot, small_fleet)
    small_statements = list(db.statements)
    large_result = await db.run(large_snapshot, large_fleet)
    large_statements = list(db.statements)

    # the identifier lookup, nothing else, at either size: the graphs are the snapshot's
    assert len(small_statements) == len(large_statements) == 1
    assert len(db.selects()) == 1
    assert not any("firmware" in s or "upgrade_pathway" in s for s in large_statements)
    assert len(small_snapshot.graphs) == 10
    assert len(large_snapshot.graphs) == 1_000  # each device's graph built once for 10,000 items
    assert all(e.problem is None for e in large_result.entries)
    assert all(e.problem is None for e in small_result.entries)
    check_summary(large_result, large_fleet)
    check_summary(small_result, small_fleet)


async def test_an_unchanged_cpl_is_not_reloaded(synthetic):
    db, cpl = synthetic
    items = fleet(cpl, 2_000, 200, seed=3)
    async with db.snapshots() as snapshots:
        first = await db.run(await snapshots.current(), items)
        again = await db.run(await snapshots.current(), items)
        assert snapshots.loads == 1
    assert len(db.statements) == 1  # the identifier lookup
    assert all(again.graphs[d] is graph for d, graph in first.graphs.items())  # built once
    assert [e.plan for e in again.entries] == [e.plan for e in first.entries]
    assert again.summary == first.summary

    only_ids = [item for item in items if item.device_id is not None]
    await db.run(await db.snapshot(), only_ids)
    assert db.statements == []


async def test_a_committed_change_is_seen_by_the_next_request(small):
    items = [by_id(1, "AAAA0001")]
    async with small.snapshots() as snapshots:
        old = await snapshots.current()
        before = await small.run(old, items)
        assert [step.id for step in before.entries[0].plan.steps] == [101, 102]

        publish_shortcut = (
            update(UpgradePathway)
            .where(UpgradePathway.id == 103)  # type: ignore[arg-type]
            .values(status=PathwayStatus.PUBLISHED)
        )
        # A write that forgets the bump is not seen: the snapshot is what answers.
        await small.commit(publish_shortcut, bump=False)
        stale = await small.run(await snapshots.current(), items)
        assert [step.id for step in stale.entries[0].plan.steps] == [101, 102]
        assert small.statements == [] and snapshots.loads == 1

        await small.commit()  # the bump alone
        new = await snapshots.current()
        assert new.revision == old.revision + 1 and not new.graphs  # a new revision: no graphs
        after = await small.run(new, items)
        assert [step.id for step in after.entries[0].plan.steps] == [103]
        # A request still holding the old snapshot plans by the old revision, and its graphs
        # stay with it.
        assert [step.id for step in old.graph(1).plan("AAAA0001").steps] == [101, 102]
        assert new.graph(1) is not old.graph(1)

        withdraw_target = (
            update(Firmware)
            .where(Firmware.id == 13)  # type: ignore[arg-type]
            .values(status=FirmwareStatus.WITHDRAWN)
        )
        await small.commit(withdraw_target)
        latest_now = await small.run(await snapshots.current(), items)
    assert latest_now.entries[0].plan.target.version == "0000BBBB"
    assert [step.id for step in latest_now.entries[0].plan.steps] == [101]


async def test_every_kind_of_problem(small):
    items = [
        by_id(1, "AAAA0001", 10),  # 0: two steps
        by_key(" 0a1b", "1234 ", "0100", " aaaa0001 ", 5),  # 1: same device, normalised
        by_key(None, None, None, "AAAA0001", 3),  # 2: no device named
        by_key("0A1B", "1234", None, "AAAA0001", 3),  # 3: identifiers incomplete
        FleetItem(1, False, "0A1B", "1234", "0100", "AAAA0001", 3),  # 4: both
        FleetItem(None, True, None, None, None, "AAAA0001", 3),  # 5: malformed deviceId
        by_id(999_999, "AAAA0001", 3),  # 6: no such device
        by_key("0A1B", "FFFF", "0100", "AAAA0001", 3),  # 7: no such device by identifiers
        by_key("XYZ1", "12345", "0100", "AAAA0001", 3),  # 8: identifiers not 4 hex digits
        by_id(1, "NOT-HEX!", 3),  # 9: version not 8 hex digits
        by_id(1, "AAAA0001", 0),  # 10: no meters
        by_id(1, "AAAA0001", -4),  # 11: negative meters count as none
        by_id(1, "0000FFFF", 3),  # 12: version not on the CPL for the device
        by_id(2, "AAAA0001", 3),  # 13: device without firmware
        by_id(3, "00000031", 7),  # 14: only withdrawn firmware: a plan, blocked
        by_id(4, "00000041", 11),  # 15: no pathway to the latest: a plan, blocked
        by_id(4, "00000043", 13),  # 16: already on the latest (a same-day tie, higher id)
        by_id(1, "123", 0),  # 17: two problems at once
        FleetItem(None, True, None, None, "0100", "AAAA0001", 3),  # 18: bad id and identifiers
    ]
    result = await small.run(await small.snapshot(), items)
    entries = result.entries
    assert [e.index for e in entries] == list(range(len(items)))
    problems = [e.problem for e in entries]
    assert problems == [
        None,
        None,
        fleet_items.NO_DEVICE_GIVEN,
        f"hardwareVersion missing: {fleet_items.NO_DEVICE_GIVEN}",
        fleet_items.BOTH_GIVEN,
        fleet_items.BAD_DEVICE_ID,
        fleet_items.UNKNOWN_DEVICE_ID,
        fleet_items.UNKNOWN_DEVICE_KEY,
        "manufacturerIdentifier must be 4 hexadecimal digits; "
        "modelIdentifier must be 4 hexadecimal digits",
        fleet_items.BAD_FIRMWARE,
        fleet_items.BAD_METER_COUNT,
        fleet_items.BAD_METER_COUNT,
        fleet_items.UNKNOWN_FIRMWARE,
        fleet_items.UNKNOWN_FIRMWARE,
        None,
        None,
        None,
        f"{fleet_items.BAD_FIRMWARE}; {fleet_items.BAD_METER_COUNT}",
        fleet_items.BOTH_GIVEN,
    ]
    for entry in entries:
        assert (entry.plan is None) == (entry.problem is not None)
        if entry.problem:  # never echoes what was sent
            for echoed in ("XYZ1", "12345", "NOT-HEX", "0000FFFF", "999999", "FFFF"):
                assert echoed not in entry.problem
    assert [e.device_id for e in entries[:2]] == [1, 1]
    assert entries[6].device_id is None and entries[7].device_id is None
    assert entries[12].device_id == 1 and entries[13].device_id == 2
    assert entries[1].firmware_version == "AAAA0001"
    assert entries[0].plan is entries[1].plan  # one device, one version: planned once
    assert [s.id for s in entries[0].plan.steps] == [101, 102]
    assert entries[14].plan.reason is BlockReason.UNKNOWN_TARGET_VERSION
    assert entries[15].plan.reason is BlockReason.NO_PATHWAY
    assert entries[15].plan.target.version == "00000043"
    assert entries[16].plan.reachable and entries[16].plan.steps == ()

    summary = result.summary
    problem_meters = sum(
        max(i.meter_count, 0) for i, e in zip(items, entries, strict=True) if e.problem
    )
    assert summary.up_to_date == 13
    assert summary.upgradable == 15
    assert summary.blocked == problem_meters + 7 + 11
    assert summary.meters_by_step_count == [(0, 13), (2, 15)]
    assert summary.blocked_by_reason == [
        (BlockReason.UNKNOWN_TARGET_VERSION, 7),
        (BlockReason.NO_PATHWAY, 11),
        (None, problem_meters),
    ]
    check_summary(result, items)


async def test_duplicates_are_planned_once_and_entries_keep_input_order(synthetic):
    db, cpl = synthetic
    device = cpl.devices[5]
    other = cpl.devices[6]
    version = device.firmware_versions[0]
    items = [
        by_id(device.device_id, version, 2),
        by_id(other.device_id, other.firmware_versions[1], 3),
        by_key(
            device.manufacturer_identifier,
            device.model_identifier,
            device.hardware_version,
            version.lower(),
            4,
        ),
        by_id(device.device_id, f"  {version}", 5),
    ]
    result = await db.run(await db.snapshot(), items)
    entries = result.entries
    assert [e.index for e in entries] == [0, 1, 2, 3]
    assert [e.meter_count for e in entries] == [2, 3, 4, 5]
    assert [e.device_id for e in entries] == [
        device.device_id,
        other.device_id,
        device.device_id,
        device.device_id,
    ]
    assert entries[0].plan is entries[2].plan is entries[3].plan
    assert entries[1].plan is not entries[0].plan
    check_summary(result, items)


async def test_summary_of_a_large_fleet_adds_up(synthetic):
    db, cpl = synthetic
    items = fleet(cpl, 5_000, 1_000, seed=11)
    items += [by_id(999_999, "00000000", 17), by_id(1, "00000000", -2)]
    result = await db.run(await db.snapshot(), items)
    check_summary(result, items)
    assert result.summary.up_to_date and result.summary.upgradable and result.summary.blocked
    assert result.summary.meters_by_step_count[0][0] == 0


async def test_at_most_fifty_thousand_items_a_call(synthetic):
    db, cpl = synthetic
    device = cpl.devices[0]
    item = by_id(device.device_id, device.firmware_versions[0], 2)
    with pytest.raises(ValueError, match="at most 50,000 items"):
        await db.run(await db.snapshot(), [item] * (MAX_FLEET_ITEMS + 1))
    assert db.statements == []
    result = await db.run(await db.snapshot(), [item] * MAX_FLEET_ITEMS)
    assert len(result.entries) == MAX_FLEET_ITEMS
    assert result.summary.meters == 2 * MAX_FLEET_ITEMS
    assert len({id(e.plan) for e in result.entries}) == 1


async def test_lookups_by_identifiers_and_ids(small):
    request = RequestSession(small.sessions)
    try:
        found = await device_ids_by_key(
            request, [("0a1b", " 1234", "0200"), ("0A1B", "9ABC", "0100"), ("0A1B", "9ABC", "0200")]
        )
        assert found == {("0A1B", "1234", "0200"): 2, ("0A1B", "9ABC", "0100"): 4}
        assert await device_ids_by_key(request, []) == {}
    finally:
        await request.close()
    snapshot = await small.snapshot()
    assert snapshot.revision == 0
    assert snapshot.graph(5) is None  # not a device
    assert snapshot.graph(2).latest() is None  # a device without firmware: an empty graph
    assert snapshot.graph(3).latest() is None  # only WITHDRAWN firmware: no target
