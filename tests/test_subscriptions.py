"""`cplChanges` over real WebSockets: one event per committed change, after commit, with the
field policy applied per subscriber, and the token checked at connection_init."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import text
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.harness import log_unreachable
from tests.live import DEADLINE, subscribe

CHANGES = """subscription($devices: [ID!], $kinds: [ChangeKind!]) {
  cplChanges(deviceIds: $devices, kinds: $kinds) {
    eventId kind reason occurredAt
    device { id zigbeeBand zigbeeChipsetVendor zigbeeStackVersion }
    firmware { version }
    pathway { revision from { version } to { version } }
  }
}"""
ZIGBEE = """mutation($input: SetZigbeeInformationInput!) { setZigbeeInformation(input: $input) {
  __typename } }"""
PUBLISH = """mutation($input: PublishUpgradePathwayInput!) { publishUpgradePathway(input: $input) {
  __typename ... on MutationError { code } } }"""


ADD = """mutation($input: AddFirmwareInput!) { addFirmware(input: $input) { __typename } }"""


def bus(isolated):
    return isolated.services.bus


def event_of(message: dict) -> dict:
    return message["payload"]["data"]["cplChanges"]


def is_firmware(version: str):
    """Whether a message is the event of firmware `version`'s addition (a marker's)."""
    return lambda message: (event_of(message).get("firmware") or {}).get("version") == version


async def test_events_carry_the_field_policy_per_subscriber(live, isolated, token):
    secret = {"zigbeeChipsetVendor": "Glimmerfield Radio", "zigbeeStackVersion": "ZB-X 9"}
    async with (
        subscribe(live, token("SMALL_SUPPLIER"), CHANGES, bus=bus(isolated)) as supplier,
        subscribe(live, token("SSC"), CHANGES, bus=bus(isolated)) as ssc,
    ):
        body = await isolated.gql(
            "MANUFACTURER",
            ZIGBEE,
            {"input": {"deviceId": "device:2", "reason": "Glimmerfield Radio module", **secret}},
        )
        assert body["data"]["setZigbeeInformation"]["__typename"] == "SetZigbeeInformationSuccess"
        seen = await supplier.next()
        assert seen["type"] == "next"
        change = seen["payload"]["data"]["cplChanges"]
        assert change["kind"] == "ZIGBEE_INFORMATION_CHANGED"
        assert change["device"]["id"] == "device:2" and change["device"]["zigbeeBand"]
        assert change["device"]["zigbeeChipsetVendor"] is None
        assert change["reason"] is None
        assert "Glimmerfield" not in str(seen) and "ZB-X 9" not in str(seen)
        assert [e["extensions"]["code"] for e in seen["payload"]["errors"]] == [
            "FORBIDDEN",
            "FORBIDDEN",
        ]
        analyst = (await ssc.next())["payload"]
        assert "errors" not in analyst
        change = analyst["data"]["cplChanges"]
        assert change["device"]["zigbeeChipsetVendor"] == "Glimmerfield Radio"
        assert change["reason"] == "Glimmerfield Radio module"
        # The event's access-log entry was committed before the event was sent.
        logged = "SELECT fields, device_ids FROM ssc_access ORDER BY id DESC LIMIT 1"
        async with isolated.services.engine.connect() as connection:
            row = (await connection.execute(text(logged))).one()
        fields, devices = (json.loads(v) if isinstance(v, str) else v for v in row)
        assert "Device.zigbeeChipsetVendor" in fields and devices == [2]


async def test_an_event_whose_entry_cannot_be_written_is_withheld(live, isolated, token):
    secret = {"zigbeeChipsetVendor": "Glimmerfield Radio", "zigbeeStackVersion": "ZB-X 9"}
    async with (
        subscribe(live, token("SSC"), CHANGES, bus=bus(isolated)) as ssc,
        log_unreachable(isolated),
    ):
        await isolated.gql(
            "MANUFACTURER",
            ZIGBEE,
            {"input": {"deviceId": "device:2", "reason": "module", **secret}},
        )
        withheld = await ssc.next()
    assert withheld["payload"]["data"] is None
    assert [e["extensions"]["code"] for e in withheld["payload"]["errors"]] == [
        "SERVICE_UNAVAILABLE"
    ]
    assert "Glimmerfield" not in str(withheld) and "ZB-X 9" not in str(withheld)


async def test_one_event_per_committed_change_and_none_for_a_failed_one(live, isolated, token):
    async with subscribe(live, token("NETWORK_PARTY"), CHANGES, bus=bus(isolated)) as network:
        refused = await isolated.gql(
            "MANUFACTURER",
            PUBLISH,
            {"input": {"deviceId": "device:1", "fromVersion": "64000300", "toVersion": "7F000000"}},
        )
        assert refused["data"]["publishUpgradePathway"]["code"] == "CONFLICT"
        # Events come in the order of their commits: the next one is the next change's.
        await isolated.gql(
            "MANUFACTURER",
            PUBLISH,
            {"input": {"deviceId": "device:1", "fromVersion": "76000100", "toVersion": "6D000200"}},
        )
        change = (await network.next())["payload"]["data"]["cplChanges"]
        assert change["kind"] == "PATHWAY_PUBLISHED"
        assert change["pathway"] == {
            "revision": 1,
            "from": {"version": "76000100"},
            "to": {"version": "6D000200"},
        }
        # Once: up to a marker change's event, there is nothing else.
        await isolated.gql("SECAS", ADD, {"input": {"deviceId": "device:1", "version": "AB000026"}})
        events = await network.events_until(is_firmware("AB000026"))
        assert [event_of(m)["kind"] for m in events] == ["FIRMWARE_ADDED"]


async def test_filters_by_device_and_kind(live, isolated, token):
    variables = {"devices": ["device:3"], "kinds": ["FIRMWARE_ADDED"]}
    add = ADD
    async with subscribe(
        live, token("LARGE_SUPPLIER"), CHANGES, variables, bus=bus(isolated)
    ) as supplier:
        await isolated.gql("SECAS", add, {"input": {"deviceId": "device:4", "version": "AA000001"}})
        await isolated.gql(
            "SECAS", ZIGBEE, {"input": {"deviceId": "device:3", "zigbeeBand": "DUAL_BAND"}}
        )
        await isolated.gql("SECAS", add, {"input": {"deviceId": "device:3", "version": "AA000002"}})
        change = (await supplier.next())["payload"]["data"]["cplChanges"]
        assert (change["kind"], change["device"]["id"]) == ("FIRMWARE_ADDED", "device:3")
        assert change["firmware"] == {"version": "AA000002"}
        # Nothing else came before a marker change's event (events come in commit order).
        await isolated.gql("SECAS", add, {"input": {"deviceId": "device:3", "version": "AA000003"}})
        assert len(await supplier.events_until(is_firmware("AA000003"))) == 1


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic abc"},
        {"Authorization": 5},  # any JSON may come: a 4403, not a traceback and a dropped socket
        {"Authorization": ["Bearer x"]},
        {"authorization": {"Bearer": "x"}},
        ["Authorization"],  # not an object: graphql-transport-ws's own 4400
    ],
)
async def test_an_invalid_token_closes_the_connection(live, payload):
    async with connect(f"ws://{live}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), DEADLINE)
        assert ws.close_code == (4403 if isinstance(payload, dict) else 4400)


async def test_each_operation_on_one_websocket_reads_afresh(live, isolated, token):
    query = '{ device(id: "device:11") { zigbeeBand } }'
    async with connect(f"ws://{live}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        init = {"Authorization": f"Bearer {token('SMALL_SUPPLIER')}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"

        async def band(operation_id: str) -> str:
            message = {"id": operation_id, "type": "subscribe", "payload": {"query": query}}
            await ws.send(json.dumps(message))
            while True:
                reply = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
                if reply["type"] == "next":
                    return reply["payload"]["data"]["device"]["zigbeeBand"]

        first = await band("1")
        other = "BAND_2_4_GHZ" if first != "BAND_2_4_GHZ" else "DUAL_BAND"
        await isolated.gql(
            "SECAS", ZIGBEE, {"input": {"deviceId": "device:11", "zigbeeBand": other}}
        )
        assert await band("2") == other


@pytest.mark.parametrize("variables", [{"kinds": []}, {"devices": []}, {"devices": ["x"]}])
async def test_empty_or_bad_subscription_filters_are_refused(live, token, variables):
    async with connect(f"ws://{live}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        init = {"Authorization": f"Bearer {token('SMALL_SUPPLIER')}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        payload = {"query": CHANGES, "variables": variables}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
        assert reply["type"] in ("error", "next")
        errors = reply["payload"] if reply["type"] == "error" else reply["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
