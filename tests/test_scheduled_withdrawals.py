"""Notice before a withdrawal: `effectiveOn` announces it at once (with each owner's fleet
impact), plans may use it until its day and say so, and on its day it is applied once, by
whichever process claims it first (two processes on PostgreSQL). The clock is the unit of
work's, set by the test; nothing sleeps."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlmodel import col, select

from models.notice import FleetImpact, ScheduledWithdrawal
from models.tables import AuditEvent
from resolvers.writes.withdrawals import apply_due
from tests.harness import BACKEND
from tests.live import ROOT
from tests.test_fleet_impact import FLEET, OWNER
from tests.test_stored_fleets import replace

WITHDRAW_PATHWAY = """mutation($id: ID!, $on: Date) { withdrawUpgradePathway(input: {
  pathwayId: $id, reason: "Bricks meters", effectiveOn: $on }) { __typename
  ... on WithdrawUpgradePathwaySuccess { pathway { status withdrawalScheduledOn } }
  ... on MutationError { code field message } } }"""
WITHDRAW_FIRMWARE = """mutation($id: ID!, $on: Date) { withdrawFirmware(input: {
  firmwareId: $id, reason: "Faulty", effectiveOn: $on }) { __typename
  ... on WithdrawFirmwareSuccess { firmware { status withdrawalScheduledOn } } } }"""
PLAN = """{ upgradePath(deviceId: "device:1", fromVersion: "7F000000") { reachable
  steps { id withdrawalScheduledOn } target { version withdrawalScheduledOn }
  withdrawalsScheduled { effectiveOn pathway { id } firmware { version } } } }"""


def today() -> date:
    return datetime.now(UTC).date()


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


async def events(isolated) -> list[tuple[str, int | None, str]]:
    async with isolated.services.db_sessions() as session:
        rows = await session.exec(
            select(AuditEvent.action, AuditEvent.pathway_id, AuditEvent.actor_party_id)
            .where(col(AuditEvent.action) != "DEVICE_ADDED")
            .order_by(col(AuditEvent.id))
        )
        return list(rows.all())


async def impacts(isolated) -> list[tuple[str, int, int, int]]:
    async with isolated.services.db_sessions() as session:
        rows = await session.exec(
            select(FleetImpact, AuditEvent.action)
            .join(AuditEvent, col(AuditEvent.id) == col(FleetImpact.event_id))
            .order_by(col(FleetImpact.id))
        )
        return [
            (action, i.affected_meters, i.newly_blocked_meters, i.newly_upgradable_meters)
            for i, action in rows.all()
        ]


async def test_announced_usable_until_its_day_then_applied_once(isolated) -> None:
    await replace(isolated, FLEET, OWNER)
    tomorrow = today() + timedelta(days=1)
    past = await isolated.gql(
        "SECAS", WITHDRAW_PATHWAY, {"id": "pathway:2", "on": str(today() - timedelta(days=1))}
    )
    assert past["data"] == {"withdrawUpgradePathway": None}
    assert past["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await events(isolated) == []  # nothing written
    body = await isolated.gql("SECAS", WITHDRAW_PATHWAY, {"id": "pathway:2", "on": str(tomorrow)})
    result = body["data"]["withdrawUpgradePathway"]
    assert result["pathway"] == {"status": "PUBLISHED", "withdrawalScheduledOn": str(tomorrow)}
    again = await isolated.gql("SECAS", WITHDRAW_PATHWAY, {"id": "pathway:2", "on": str(tomorrow)})
    assert again["data"]["withdrawUpgradePathway"]["code"] == "CONFLICT"
    # Plans still use it, and say so.
    plan = (await isolated.gql("SMALL_SUPPLIER", PLAN))["data"]["upgradePath"]
    assert [step["id"] for step in plan["steps"]] == ["pathway:1", "pathway:2"]
    assert plan["steps"][1]["withdrawalScheduledOn"] == str(tomorrow)
    assert plan["withdrawalsScheduled"] == [
        {"effectiveOn": str(tomorrow), "pathway": {"id": "pathway:2"}, "firmware": None}
    ]
    announced = [("PATHWAY_WITHDRAWAL_SCHEDULED", 2, "DEV-SECAS")]
    assert await events(isolated) == announced
    writes, sessions = isolated.services.writes, isolated.services.db_sessions
    assert await apply_due(writes, sessions) == 0  # not today
    writes.clock = lambda: midnight(tomorrow) - timedelta(microseconds=1)
    assert await apply_due(writes, sessions) == 0  # nor a moment before its day
    writes.clock = lambda: midnight(tomorrow)
    assert await apply_due(writes, sessions) == 1
    assert await apply_due(writes, sessions) == 0  # once
    assert await events(isolated) == [*announced, ("PATHWAY_WITHDRAWN", 2, "DEV-SECAS")]
    plan = (await isolated.gql("SMALL_SUPPLIER", PLAN))["data"]["upgradePath"]
    assert [step["id"] for step in plan["steps"]] == ["pathway:3", "pathway:4"]
    assert plan["withdrawalsScheduled"] == []
    # The owner heard the same numbers when it was announced as when it took effect.
    numbers = (1000, 0, 0)
    assert await impacts(isolated) == [
        ("PATHWAY_WITHDRAWAL_SCHEDULED", *numbers),
        ("PATHWAY_WITHDRAWN", *numbers),
    ]


async def test_withdrawing_now_ends_the_schedule(isolated) -> None:
    firmware = "firmware:3"  # device 1's 6D000200
    tomorrow = str(today() + timedelta(days=2))
    body = await isolated.gql("SECAS", WITHDRAW_FIRMWARE, {"id": firmware, "on": tomorrow})
    assert body["data"]["withdrawFirmware"]["firmware"]["withdrawalScheduledOn"] == tomorrow
    body = await isolated.gql("SECAS", WITHDRAW_FIRMWARE, {"id": firmware, "on": str(today())})
    assert body["data"]["withdrawFirmware"]["firmware"] == {
        "status": "WITHDRAWN",
        "withdrawalScheduledOn": None,
    }
    writes = isolated.services.writes
    writes.clock = lambda: midnight(today() + timedelta(days=3))
    assert await apply_due(writes, isolated.services.db_sessions) == 0
    kinds = [kind for kind, _, _ in await events(isolated)]
    assert kinds == ["FIRMWARE_WITHDRAWAL_SCHEDULED", "FIRMWARE_WITHDRAWN"]


@pytest.mark.skipif(BACKEND != "postgresql", reason="two processes share a PostgreSQL database")
async def test_two_processes_apply_each_due_withdrawal_once(isolated) -> None:
    day = today() + timedelta(days=1)
    for variables in ({"id": "pathway:2"}, {"id": "pathway:5"}):
        body = await isolated.gql("SECAS", WITHDRAW_PATHWAY, variables | {"on": str(day)})
        assert "Success" in body["data"]["withdrawUpgradePathway"]["__typename"]
    body = await isolated.gql("SECAS", WITHDRAW_FIRMWARE, {"id": "firmware:3", "on": str(day)})
    assert body["data"]["withdrawFirmware"]["firmware"]["status"] == "ACTIVE"
    url = isolated.services.settings.database_url
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.apply_due",
            url,
            day.isoformat(),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = [await asyncio.wait_for(p.communicate(), 60) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert sum(int(out.decode()) for out, _ in outputs) == 3
    kinds = [kind for kind, _, _ in await events(isolated)]
    assert sorted(kinds[3:]) == ["FIRMWARE_WITHDRAWN", "PATHWAY_WITHDRAWN", "PATHWAY_WITHDRAWN"]
    async with isolated.services.db_sessions() as session:
        pending = (
            await session.exec(
                select(ScheduledWithdrawal).where(col(ScheduledWithdrawal.applied_at).is_(None))
            )
        ).all()
    assert pending == []
