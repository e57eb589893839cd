"""Webhooks through the API: any Party registers its own, sees and deletes only its own, and
gets signed deliveries of public fields only, with every attempt queryable."""

from __future__ import annotations

import asyncio
import json

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import CATEGORIES
from tests.live import DEADLINE, eventually, free_port, serve
from tests.webhook_receiver import verify_signature

REGISTER = """mutation($input: RegisterWebhookInput!) { registerWebhook(input: $input) {
  __typename ... on RegisterWebhookSuccess { secret webhook { id url deviceIds kinds } }
  ... on MutationError { code message field } } }"""
DELETE = """mutation($id: ID!) { deleteWebhook(input: { id: $id }) { __typename
  ... on MutationError { code field } } }"""
LIST = "{ webhooks { id url } }"
DELIVERIES = """query($id: ID) { webhookDeliveries(webhookId: $id) { totalCount nodes {
  eventId kind status attempts lastStatusCode deliveredAt webhook { id } } } }"""


@pytest.mark.parametrize("category", CATEGORIES)
async def test_every_party_registers_sees_and_deletes_only_its_own(isolated, category):
    url = "https://93.184.216.34/cpl-hooks"
    mine = await isolated.gql(category, REGISTER, {"input": {"url": url}}, party_id=f"P-{category}")
    result = mine["data"]["registerWebhook"]
    assert result["__typename"] == "RegisterWebhookSuccess"
    assert result["secret"].startswith("whsec_") and len(result["secret"]) > 30
    webhook_id = result["webhook"]["id"]
    listed = await isolated.gql(category, LIST, party_id=f"P-{category}")
    assert {"id": webhook_id, "url": url} in listed["data"]["webhooks"]
    assert "secret" not in json.dumps(listed)
    others = await isolated.gql("SMALL_SUPPLIER", LIST, party_id="P-someone-else")
    assert webhook_id not in str(others)
    stolen = await isolated.gql("SMALL_SUPPLIER", DELETE, {"id": webhook_id}, party_id="P-thief")
    assert stolen["data"]["deleteWebhook"] == {"__typename": "NotFoundError", "code": "NOT_FOUND",
                                               "field": "id"}  # fmt: skip
    deleted = await isolated.gql(category, DELETE, {"id": webhook_id}, party_id=f"P-{category}")
    assert deleted["data"]["deleteWebhook"]["__typename"] == "DeleteWebhookSuccess"
    listed = await isolated.gql(category, LIST, party_id=f"P-{category}")
    assert webhook_id not in str(listed)


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("http://93.184.216.34/hook", "url"),
        ("ftp://93.184.216.34/hook", "url"),
        ("https://user:pw@93.184.216.34/hook", "url"),
        ("not a url", "url"),
    ],
)
async def test_bad_urls_are_refused(isolated, url, field):
    body = await isolated.gql("LARGE_SUPPLIER", REGISTER, {"input": {"url": url}})
    result = body["data"]["registerWebhook"]
    assert (result["code"], result["field"]) == ("VALIDATION", field)


async def test_unknown_device_is_refused(isolated):
    body = await isolated.gql(
        "LARGE_SUPPLIER",
        REGISTER,
        {"input": {"url": "https://93.184.216.34/h", "deviceIds": ["device:1", "device:999"]}},
    )
    assert body["data"]["registerWebhook"]["code"] == "NOT_FOUND"


async def test_signed_delivery_of_public_fields_end_to_end(isolated, token):
    received: list[tuple[bytes, dict]] = []
    arrived = asyncio.Event()

    async def hook(request: Request) -> Response:
        received.append((await request.body(), dict(request.headers)))
        arrived.set()
        return Response(status_code=204)

    receiver = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    port = free_port()
    async with serve(receiver, port), serve(isolated.app):
        registered = await isolated.gql(
            "SMALL_SUPPLIER",
            REGISTER,
            {
                "input": {
                    "url": f"http://127.0.0.1:{port}/hook",
                    "deviceIds": ["device:8"],
                    "kinds": ["ZIGBEE_INFORMATION_CHANGED"],
                }
            },
            party_id="P-hooked",
        )
        success = registered["data"]["registerWebhook"]
        assert success["webhook"]["deviceIds"] == ["device:8"]
        await isolated.gql(
            "SECAS",
            """mutation { setZigbeeInformation(input: { deviceId: "device:8",
               zigbeeChipsetVendor: "Mirefield Devices", reason: "Mirefield swap" }) {
               __typename } }""",
        )
        await asyncio.wait_for(arrived.wait(), DEADLINE)
        body, headers = received[0]
        assert verify_signature(success["secret"], body, headers["x-cpl-signature"])
        assert not verify_signature(success["secret"], body + b" ", headers["x-cpl-signature"])
        # The secret registerWebhook showed is one the Standard Webhooks library reads too.
        assert Webhook(success["secret"]).verify(body, headers) == json.loads(body)
        with pytest.raises(WebhookVerificationError):
            Webhook(success["secret"]).verify(body + b" ", headers)
        payload = json.loads(body)
        assert payload["kind"] == "ZIGBEE_INFORMATION_CHANGED"
        assert payload["device"]["id"] == "device:8"
        assert set(payload["device"]) == {
            "id", "manufacturerIdentifier", "modelIdentifier", "hardwareVersion", "deviceType",
            "zigbeeBand",
        }  # fmt: skip
        assert payload["reason"] is None and "Mirefield" not in body.decode()
        assert payload["firmware"] is None and payload["pathway"] is None

        async def delivered() -> dict:
            found = await isolated.gql(
                "SMALL_SUPPLIER", DELIVERIES, {"id": success["webhook"]["id"]}, party_id="P-hooked"
            )
            nodes = found["data"]["webhookDeliveries"]["nodes"]
            return found if nodes and nodes[0]["status"] == "DELIVERED" else {}

        deliveries = await eventually(delivered, "the delivery recorded as DELIVERED", every=0.1)
        nodes = deliveries["data"]["webhookDeliveries"]["nodes"]
        assert deliveries["data"]["webhookDeliveries"]["totalCount"] == 1
        node = nodes[0]
        assert (node["status"], node["attempts"], node["lastStatusCode"]) == ("DELIVERED", 1, 204)
        assert node["eventId"] == payload["eventId"] and node["kind"] == payload["kind"]
        others = await isolated.gql("SMALL_SUPPLIER", DELIVERIES, party_id="P-not-hooked")
        assert others["data"]["webhookDeliveries"]["totalCount"] == 0


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"deviceIds": []}, "deviceIds"),
        ({"kinds": []}, "kinds"),
        ({"deviceIds": [f"device:{i}" for i in range(1, 1002)]}, "deviceIds"),
    ],
)
async def test_empty_or_huge_filters_are_refused(isolated, extra, field):
    body = await isolated.gql(
        "LARGE_SUPPLIER", REGISTER, {"input": {"url": "https://93.184.216.34/h", **extra}}
    )
    result = body["data"]["registerWebhook"]
    assert (result["code"], result["field"]) == ("VALIDATION", field)
