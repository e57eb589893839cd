"""Noninterference after a write (`tests/test_noninterference.py` for the reads): the same
writes, in the same order, on twins that differ only in the SSC-only values give every
non-SSC Party the same subscription events, the same mutation answers, the same history and
the same webhook bodies, instants aside; the SSC's events differ."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from tests.live import Subscriber, serve, subscribe
from tests.test_noninterference import HISTORY, PARTIES, party, post
from tests.test_subscriptions import CHANGES
from tests.twins import Twin, observed, twins, webhook_bodies, without_instants

ZIGBEE = """mutation($input: SetZigbeeInformationInput!) { setZigbeeInformation(input: $input) {
  __typename ... on SetZigbeeInformationSuccess { device { id zigbeeBand zigbeeChipsetVendor } }
  ... on MutationError { code message field } } }"""
ADD_FIRMWARE = """mutation($input: AddFirmwareInput!) { addFirmware(input: $input) {
  __typename ... on AddFirmwareSuccess { firmware { version zigbeeStackVersion predecessors
  upgradesFrom { from { cplEntryId } } device { zigbeeStackVersion } } } } }"""
# The same writes on both twins: one that leaves the SSC-only values as they are (the SSC's
# event shows the twins' different ones), then new values over them (the history's `before`
# differs); a CPL entry with its own stack version, submitted with its predecessor (two events).
WRITES = [
    (ADD_FIRMWARE, {"deviceId": "device:1", "version": "CAFE0001"}),
    (
        ADD_FIRMWARE,
        {
            "deviceId": "device:1",
            "version": "CAFE0002",
            "cplEntryId": "CPL-0001-09",
            "zigbeeStackVersion": "ZB-PRO 2017 r22 p2",
            "upgradableFromEntries": ["CPL-0001-04"],
        },
    ),
    (
        ZIGBEE,
        {
            "deviceId": "device:1",
            "zigbeeChipsetVendor": "Glimmerfield Radio",
            "zigbeeStackVersion": "ZB-X 9",
            "reason": "Glimmerfield Radio module fitted",
        },
    ),
]
CATEGORIES = [*PARTIES, "SSC"]
EVENTS = len(WRITES) + 1  # the submission's pathway is an event of its own


@asynccontextmanager
async def listening(twin: Twin, token, stack: AsyncExitStack) -> AsyncIterator[dict]:
    """A subscriber of every category on a real server of `twin`, listening before it yields."""
    address = await stack.enter_async_context(serve(twin.app))
    bus = twin.services.bus
    if hasattr(bus, "listening"):
        await asyncio.wait_for(bus.listening.wait(), 10)
    subscribers = {}
    for category in CATEGORIES:
        subscribers[category] = await stack.enter_async_context(
            subscribe(address, party(token, category), CHANGES, bus=bus)
        )
    yield subscribers


def heard(message: dict) -> bytes:
    return without_instants(json.dumps(message, sort_keys=True).encode())


async def events(subscriber: Subscriber) -> list[bytes]:
    return [heard(await subscriber.next()) for _ in range(EVENTS)]


async def test_the_same_writes_look_the_same_to_every_party(
    settings, token, template, other_template, tmp_path, spent
) -> None:
    async with (
        twins(settings, tmp_path, (template, other_template), spent) as pair,
        AsyncExitStack() as stack,
    ):
        subscribers = [
            await stack.enter_async_context(listening(twin, token, stack)) for twin in pair
        ]
        maker = party(token, "MANUFACTURER")
        written = [
            [
                observed(await post(query, {"input": values})(twin.client, maker, maker))
                for query, values in WRITES
            ]
            for twin in pair
        ]
        assert b"AddFirmwareSuccess" in written[0][0].body
        assert b"CPL-0001-04" in written[0][1].body
        assert b"SetZigbeeInformationSuccess" in written[0][2].body
        assert written[0] == written[1]

        for category in CATEGORIES:
            demo, other = [await events(side[category]) for side in subscribers]
            assert b'"kind": "FIRMWARE_ADDED"' in demo[0]
            assert (demo == other) == (category != "SSC"), category

        history = post(f'{{ device(id: "device:1") {{ {HISTORY} }} }}')
        for category in CATEGORIES:
            caller = party(token, category)
            demo, other = [observed(await history(twin.client, caller, caller)) for twin in pair]
            assert (demo == other) == (category != "SSC"), category

        demo, other = [await webhook_bodies(twin) for twin in pair]
        assert len(demo) == 12 + EVENTS and demo == other
