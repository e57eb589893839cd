"""Webhook delivery end to end: a real database (SQLite or PostgreSQL), the real dispatcher, and
a real HTTP receiver on loopback (uvicorn serving a small Starlette app), so retries, outages,
restarts and concurrent dispatchers are exercised the way they happen in production."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import event, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from config.settings import Settings, load_settings
from models.database import create_engine, session_factory
from models.demo import STACKS, VENDORS
from models.tables import (
    AuditEvent,
    Device,
    Firmware,
    Manufacturer,
    UpgradePathway,
    Webhook,
    WebhookDelivery,
    WebhookStatus,
)
from notifications import addresses, payloads
from notifications.addresses import AddressRefused, check_url, pinned, public_address
from notifications.dispatcher import Dispatcher
from notifications.outbox import enqueue_many
from notifications.payloads import Field, Section, event_payloads
from notifications.signing import (
    message_id,
    new_secret,
    signature,
    signature_headers,
    standard_key,
)
from permissions.policy import POLICY, Rule, rule_for
from resolvers.writes.validation import MutationFailure
from tests.live import DEADLINE, eventually, free_port
from tests.webhook_receiver import verify_signature

FAST = replace(
    load_settings(),
    allow_insecure_webhooks=True,
    block_private_webhooks=False,
    webhook_retry_schedule=(0.05,),
    webhook_horizon_seconds=60,
    webhook_timeout_seconds=2,
    webhook_poll_seconds=0.2,
)
DEV = replace(FAST, allow_insecure_webhooks=True, block_private_webhooks=False)
PRODUCTION = replace(FAST, allow_insecure_webhooks=False, block_private_webhooks=True)
SSC_ONLY_VALUES = [*VENDORS, *STACKS]


# --- the database ----------------------------------------------------------------------------


@dataclass
class Db:
    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]


@pytest.fixture
async def db(own_database: str) -> AsyncIterator[Db]:
    """The test's own demo database: no webhooks, an empty outbox, no other test's events."""
    engine = create_engine(own_database)
    yield Db(own_database, engine, session_factory(engine))
    await engine.dispose()


async def add_webhook(
    db: Db,
    url: str,
    *,
    device_ids: list[int] | None = None,
    kinds: list[str] | None = None,
    secret: str | None = None,
) -> Webhook:
    webhook = Webhook(
        party_id="supplier-1",
        url=url,
        secret=secret or new_secret(),
        device_ids=device_ids,
        kinds=kinds,
    )
    async with db.sessions() as session, session.begin():
        session.add(webhook)
    return webhook


async def record_event(db: Db, **fields: Any) -> int:
    """Write an audit event and its outbox rows in one transaction, as a mutation does."""
    fields.setdefault("actor_sub", "tester")
    fields.setdefault("actor_party_id", "0A1B")
    fields.setdefault("actor_party_category", "MANUFACTURER")
    async with db.sessions() as session, session.begin():
        audit = AuditEvent(**fields)
        session.add(audit)
        await session.flush()
        await enqueue_many(session, [audit])
    assert audit.id is not None
    return audit.id


async def deliveries(db: Db) -> list[WebhookDelivery]:
    async with db.sessions() as session:
        rows = await session.exec(select(WebhookDelivery).order_by(WebhookDelivery.id))
        return list(rows.all())


async def all_delivered(db: Db) -> bool:
    rows = await deliveries(db)
    return bool(rows) and all(row.status is WebhookStatus.DELIVERED for row in rows)


@dataclass(frozen=True)
class DemoPathway:
    pathway: UpgradePathway
    device: Device
    manufacturer: str
    from_version: str
    to_version: str
    other_device_id: int


@pytest.fixture
async def demo(db: Db) -> DemoPathway:
    async with db.sessions() as session:
        pathway = (
            await session.exec(select(UpgradePathway).order_by(UpgradePathway.id).limit(1))
        ).one()
        device = await session.get(Device, pathway.device_id)
        manufacturer = await session.get(Manufacturer, device.manufacturer_id)
        versions = dict(
            (
                await session.exec(
                    select(Firmware.id, Firmware.version).where(Firmware.device_id == device.id)
                )
            ).all()
        )
        other = (await session.exec(select(Device.id).where(Device.id != device.id).limit(1))).one()
    return DemoPathway(
        pathway,
        device,
        manufacturer.identifier,
        versions[pathway.from_firmware_id],
        versions[pathway.to_firmware_id],
        other,
    )


# --- a real receiver -------------------------------------------------------------------------


@dataclass
class Hit:
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    port: int
    fail_first: int = 0
    fail_status: int = 503
    # Turns of the event loop each request is held for (the receiver is served in the test's own
    # loop), so that the dispatchers' deliveries overlap: turns, not a sleep of a guessed length.
    held_turns: int = 0
    hits: list[Hit] = field(default_factory=list)
    seen: Counter[str] = field(default_factory=Counter)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        event_id = request.headers.get("x-cpl-event-id", "")
        self.seen[event_id] += 1
        for _ in range(self.held_turns):
            await asyncio.sleep(0)
        status = self.fail_status if self.seen[event_id] <= self.fail_first else 200
        self.hits.append(Hit(dict(request.headers), body, status))
        return Response("ok" if status == 200 else "busy", status_code=status)

    def delivered(self) -> list[Hit]:
        return [hit for hit in self.hits if hit.status == 200]


@asynccontextmanager
async def serving(receiver: Receiver) -> AsyncIterator[Receiver]:
    app = Starlette(routes=[Route("/hook", receiver.handle, methods=["POST"])])
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=receiver.port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started or task.done(), "the receiver starting")
    assert server.started, "the receiver did not start"
    try:
        yield receiver
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, DEADLINE)


@asynccontextmanager
async def dispatcher(db: Db, settings: Settings = FAST, **kwargs: Any) -> AsyncIterator[Dispatcher]:
    worker = Dispatcher(db.sessions, settings, **kwargs)
    try:
        yield worker
    finally:
        await worker.stop()


# --- signatures ------------------------------------------------------------------------------


def test_signature_round_trip_and_tampering() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(secret) > 40 and secret != new_secret()
    body = b'{"eventId":"event:1"}'
    now = int(time.time())
    header = signature(secret, body, now)
    expected = hmac.new(secret.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    assert header == f"t={now},v1={expected}"
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", header)

    assert verify_signature(secret, body, header)
    assert verify_signature(secret, body, header, now=now + 299)
    assert not verify_signature(secret, body + b" ", header)
    assert not verify_signature(secret, body.replace(b"1", b"2"), header)
    assert not verify_signature(new_secret(), body, header)
    assert not verify_signature(secret, body, header, now=now + 301)
    assert not verify_signature(secret, body, signature(secret, body, now - 3600))
    assert not verify_signature(secret, body, header.replace(f"t={now}", f"t={now + 1}"))
    assert not verify_signature(secret, body, f"t={now}")
    assert not verify_signature(secret, body, "garbage")
    assert not verify_signature(secret, body, f"t=soon,v1={expected}")
    # A second v1 (as during a secret rotation) does not stop the right one from matching.
    assert verify_signature(secret, body, f"t={now},v1={'0' * 64},v1={expected}")


def test_new_secrets_are_standard_webhooks_secrets() -> None:
    """`whsec_` and the standard base64 of 32 random bytes, with its padding: what Standard
    Webhooks libraries decode strictly, not only the lenient Python one."""
    secret = new_secret()
    encoded = secret.removeprefix("whsec_")
    assert re.fullmatch(r"[A-Za-z0-9+/]{43}=", encoded)
    assert len(base64.b64decode(encoded, validate=True)) == 32
    assert standard_key(secret) == base64.b64decode(encoded)


def test_secrets_issued_before_the_standard_headers() -> None:
    """URL-safe base64 of 32 bytes: the ones the official library can decode are signed with
    the key it decodes; for the others it cannot be built at all, and no webhook-signature is
    sent (X-CPL-Signature is unchanged for every secret)."""
    # 43 URL-safe characters, as secrets.token_urlsafe(32) gave; the library skips - and _.
    decodable = "whsec_" + "Zm9v" * 10 + "ab_"  # 42 characters remain: 31 bytes
    undecodable = "whsec_" + "Zm9v" * 10 + "a-_"  # 41 remain: not base64 of anything
    body, now = b'{"eventId":"event:1"}', int(time.time())
    headers = signature_headers(decodable, body, now, message_id(1, 2))
    assert StandardWebhook(decodable).verify(body, headers) == {"eventId": "event:1"}
    assert verify_signature(decodable, body, headers["X-CPL-Signature"])

    headers = signature_headers(undecodable, body, now, message_id(1, 2))
    assert "webhook-signature" not in headers
    assert headers["webhook-id"] == "msg_event1_webhook2"
    assert verify_signature(undecodable, body, headers["X-CPL-Signature"])
    with pytest.raises(binascii.Error):
        StandardWebhook(undecodable)


# --- URLs ------------------------------------------------------------------------------------

ALLOWED = [
    ("https://93.184.216.34/hook", PRODUCTION, "https://93.184.216.34/hook"),
    ("https://93.184.216.34/hook", DEV, "https://93.184.216.34/hook"),
    ("HTTPS://93.184.216.34:8443?x=1#frag", PRODUCTION, "https://93.184.216.34:8443/?x=1"),
    ("https://[2606:2800:220:1:248:1893:25c8:1946]/h", PRODUCTION, None),
    ("http://127.0.0.1:9/x", DEV, "http://127.0.0.1:9/x"),
    ("http://localhost:9/x", DEV, "http://localhost:9/x"),
    ("http://[::1]:9/x", DEV, "http://[::1]:9/x"),
    ("https://10.0.0.1/x", DEV, "https://10.0.0.1/x"),
]

REFUSED = [
    ("http://127.0.0.1:9/x", replace(DEV, allow_insecure_webhooks=False)),
    ("http://127.0.0.1:9/x", PRODUCTION),
    ("http://93.184.216.34/x", DEV),
    ("http://93.184.216.34/x", PRODUCTION),
    ("http://127.0.0.1.example.com/x", DEV),
    ("ftp://93.184.216.34/x", DEV),
    ("file:///etc/passwd", DEV),
    ("https://user:secret@93.184.216.34/x", DEV),
    ("https://user@93.184.216.34/x", PRODUCTION),
    ("https:///no-host", DEV),
    ("https://93.184.216.34/" + "a" * 2000, DEV),
    ("https://93.184.216.34/a b", DEV),
    ("https://93.184.216.34:99999/", DEV),
    ("", DEV),
    *(
        (f"https://{host}/x", PRODUCTION)
        for host in [
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "127.0.0.1",
            "0.0.0.0",  # noqa: S104 - refused here, not bound
            "224.0.0.1",
            "240.0.0.1",
            "localhost",
            "[::1]",
            "[::]",
            "[fe80::1]",
            "[fc00::1]",
            "[fd12:3456::1]",
            "[::ffff:10.0.0.1]",
            "[::ffff:127.0.0.1]",
            "[64:ff9b::a00:1]",
            "[2002:a00:1::1]",
            "[ff02::1]",
            # Not globally routable, though Python 3.11's `is_global` says they are:
            "192.0.0.8",
            "192.0.0.170",
            "198.18.0.1",
            "192.0.2.1",
            "[2001:db8::1]",
            "[2001:2::1]",
        ]
    ),
]


@pytest.mark.parametrize(("url", "settings", "normalised"), ALLOWED)
async def test_check_url_accepts(url: str, settings: Settings, normalised: str | None) -> None:
    result = await check_url(url, settings)
    assert result == (normalised or url)


@pytest.mark.parametrize(("url", "settings"), REFUSED)
async def test_check_url_refuses(url: str, settings: Settings) -> None:
    with pytest.raises(MutationFailure) as failure:
        await check_url(url, settings)
    assert failure.value.code == "VALIDATION"
    assert failure.value.field == "url"
    assert "secret" not in failure.value.message
    if url:
        assert url not in failure.value.message


async def test_delivery_connects_to_the_address_it_checked(
    db: Db, demo: DemoPathway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name is resolved once, checked, and the connection goes to that very
    address. `.invalid` names never resolve, so a second lookup by the HTTP client would fail;
    loopback stands in for the public receiver, the name's one checked address."""
    lookups: list[str] = []

    async def resolve(host: str, port: int) -> list[Any]:
        lookups.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    monkeypatch.setattr(addresses, "_resolve", resolve)
    monkeypatch.setattr(addresses, "_public", lambda address: address.is_loopback)
    receiver = Receiver(free_port())
    await add_webhook(db, f"http://receiver.invalid:{receiver.port}/hook")
    await record_event(db, action="PATHWAY_PUBLISHED", device_id=demo.device.id)
    async with serving(receiver), dispatcher(db, PRODUCTION) as worker:
        worker.start()
        worker.wake()
        await eventually(lambda: all_delivered(db), "the pinned delivery")
    assert [hit.headers["host"] for hit in receiver.delivered()] == [
        f"receiver.invalid:{receiver.port}"
    ]
    assert lookups == ["receiver.invalid"]


