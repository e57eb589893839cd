"""The DIGEST webhook kind: once a day, from `CPL_DIGEST_HOUR_UTC`, a webhook registered for it
gets its Party's `FleetDigest` since its previous digest, signed and sent by the dispatcher to a
real receiver; nothing when nothing changed; claimed once by two schedulers at once (separate
connections, both backends) and by two processes (PostgreSQL); another Supplier's digest holds
nothing of the owner's fleet. The clock is the unit of work's (the scheduler's) and the
dispatcher's, set here; nothing sleeps."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from models.notice import WebhookDigest
from models.tables import Webhook, WebhookDelivery
from notifications.dispatcher import Dispatcher
from notifications.scheduler import Scheduler
from tests.harness import BACKEND
from tests.live import ROOT, free_port
from tests.test_fleet_digest import DIGEST as DIGEST_QUERY
from tests.test_fleet_digest import LONG_AGO, changed
from tests.test_fleet_impact import NEIGHBOUR, OWNER, PUBLISH, D, E
from tests.test_webhook_delivery import FAST, Receiver, serving
from tests.webhook_receiver import verify_signature

REGISTER = """mutation($input: RegisterWebhookInput!) { registerWebhook(input: $input) {
  __typename ... on RegisterWebhookSuccess { secret webhook { id kinds } } } }"""
DELIVERIES = "{ webhookDeliveries(first: 10) { nodes { eventId kind status } } }"
HOUR = 6


async def register(isolated, party: str, category: str, kinds: list[str]) -> dict:
    variables = {"input": {"url": "https://93.184.216.34/hook", "kinds": kinds}}
    body = await isolated.gql(category, REGISTER, variables, party_id=party)
    return body["data"]["registerWebhook"]


async def digests(isolated) -> list[tuple[int, object, bool]]:
    async with isolated.services.db_sessions() as session:
        rows = await session.exec(
            select(WebhookDigest.webhook_id, WebhookDigest.day, WebhookDigest.body).order_by(
                col(WebhookDigest.day), col(WebhookDigest.webhook_id)
            )
        )
        return [(hook, day, body is not None) for hook, day, body in rows.all()]


def at(day, hour: int = HOUR, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


async def test_a_digest_a_day_once_signed_and_nothing_when_nothing_changed(isolated) -> None:
    owner = await register(isolated, OWNER, "LARGE_SUPPLIER", ["DIGEST"])
    neighbour = await register(isolated, NEIGHBOUR, "SMALL_SUPPLIER", ["DIGEST"])
    assert owner["webhook"]["kinds"] == ["DIGEST"]
    await register(isolated, OWNER, "LARGE_SUPPLIER", ["PATHWAY_WITHDRAWN"])  # no digest
    await changed(isolated)  # two changes touch the owner's fleet, none the neighbour's
    expected = (await isolated.gql("LARGE_SUPPLIER", DIGEST_QUERY, {"since": LONG_AGO},
                                   party_id=OWNER))["data"]["fleetDigest"]  # fmt: skip
    receiver = Receiver(free_port())
    async with isolated.services.db_sessions() as session:
        await session.exec(update(Webhook).values(url=receiver.url))
        await session.commit()
    writes = isolated.services.writes
    sessions = isolated.services.db_sessions
    one, two = Scheduler(writes, sessions, 60, HOUR), Scheduler(writes, sessions, 60, HOUR)
    day = datetime.now(UTC).date() + timedelta(days=1)

    writes.clock = lambda: at(day, HOUR - 1, 59)  # before the hour: nothing yet
    assert await one.send_digests() == 0 and await digests(isolated) == []
    writes.clock = lambda: at(day, HOUR, 5)
    # Two schedulers at once: each webhook's day is claimed by one of them only.
    assert sum(await asyncio.gather(one.send_digests(), two.send_digests())) == 2
    assert sum(await asyncio.gather(one.send_digests(), two.send_digests())) == 0
    owner_id, neighbour_id = (int(h["webhook"]["id"].split(":")[1]) for h in (owner, neighbour))
    assert await digests(isolated) == [(owner_id, day, True), (neighbour_id, day, False)]

    async with serving(receiver):
        worker = Dispatcher(
            sessions, replace(FAST, block_private_webhooks=False), clock=writes.clock
        )
        try:
            # The digest, and the other webhook's own PATHWAY_WITHDRAWN: a DIGEST webhook
            # gets no delivery per event.
            assert await worker.run_once() == 2
        finally:
            await worker.stop()
    (hit,) = [h for h in receiver.hits if "x-cpl-digest-id" in h.headers]
    assert "x-cpl-event-id" not in hit.headers
    assert hit.headers["x-cpl-digest-id"].startswith("digest:")
    stamp = int(at(day, HOUR, 5).timestamp())
    assert verify_signature(owner["secret"], hit.body, hit.headers["x-cpl-signature"], now=stamp)
    body = json.loads(hit.body)
    assert body["kind"] == "DIGEST"
    assert [c["eventId"] for c in body["changes"]] == [c["eventId"] for c in expected["changes"]]
    assert [c["fleetImpact"] for c in body["changes"]] == [
        c["fleetImpact"] for c in expected["changes"]
    ]
    assert body["impact"] == expected["impact"]
    listed = await isolated.gql("LARGE_SUPPLIER", DELIVERIES, party_id=OWNER)
    assert {"eventId": hit.headers["x-cpl-digest-id"], "kind": "DIGEST", "status": "DELIVERED"} in (
        listed["data"]["webhookDeliveries"]["nodes"]
    )
    # The neighbour, whose fleet no change touched, was sent nothing, and sees nothing of it.
    theirs = await isolated.gql("SMALL_SUPPLIER", DELIVERIES, party_id=NEIGHBOUR)
    assert theirs["data"]["webhookDeliveries"]["nodes"] == []

    # The next day nothing changed: its day is claimed, nothing is sent.
    writes.clock = lambda: at(day + timedelta(days=1), 23, 0)
    assert await one.send_digests() == 2
    async with sessions() as session:
        count = (await session.exec(select(WebhookDelivery.id).where(
            col(WebhookDelivery.digest_id).is_not(None)))).all()  # fmt: skip
    assert len(count) == 1
    # A change later: the third day's digest holds it alone, since the first digest.
    published = await isolated.gql("SECAS", PUBLISH, {"from": D, "to": E})  # unblocks meters
    assert "Success" in str(published)
    writes.clock = lambda: at(day + timedelta(days=2), HOUR)
    assert await one.send_digests() == 2
    async with sessions() as session:
        latest = (await session.exec(select(WebhookDigest).where(
            col(WebhookDigest.webhook_id) == owner_id).order_by(col(WebhookDigest.day).desc())
        )).first()  # fmt: skip
    assert latest is not None and latest.body is not None
    assert [c["kind"] for c in latest.body["changes"]] == ["PATHWAY_PUBLISHED"]
    assert latest.body["since"] == at(day, HOUR, 5).isoformat()
    assert latest.body["impact"] == latest.body["changes"][0]["fleetImpact"]


@pytest.mark.skipif(BACKEND != "postgresql", reason="two processes share a PostgreSQL database")
async def test_two_processes_send_each_webhooks_digest_once(isolated) -> None:
    hooks = [await register(isolated, OWNER, "LARGE_SUPPLIER", ["DIGEST"]) for _ in range(6)]
    await changed(isolated)
    moment = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    url = isolated.services.settings.database_url
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.send_digests",
            url,
            moment,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = [await asyncio.wait_for(p.communicate(), 60) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert sum(int(out.decode()) for out, _ in outputs) == len(hooks)
    async with isolated.services.db_sessions() as session:
        sent = (
            await session.exec(
                select(WebhookDelivery.webhook_id).where(
                    col(WebhookDelivery.digest_id).is_not(None)
                )
            )
        ).all()
    assert sorted(sent) == sorted(int(h["webhook"]["id"].split(":")[1]) for h in hooks)
