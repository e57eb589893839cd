"""Subscriptions are bounded: slots per Party and per process, one execution of an event per
group of subscribers who would get the same answer, and sockets that close cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
from websockets.asyncio.client import ClientConnection, connect

from schema import subscriptions
from schema.subscriptions import SharedEvents, SubscriptionBudget
from tests.harness import count_calls
from tests.live import DEADLINE, eventually
from tests.test_subscriptions import CHANGES, ZIGBEE

SECRET = {"zigbeeChipsetVendor": "Glimmerfield Radio", "zigbeeStackVersion": "ZB-X 9"}


def budget(isolated, per_party: int, most: int) -> None:
    """The isolated server's budgets, as `CPL_MAX_SUBSCRIPTIONS_PER_PARTY` and
    `CPL_MAX_SUBSCRIPTIONS` would set them."""
    settings = replace(
        isolated.services.settings, max_subscriptions_per_party=per_party, max_subscriptions=most
    )
    isolated.services.subscriptions = SubscriptionBudget(settings)


@contextlib.asynccontextmanager
async def socket(address: str, token: str) -> AsyncIterator[ClientConnection]:
    async with connect(f"ws://{address}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))["type"] == "connection_ack"
        yield ws


async def start(ws: ClientConnection, *ids: str, query: str = CHANGES) -> None:
    for operation_id in ids:
        payload = {"query": query, "variables": {}}
        await ws.send(json.dumps({"id": operation_id, "type": "subscribe", "payload": payload}))


async def message(ws: ClientConnection) -> dict:
    while True:
        found = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
        if found["type"] == "ping":
            await ws.send(json.dumps({"type": "pong"}))
            continue
        return found


async def fed(isolated, count: int) -> None:
    """Until the server's bus feeds `count` subscriptions (each listens before a write)."""
    await eventually(
        lambda: isolated.services.bus.subscribers == count, f"{count} subscriptions fed"
    )


async def write(isolated) -> None:
    variables = {"input": {"deviceId": "device:2", "reason": "module", **SECRET}}
    body = await isolated.gql("MANUFACTURER", ZIGBEE, variables)
    assert body["data"]["setZigbeeInformation"]["__typename"] == "SetZigbeeInformationSuccess"


def refused(found: dict, operation_id: str) -> bool:
    return (
        found["type"] == "error"
        and found["id"] == operation_id
        and found["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
    )


async def test_a_party_over_its_budget_is_refused_and_a_freed_slot_is_reused(live, isolated, token):
    budget(isolated, per_party=2, most=3)
    supplier = token("SMALL_SUPPLIER")
    async with socket(live, supplier) as first, socket(live, supplier) as second:
        await start(first, "1", "2")
        await fed(isolated, 2)
        await start(second, "3")  # the same Party on another socket: its budget is shared
        found = await message(second)
        assert refused(found, "3"), found
        assert "2 subscriptions" in found["payload"][0]["message"]
        async with socket(live, token("SSC")) as ssc:
            await start(ssc, "1")
            await fed(isolated, 3)
            await start(ssc, "2")  # the process's budget
            assert refused(await message(ssc), "2")
        await first.send(json.dumps({"id": "1", "type": "complete"}))  # frees its slot
        await fed(isolated, 1)
        await start(second, "4")
        await fed(isolated, 2)
        await write(isolated)
        assert (await message(second))["payload"]["data"]["cplChanges"]["kind"] == (
            "ZIGBEE_INFORMATION_CHANGED"
        )
    assert isolated.services.subscriptions.total == 0  # closed sockets gave theirs back
    async with socket(live, supplier) as again:
        await start(again, "1", "2")
        await fed(isolated, 2)


async def test_one_execution_per_event_and_group_not_per_subscriber(
    live, isolated, token, monkeypatch
):
    executions = count_calls(monkeypatch, subscriptions, "execute_for_group")
    reads = count_calls(monkeypatch, SharedEvents, "_read")
    async with (
        socket(live, token("SMALL_SUPPLIER")) as small,
        socket(live, token("LARGE_SUPPLIER")) as large,
        socket(live, token("SSC", sub="analyst-1")) as one,
        socket(live, token("SSC", sub="analyst-2")) as two,
    ):
        await start(small, *"12345")
        await start(large, *"123")
        await start(one, "1")
        await start(two, "1")
        await fed(isolated, 10)
        await write(isolated)
        for ws, count in ((small, 5), (large, 3)):
            for _ in range(count):
                found = (await message(ws))["payload"]
                assert found["data"]["cplChanges"]["device"]["zigbeeChipsetVendor"] is None
                assert "Glimmerfield" not in str(found)
                assert [e["extensions"]["code"] for e in found["errors"]] == ["FORBIDDEN"] * 2
        for ws in (one, two):
            found = (await message(ws))["payload"]
            vendor = found["data"]["cplChanges"]["device"]["zigbeeChipsetVendor"]
            assert vendor == "Glimmerfield Radio" and "errors" not in found
    # Ten subscribers, two visibilities (every Supplier's, the SSC's): two executions, one read.
    assert executions == [2]
    assert reads == [1]
    # Each SSC subscriber's delivery of the values has an entry of its own, by its own caller.
    assert await isolated.scalar("SELECT COUNT(*) FROM ssc_access") == 2
    assert await isolated.scalar("SELECT COUNT(DISTINCT actor_sub) FROM ssc_access") == 2


async def test_closing_many_sockets_with_live_subscriptions_logs_no_error(
    live, isolated, token, caplog
):
    budget(isolated, per_party=200, most=200)
    caplog.set_level(logging.WARNING)
    async with contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(socket(live, token(category)))
            for category in ["SMALL_SUPPLIER", "SSC", "MANUFACTURER", "SECAS"] * 5
        ]
        for ws in sockets:
            await start(ws, *"12345")
        await fed(isolated, 100)
        await write(isolated)
        for ws in sockets[:2]:
            assert (await message(ws))["type"] == "next"
        # The others close with their events under way.
    await fed(isolated, 0)
    assert isolated.services.subscriptions.total == 0
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


async def test_a_query_is_answered_while_an_event_fans_out_to_200_subscriptions(
    live, isolated, token
):
    budget(isolated, per_party=200, most=200)
    async with contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(socket(live, token("SMALL_SUPPLIER")))
            for _ in range(10)
        ]
        for ws in sockets:
            await start(ws, *(str(n) for n in range(20)))
        await fed(isolated, 200)
        async with httpx.AsyncClient(base_url=f"http://{live}") as client:
            await write(isolated)
            answer = await client.post(
                "/graphql",
                json={"query": "{ viewer { partyId } }"},
                headers={"Authorization": f"Bearer {token('NETWORK_PARTY')}"},
            )
        assert answer.status_code == 200
        assert answer.json() == {"data": {"viewer": {"partyId": "DEV-NETWORK_PARTY"}}}
        kinds = [
            (await message(ws))["payload"]["data"]["cplChanges"]["kind"]
            for ws in sockets
            for _ in range(20)
        ]
        assert kinds == ["ZIGBEE_INFORMATION_CHANGED"] * 200