def test_pinned_request_keeps_the_name_for_host_sni_and_certificate() -> None:
    target = pinned("https://hooks.example.com:8443/in?x=1", ipaddress.ip_address("2606:2800::1"))
    assert target.url == "https://[2606:2800::1]:8443/in?x=1"
    assert target.headers == {"Host": "hooks.example.com:8443"}
    assert target.extensions == {"sni_hostname": "hooks.example.com"}


async def test_public_address_is_the_checked_address_or_refused() -> None:
    assert str(await public_address("93.184.216.34")) == "93.184.216.34"
    for host, resolved in [
        ("10.0.0.1", True),
        ("::ffff:192.168.0.1", True),
        ("localhost", True),
        ("no-such-host.invalid", False),
    ]:
        with pytest.raises(AddressRefused) as refused:
            await public_address(host)
        assert refused.value.resolved is resolved


# --- the outbox ------------------------------------------------------------------------------


async def test_enqueue_filters_by_device_and_kind(db: Db, demo: DemoPathway) -> None:
    device, other = demo.device.id, demo.other_device_id
    every = await add_webhook(db, "https://93.184.216.34/every")
    one_device = await add_webhook(db, "https://93.184.216.34/device", device_ids=[device])
    one_kind = await add_webhook(db, "https://93.184.216.34/kind", kinds=["PATHWAY_PUBLISHED"])
    both = await add_webhook(
        db, "https://93.184.216.34/both", device_ids=[other], kinds=["FIRMWARE_ADDED"]
    )

    first = await record_event(
        db, action="PATHWAY_PUBLISHED", device_id=device, pathway_id=demo.pathway.id
    )
    second = await record_event(db, action="FIRMWARE_ADDED", device_id=other)
    third = await record_event(db, action="FIRMWARE_ADDED", device_id=device)

    by_event: dict[int, set[int]] = {}
    for row in await deliveries(db):
        by_event.setdefault(row.event_id, set()).add(row.webhook_id)
        assert row.status is WebhookStatus.PENDING and row.attempts == 0
    assert by_event == {
        first: {every.id, one_device.id, one_kind.id},
        second: {every.id, both.id},
        third: {every.id, one_device.id},
    }


async def test_enqueue_rolls_back_with_the_change(db: Db, demo: DemoPathway) -> None:
    await add_webhook(db, "https://93.184.216.34/every")
    with pytest.raises(LookupError):  # the change fails after the event was queued
        async with db.sessions() as session, session.begin():
            audit = AuditEvent(
                action="DEVICE_ADDED",
                device_id=demo.device.id,
                actor_sub="tester",
                actor_party_id="0A1B",
                actor_party_category="MANUFACTURER",
            )
            session.add(audit)
            await session.flush()
            assert await enqueue_many(session, [audit]) == 1
            raise LookupError("the rest of the mutation failed")
    assert await deliveries(db) == []


async def test_event_payloads_take_one_statement_however_many(db: Db, demo: DemoPathway) -> None:
    ids = [
        await record_event(db, action="FIRMWARE_ADDED", device_id=demo.device.id) for _ in range(12)
    ]
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        statements.append(sql)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with db.sessions() as session:
            one = await event_payloads(session, ids[:1])
            statements_for_one = len(statements)
            many = await event_payloads(session, ids)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert len(one) == 1 and len(many) == 12
    assert statements_for_one == 1 and len(statements) == 2


def test_every_body_field_names_a_field_the_policy_knows() -> None:
    """A misspelt mirror would be "not public" and silently drop a field from every body."""
    sections = [part for part in payloads.BODY if isinstance(part, Section)]
    parts = [*payloads.BODY, *(field for section in sections for field in section.fields)]
    assert len(parts) == 21
    for part in parts:
        for type_name, field_name in part.path:
            rule_for(type_name, field_name)  # raises for a field the table does not know


async def test_a_field_the_policy_does_not_make_public_is_neither_sent_nor_read(
    db: Db, demo: DemoPathway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The body's fields come from the policy table, not from the declaration alone: declaring
    an SSC-only field does not put it in a body, nor even in the statement, until the policy
    makes it public; and a public field the policy restricts leaves the body at once."""
    event_id = await record_event(db, action="FIRMWARE_ADDED", device_id=demo.device.id)
    stack = Field(
        "zigbeeStackVersion", Device.zigbee_stack_version, (("Device", "zigbeeStackVersion"),)
    )
    declared = tuple(
        replace(part, fields=(*part.fields, stack))
        if isinstance(part, Section) and part.key == "device"
        else part
        for part in payloads.BODY
    )
    statements: list[str] = []

    def remember(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        statements.append(sql)

    async def device_body() -> dict[str, Any]:
        statements.clear()
        event.listen(db.engine.sync_engine, "before_cursor_execute", remember)
        try:
            async with db.sessions() as session:
                body = (await event_payloads(session, [event_id]))[event_id]
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", remember)
        assert len(statements) == 1
        return body["device"]

    monkeypatch.setattr(payloads, "BODY", declared)
    assert "zigbeeStackVersion" not in await device_body()
    assert "zigbee_stack_version" not in statements[0]
    # The same declaration once the policy made the field public (a control: it is read then).
    with monkeypatch.context() as public:
        public.setitem(POLICY["Device"], "zigbeeStackVersion", Rule.PUBLIC)
        assert "zigbeeStackVersion" in await device_body()
        assert "zigbee_stack_version" in statements[0]

    monkeypatch.setitem(POLICY["Device"], "zigbeeBand", Rule.SSC_ONLY)
    body = await device_body()
    assert "zigbeeBand" not in body and "zigbee_band" not in statements[0]
    assert list(body) == ["id", "manufacturerIdentifier", "modelIdentifier", "hardwareVersion",
                          "deviceType"]  # fmt: skip


# --- delivery --------------------------------------------------------------------------------


def assert_public_only(body: bytes) -> None:
    text = body.decode()
    for value in SSC_ONLY_VALUES:
        assert value not in text
    assert "zigbeeStackVersion" not in text and "zigbeeChipsetVendor" not in text


async def test_retries_until_delivered_with_exact_signed_bodies(db: Db, demo: DemoPathway) -> None:
    device, pathway = demo.device, demo.pathway
    receiver = Receiver(free_port(), fail_first=2, fail_status=503)
    webhook = await add_webhook(db, receiver.url, device_ids=[device.id])
    occurred = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    corrected = await record_event(
        db,
        action="PATHWAY_CORRECTED",
        device_id=device.id,
        pathway_id=pathway.id,
        occurred_at=occurred,
        reason="Notes had a typo.",
        changes=[{"field": "notes", "before": "teh", "after": "the"}],
    )
    zigbee = await record_event(
        db,
        action="ZIGBEE_INFORMATION_CHANGED",
        device_id=device.id,
        occurred_at=occurred + timedelta(seconds=1),
        reason=f"The chipset is now {VENDORS[2]} on {STACKS[1]}.",
        changes=[
            {"field": "zigbeeChipsetVendor", "before": VENDORS[0], "after": VENDORS[2]},
            {"field": "zigbeeStackVersion", "before": STACKS[0], "after": STACKS[1]},
        ],
    )

    async with serving(receiver), dispatcher(db) as worker:
        worker.start()
        worker.wake()
        await eventually(lambda: all_delivered(db), "both deliveries")

    rows = await deliveries(db)
    assert len(rows) == 2
    for row in rows:
        assert row.status is WebhookStatus.DELIVERED
        assert row.attempts == 3
        assert row.last_status_code == 200 and row.last_error is None
        assert row.delivered_at is not None
    assert len(receiver.hits) == 6

    device_body = {
        "id": f"device:{device.id}",
        "manufacturerIdentifier": demo.manufacturer,
        "modelIdentifier": device.model_identifier,
        "hardwareVersion": device.hardware_version,
        "deviceType": device.device_type.value,
        "zigbeeBand": device.zigbee_band.value if device.zigbee_band else None,
    }
    expected = {
        f"event:{corrected}": {
            "eventId": f"event:{corrected}",
            "kind": "PATHWAY_CORRECTED",
            "occurredAt": "2026-01-02T03:04:05+00:00",
            "reason": "Notes had a typo.",
            "device": device_body,
            "firmware": None,
            "pathway": {
                "id": f"pathway:{pathway.id}",
                "fromVersion": demo.from_version,
                "toVersion": demo.to_version,
                "status": pathway.status.value,
                "revision": pathway.revision,
            },
            "fleetImpact": None,  # the receiver stores no fleet
        },
        f"event:{zigbee}": {
            "eventId": f"event:{zigbee}",
            "kind": "ZIGBEE_INFORMATION_CHANGED",
            "occurredAt": "2026-01-02T03:04:06+00:00",
            "reason": None,
            "device": device_body,
            "firmware": None,
            "pathway": None,
            "fleetImpact": None,
        },
    }
    delivery_ids = {str(row.id) for row in rows}
    for hit in receiver.hits:
        assert_public_only(hit.body)
        assert verify_signature(webhook.secret, hit.body, hit.headers["x-cpl-signature"])
        assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", hit.headers["x-cpl-signature"])
        assert hit.headers["content-type"] == "application/json"
        assert hit.headers["user-agent"] == "cpl-pathways-webhooks"
        assert hit.headers["x-cpl-delivery-id"] in delivery_ids
        payload = json.loads(hit.body)
        assert payload == expected[hit.headers["x-cpl-event-id"]]
        # Compact: the signed bytes are the canonical compact serialisation.
        assert hit.body == json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    delivered = Counter(hit.headers["x-cpl-event-id"] for hit in receiver.delivered())
    assert delivered == Counter(dict.fromkeys(expected, 1))


async def test_standard_webhooks_library_verifies_every_attempt(db: Db, demo: DemoPathway) -> None:
    """Each attempt, first and retry, verifies with the official Standard Webhooks library;
    `webhook-id` is one per event and webhook (the same in a retry, another for another
    webhook), `webhook-timestamp` the attempt's; a changed body or id fails."""
    receiver = Receiver(free_port(), fail_first=2)  # counted per event: both first attempts
    first = await add_webhook(db, receiver.url)
    second = await add_webhook(db, receiver.url)
    event_id = await record_event(db, action="FIRMWARE_ADDED", device_id=demo.device.id)
    async with serving(receiver), dispatcher(db) as worker:
        worker.start()
        worker.wake()
        await eventually(lambda: all_delivered(db), "both deliveries")

    webhooks = {row.id: row.webhook_id for row in await deliveries(db)}
    secrets_by_id = {first.id: first.secret, second.id: second.secret}
    ids: dict[int, set[str]] = {}
    assert len(receiver.hits) == 4  # two webhooks, each answered 503 once, then 200
    assert len(receiver.delivered()) == 2
    for hit in receiver.hits:
        webhook_id = webhooks[int(hit.headers["x-cpl-delivery-id"])]
        standard = StandardWebhook(secrets_by_id[webhook_id])
        assert standard.verify(hit.body, hit.headers) == json.loads(hit.body)
        assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", hit.headers["webhook-signature"])
        assert hit.headers["x-cpl-signature"].startswith(f"t={hit.headers['webhook-timestamp']},")
        ids.setdefault(webhook_id, set()).add(hit.headers["webhook-id"])
        with pytest.raises(WebhookVerificationError):
            standard.verify(hit.body + b" ", hit.headers)
        with pytest.raises(WebhookVerificationError):
            standard.verify(hit.body, {**hit.headers, "webhook-id": "msg_other"})
    assert ids == {
        first.id: {message_id(event_id, first.id)},
        second.id: {message_id(event_id, second.id)},
    }


async def test_demo_device_added_event_keeps_ssc_values_out(db: Db, demo: DemoPathway) -> None:
    """The seed's DEVICE_ADDED events list the SSC-only values among their changes."""
    async with db.sessions() as session:
        seeded = (
            await session.exec(
                select(AuditEvent.id).where(
                    AuditEvent.action == "DEVICE_ADDED", AuditEvent.device_id == demo.device.id
                )
            )
        ).one()
        payloads = await event_payloads(session, [seeded])
    body = json.dumps(payloads[seeded]).encode()
    assert_public_only(body)
    assert payloads[seeded]["reason"] is None


async def test_unreachable_receiver_loses_nothing(db: Db, demo: DemoPathway) -> None:
    receiver = Receiver(free_port())  # nothing listens on this port yet
    await add_webhook(db, receiver.url)
    first = await record_event(db, action="FIRMWARE_ADDED", device_id=demo.device.id)

    shift = [timedelta(0)]  # the dispatcher's clock runs ahead by this: no retry waited for
    async with dispatcher(db, clock=lambda: datetime.now(UTC) + shift[0]) as worker:
        assert await worker.run_once() == 1
        [row] = await deliveries(db)
        assert row.status is WebhookStatus.PENDING
        assert row.attempts == 1
        assert row.last_status_code is None
        assert row.last_error and "ConnectError" in row.last_error
        assert str(receiver.port) not in row.last_error
        assert row.next_attempt_at > row.last_attempt_at

        # An event raised while the receiver is down is not lost either.
        second = await record_event(db, action="FIRMWARE_WITHDRAWN", device_id=demo.device.id)
        shift[0] = timedelta(seconds=1)  # past the first one's retry, 0.05 s (±20 %) after it
        assert await worker.run_once() == 2

        async with serving(receiver):

            async def drained() -> bool:
                await worker.run_once()
                return await all_delivered(db)

            await eventually(drained, "delivery once the receiver is back")

    assert sorted(hit.headers["x-cpl-event-id"] for hit in receiver.hits) == sorted(
        [f"event:{first}", f"event:{second}"]
    )
    for row in await deliveries(db):
        assert row.last_error is None and row.last_status_code == 200


async def test_restarted_dispatcher_resumes_pending(db: Db, demo: DemoPathway) -> None:
    receiver = Receiver(free_port())
    await add_webhook(db, receiver.url)
    await record_event(db, action="PATHWAY_WITHDRAWN", device_id=demo.device.id)

    async with serving(receiver):
        before_restart = Dispatcher(db.sessions, FAST)
        before_restart.start()
        await before_restart.stop()  # stopped before its first pass: the "server" went down
        assert len(receiver.hits) == 0
        assert (await deliveries(db))[0].status is WebhookStatus.PENDING

        async with dispatcher(db) as after_restart:
            after_restart.start()
            await eventually(lambda: all_delivered(db), "the resumed delivery")
    assert len(receiver.hits) == 1


async def test_delivery_claimed_by_a_dead_dispatcher_is_retried_after_its_lease(
    db: Db, demo: DemoPathway
) -> None:
    receiver = Receiver(free_port())
    await add_webhook(db, receiver.url)
    await record_event(db, action="FIRMWARE_ADDED", device_id=demo.device.id)

    async with dispatcher(db) as crashed:
        assert len(await crashed._claim(10)) == 1  # claimed, then the process died
    async with dispatcher(db) as other:
        assert await other.run_once() == 0  # the lease hides it from everyone for a while
    lease = FAST.webhook_timeout_seconds + 31

    def later() -> datetime:
        return datetime.now(UTC) + timedelta(seconds=lease)

    async with serving(receiver), dispatcher(db, clock=later) as after_lease:
        assert await after_lease.run_once() == 1
    assert await all_delivered(db)
    assert len(receiver.hits) == 1


async def test_failing_delivery_fails_at_the_horizon(db: Db, demo: DemoPathway) -> None:
    receiver = Receiver(free_port(), fail_first=1_000, fail_status=500)
    await add_webhook(db, receiver.url)
    await record_event(db, action="FIRMWARE_ADDED", device_id=demo.device.id)

    async with serving(receiver):
        async with dispatcher(db, replace(FAST, webhook_horizon_seconds=0)) as worker:
            assert await worker.run_once() == 1
            [row] = await deliveries(db)
            assert row.status is WebhookStatus.FAILED
            assert row.attempts == 1 and row.last_status_code == 500
            assert row.last_error == "HTTP 500"
            assert await worker.run_once() == 0

        # With a horizon, a delivery whose horizon has passed while retrying fails too.
        await record_event(db, action="FIRMWARE_WITHDRAWN", device_id=demo.device.id)
        async with db.sessions() as session, session.begin():
            await session.exec(
                update(WebhookDelivery)
                .where(WebhookDelivery.status == WebhookStatus.PENDING)
                .values(created_at=datetime.now(UTC) - timedelta(seconds=120))
            )
        async with dispatcher(db) as worker:
            assert await worker.run_once() == 1
    statuses = [row.status for row in await deliveries(db)]
    assert statuses == [WebhookStatus.FAILED, WebhookStatus.FAILED]
    assert len(receiver.hits) == 2


async def test_no_retry_is_scheduled_past_the_horizon(db: Db, demo: DemoPathway) -> None:
    """Whatever the backoff says, no attempt is scheduled after the delivery's horizon: the
    last lands on it, and failing there fails the delivery. Attempts follow the clock of the
    dispatcher (each made at the moment the last one scheduled), so none is waited for."""
    import random

    receiver = Receiver(free_port(), fail_first=1_000, fail_status=500)
    await add_webhook(db, receiver.url)
    await record_event(db, action="FIRMWARE_ADDED", device_id=demo.device.id)
    [row] = await deliveries(db)
    horizon = row.created_at + timedelta(seconds=60)
    settings = replace(FAST, webhook_retry_schedule=(25.0,), webhook_horizon_seconds=60)
    now = [row.created_at]
    scheduled = []
    async with (
        serving(receiver),
        dispatcher(db, settings, clock=lambda: now[0], rng=random.Random(26)) as worker,
    ):
        while await worker.run_once() == 1:
            [row] = await deliveries(db)
            if row.status is not WebhookStatus.PENDING:
                break
            scheduled.append(row.next_attempt_at)
            now[0] = row.next_attempt_at
    # 25 s apart (±20 %): the third retry, due about 75 s after the first attempt, is moved to
    # the horizon at 60 s; the attempt there fails the delivery, and nothing is retried after.
    assert len(scheduled) == 3 and all(at <= horizon for at in scheduled)
    assert scheduled[-1] == horizon
    assert (row.status, row.attempts, len(receiver.hits)) == (WebhookStatus.FAILED, 4, 4)


async def test_backoff_follows_the_schedule_with_jitter() -> None:
    import random

    settings = replace(FAST, webhook_retry_schedule=(1, 5, 30))
    worker = Dispatcher(None, settings, rng=random.Random(7))  # type: ignore[arg-type]
    try:
        for attempts, base in [(1, 1), (2, 5), (3, 30), (4, 30), (9, 30)]:
            delays = [worker.backoff(attempts) for _ in range(50)]
            assert all(0.8 * base <= delay <= 1.2 * base for delay in delays)
            assert len(set(delays)) > 1
    finally:
        await worker.stop()


async def test_two_dispatchers_deliver_each_exactly_once(
    db: Db, demo: DemoPathway, tmp_path: Path
) -> None:
    receiver = Receiver(free_port(), held_turns=20)
    await add_webhook(db, receiver.url)
    await add_webhook(db, receiver.url)
    events = [
        await record_event(db, action="FIRMWARE_ADDED", device_id=demo.device.id) for _ in range(15)
    ]
    # A second engine stands for a second server process on the same database.
    engine_b = create_engine(db.url)
    try:
        db_b = Db(db.url, engine_b, session_factory(engine_b))
        async with serving(receiver), dispatcher(db) as a, dispatcher(db_b) as b:
            attempted = 0
            for _ in range(20):
                counts = await asyncio.gather(
                    a.run_once(limit=4), b.run_once(limit=4), a.run_once(limit=4)
                )
                attempted += sum(counts)
                if await all_delivered(db):
                    break
    finally:
        await engine_b.dispose()
    assert attempted == 30
    assert await all_delivered(db)
    per_delivery = Counter(hit.headers["x-cpl-delivery-id"] for hit in receiver.hits)
    assert len(per_delivery) == 30 and set(per_delivery.values()) == {1}
    per_event = Counter(hit.headers["x-cpl-event-id"] for hit in receiver.hits)
    assert per_event == Counter({f"event:{e}": 2 for e in events})


async def test_background_loop_survives_a_database_blip(db: Db, demo: DemoPathway) -> None:
    receiver = Receiver(free_port())
    await add_webhook(db, receiver.url)
    await record_event(db, action="FIRMWARE_ADDED", device_id=demo.device.id)
    failures = 2

    def flaky_sessions() -> AsyncSession:
        """The real session factory, but the first connections fail as in a database restart."""
        nonlocal failures
        if failures:
            failures -= 1
            raise ConnectionRefusedError("database is restarting")
        return db.sessions()

    async with serving(receiver), dispatcher(db) as worker:
        worker._sessions = flaky_sessions  # type: ignore[assignment]
        worker.start()
        await eventually(lambda: all_delivered(db), "delivery after the blip")
    assert failures == 0 and len(receiver.hits) == 1
