"""Webhooks: registering endpoints, the transactional outbox, and the dispatcher that empties it.

Every change the CPL records is an audit event; announcing one is a matter of writing a
`WebhookDelivery` row per interested webhook in the *same* transaction as the change
(`enqueue`). The change and its announcements therefore commit or roll back together: no event
can be announced that did not happen, and none that happened can be forgotten. A `Dispatcher`
then sends what is due, retries with exponential backoff and jitter up to a horizon, and records
every attempt on the row, so the state of a delivery is always in the database and a restarted
server simply carries on from it.

Delivery is at least once: a crash between the receiver's answer and our record of it sends the
event again, so every body carries a stable `eventId` for receivers to de-duplicate on.

Bodies carry public fields only, whoever registered the webhook: the payload query never even
selects the SSC-only Zigbee columns, and an event that changed one of them is sent without its
free-text reason, which could repeat the restricted value.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import secrets
import socket
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx
import sqlalchemy as sa
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import aliased
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

import metrics
from models.database import chunks, describe_outage, is_outage
from models.tables import (
    AuditEvent,
    Device,
    Firmware,
    Manufacturer,
    UpgradePathway,
    Webhook,
    WebhookDelivery,
    WebhookStatus,
    utcnow,
)
from permissions.policy import change_subject, readable_by_every_party
from resolvers import validation as v

logger = logging.getLogger(__name__)

MAX_URL = 2000
SIGNATURE_HEADER = "X-CPL-Signature"
USER_AGENT = "cpl-pathways-webhooks"
# IANA's special-purpose ranges that are not globally reachable, whatever this Python's
# `is_global` says of them (3.11's list misses several, such as 192.0.0.8): CGNAT, IETF protocol
# assignments, documentation, benchmarking, reserved and ORCHID/ISP-internal IPv6 space.
_NOT_GLOBAL = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",
        "100.64.0.0/10",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "240.0.0.0/4",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "3fff::/20",
        "5f00::/16",
        "64:ff9b:1::/48",
        "fc00::/7",
    )
)
# NAT64 well-known prefix: the low 32 bits are an IPv4 address the gateway will connect to.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost."})
_MAX_ERROR = 200
_CONCURRENCY = 10
# How long a claimed delivery is hidden from other dispatchers beyond the request timeout, so a
# dispatcher that dies mid-send releases it soon, and a live one is never raced.
_LEASE_MARGIN_SECONDS = 30.0


class WebhookSettings(Protocol):
    """The part of `settings.Settings` webhooks read (a Protocol so tests may pass a subset)."""

    @property
    def allow_insecure_webhooks(self) -> bool: ...
    @property
    def block_private_webhooks(self) -> bool: ...
    @property
    def webhook_retry_schedule(self) -> tuple[float, ...]: ...
    @property
    def webhook_horizon_seconds(self) -> float: ...
    @property
    def webhook_timeout_seconds(self) -> float: ...
    @property
    def webhook_poll_seconds(self) -> float: ...


# --- secrets and signatures ------------------------------------------------------------------


def new_secret() -> str:
    """A signing secret, shown to the registering Party once; the prefix makes a leaked one
    recognisable to secret scanners."""
    return "whsec_" + secrets.token_urlsafe(32)


def _mac(secret: str, body: bytes, timestamp: int) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The `X-CPL-Signature` header value: `t=<unix seconds>,v1=<hex HMAC-SHA256>`.

    The timestamp is inside the signed message so a captured request cannot be replayed later
    with a fresh `t`; receivers reject stale timestamps (see `verify_signature`).
    """
    return f"t={timestamp},v1={_mac(secret, body, timestamp)}"


def verify_signature(
    secret: str,
    body: bytes,
    header: str,
    *,
    tolerance: int = 300,
    now: float | None = None,
) -> bool:
    """Whether `header` is a valid signature of the raw `body` made within `tolerance` seconds.

    This is what a receiver does (the README shows it): verify the exact bytes received, before
    parsing them, in constant time, and refuse old timestamps to stop replays. Several `v1`
    values are accepted so a future secret rotation can sign with old and new keys at once.
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = _mac(secret, body, timestamp)
    # Compare against every candidate without stopping early, so timing says nothing.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    return matched


# --- URLs and addresses ----------------------------------------------------------------------


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is one the server may connect to when private ones are blocked.

    `is_global` is an allow-list, but it counts multicast as global, so the other kinds are
    refused explicitly too. IPv6 forms that embed an IPv4 address (mapped, 6to4, NAT64) are
    judged by that address, or `[::ffff:10.0.0.1]` would walk straight past the check.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return _public(address.ipv4_mapped)
        if address.sixtofour is not None and not _public(address.sixtofour):
            return False
        if address in _NAT64:
            return _public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if any(address in network for network in _NOT_GLOBAL if network.version == address.version):
        return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    address = _ip(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address is not None and address.is_loopback


async def _resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every address `host` resolves to (an IP literal is its own answer, with no lookup)."""
    literal = _ip(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found = []
    for info in infos:
        # sockaddr[0] may carry an IPv6 zone ("fe80::1%eth0"); the zone does not change the kind.
        parsed = _ip(str(info[4][0]).split("%", 1)[0])
        if parsed is not None:
            found.append(parsed)
    return found


async def public_address(
    host: str, port: int = 443
) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address the server may connect to for `host` now, or None if it may not.

    Checked at registration and again before every delivery, because a name that resolved to a
    public address when registered can later be pointed at an internal one (DNS rebinding).
    Every address must be public; the first is the one to connect to (see `pinned`), so the
    connection goes where the check looked. A name that does not resolve is refused, since
    nothing can be said about it.
    """
    try:
        addresses = await _resolve(host, port)
    except (OSError, UnicodeError):
        return None
    if not addresses or not all(_public(address) for address in addresses):
        return None
    return addresses[0]


@dataclass(frozen=True)
class Pinned:
    """A request aimed at a checked address while naming the host it is for."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, str]


def pinned(url: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Pinned:
    """`url` with its host replaced by `address`, so the HTTP client cannot resolve the name
    again and be answered differently. The receiver still sees its own name: in the `Host`
    header and, over TLS, in SNI, and the certificate is verified against that name."""
    parts = urlsplit(url)
    netloc = f"[{address}]" if address.version == 6 else str(address)
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    host = parts.hostname or ""
    extensions = {"sni_hostname": host} if parts.scheme == "https" and _ip(host) is None else {}
    return Pinned(
        urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")),
        {"Host": parts.netloc},
        extensions,
    )


def _url_failure(message: str) -> v.MutationFailure:
    return v.invalid("url", message)


async def check_url(url: str, settings: WebhookSettings) -> str:
    """The normalised form of a webhook URL, or a validation failure saying what is wrong.

    https only, so bodies and signatures are not readable on the way; plain http just for
    loopback when insecure webhooks are allowed (local development). No credentials in the URL,
    since it is stored and shown back. With `block_private_webhooks` (production), a URL that
    reaches a private, loopback, link-local or otherwise internal address is refused, so the
    API cannot be used to make requests into the network it runs in (SSRF).
    """
    candidate = url.strip()
    if not candidate:
        raise _url_failure("url is required.")
    if len(candidate) > MAX_URL:
        raise _url_failure(f"url must be at most {MAX_URL} characters.")
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in candidate):
        raise _url_failure("url must not contain spaces or control characters.")
    try:
        parts = urlsplit(candidate)
        port = parts.port
    except ValueError:
        raise _url_failure("url is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in {"https", "http"}:
        raise _url_failure("url must use https.")
    host = parts.hostname
    if not host:
        raise _url_failure("url must name a host.")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise _url_failure("url must not contain a user name or password.")
    if ":" in host and _ip(host) is None:
        raise _url_failure("url has an invalid IPv6 address.")
    if scheme == "http" and not (settings.allow_insecure_webhooks and _loopback(host)):
        if settings.allow_insecure_webhooks:
            raise _url_failure("url must use https (plain http is allowed only for loopback).")
        raise _url_failure("url must use https.")
    if settings.block_private_webhooks:
        default_port = 443 if scheme == "https" else 80
        try:
            addresses = await _resolve(host, port or default_port)
        except (OSError, UnicodeError):
            raise _url_failure("url's host could not be resolved.") from None
        if not addresses:
            raise _url_failure("url's host could not be resolved.")
        if not all(_public(address) for address in addresses):
            raise _url_failure(
                "url must reach a public address; private, loopback and link-local addresses "
                "are refused."
            )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    # The fragment is dropped: it is never sent to a server.
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


# --- the outbox ------------------------------------------------------------------------------


async def enqueue(session: AsyncSession, event: AuditEvent) -> int:
    """Add a pending delivery of `event` for every webhook that wants it; returns how many.

    Runs inside the writer's transaction, after the event is flushed, and does not commit: the
    deliveries become visible exactly when the change does, and vanish with it on rollback.
    Webhooks are few, so they are all read and filtered here rather than with JSON operators
    that differ between SQLite and PostgreSQL.
    """
    return await enqueue_many(session, [event])


class EventLike(Protocol):
    id: int | None
    device_id: int
    action: str


async def enqueue_many(session: AsyncSession, events: Sequence[EventLike]) -> int:
    """`enqueue` for many events (a file import): the webhooks are read once for all of them,
    and the deliveries written with one Core insert per 5,000."""
    if any(event.id is None for event in events):
        raise ValueError("enqueue needs a flushed audit event (it has no id yet)")
    rows = (await session.exec(select(Webhook.id, Webhook.device_ids, Webhook.kinds))).all()
    now = utcnow()
    deliveries: list[dict[str, Any]] = []
    for webhook_id, device_ids, kinds in rows:
        wanted = set(device_ids) if device_ids is not None else None
        for event in events:
            if wanted is not None and event.device_id not in wanted:
                continue
            if kinds is not None and event.action not in kinds:
                continue
            deliveries.append(
                {
                    "webhook_id": webhook_id,
                    "event_id": event.id,
                    "status": WebhookStatus.PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    table: sa.Table = WebhookDelivery.__table__  # type: ignore[attr-defined]
    for chunk in chunks(deliveries):
        await session.exec(sa.insert(table), params=list(chunk))
    return len(deliveries)


def _gid(kind: str, pk: int) -> str:
    """A GraphQL id (`device:12`), written here so the resolvers do not import the schema."""
    return f"{kind}:{pk}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _restricted(subject: str, changes: list[dict[str, Any]] | None) -> bool:
    """Whether the event changed a value not every Party may read (its reason could repeat it)."""
    return not all(readable_by_every_party(subject, change["field"]) for change in changes or [])


async def event_payloads(session: AsyncSession, event_ids: Collection[int]) -> dict[int, dict]:
    """The delivery body of each event, keyed by event id, in one statement however many.

    Only public columns are selected: an SSC-only value cannot end up in a body because it is
    never read. Device, firmware and pathway are shown as they are now; the pathway's
    `revision` lets a receiver order what it sees.
    """
    ids = sorted(set(event_ids))
    if not ids:
        return {}
    from_firmware = aliased(Firmware)
    to_firmware = aliased(Firmware)
    statement = (
        select(
            AuditEvent.id,
            AuditEvent.action,
            AuditEvent.occurred_at,
            AuditEvent.reason,
            AuditEvent.changes,
            Device.id,
            Manufacturer.identifier,
            Device.model_identifier,
            Device.hardware_version,
            Device.device_type,
            Device.zigbee_band,
            Firmware.id,
            Firmware.version,
            Firmware.status,
            UpgradePathway.id,
            from_firmware.version,
            to_firmware.version,
            UpgradePathway.status,
            UpgradePathway.revision,
        )
        .join(Device, Device.id == AuditEvent.device_id)
        .join(Manufacturer, Manufacturer.id == Device.manufacturer_id)
        .outerjoin(Firmware, Firmware.id == AuditEvent.firmware_id)
        .outerjoin(UpgradePathway, UpgradePathway.id == AuditEvent.pathway_id)
        .outerjoin(from_firmware, from_firmware.id == UpgradePathway.from_firmware_id)
        .outerjoin(to_firmware, to_firmware.id == UpgradePathway.to_firmware_id)
        .where(AuditEvent.id.in_(ids))
    )
    payloads: dict[int, dict] = {}
    for row in (await session.exec(statement)).all():
        (
            event_id,
            action,
            occurred_at,
            reason,
            changes,
            device_id,
            manufacturer,
            model,
            hardware,
            device_type,
            band,
            firmware_id,
            firmware_version,
            firmware_status,
            pathway_id,
            from_version,
            to_version,
            pathway_status,
            revision,
        ) = row
        payloads[event_id] = {
            "eventId": _gid("event", event_id),
            "kind": action,
            "occurredAt": _iso(occurred_at),
            "reason": None
            if _restricted(change_subject(firmware_id, pathway_id), changes)
            else reason,
            "device": {
                "id": _gid("device", device_id),
                "manufacturerIdentifier": manufacturer,
                "modelIdentifier": model,
                "hardwareVersion": hardware,
                "deviceType": device_type.value,
                "zigbeeBand": band.value if band is not None else None,
            },
            "firmware": None
            if firmware_id is None
            else {
                "id": _gid("firmware", firmware_id),
                "version": firmware_version,
                "status": firmware_status.value,
            },
            "pathway": None
            if pathway_id is None
            else {
                "id": _gid("pathway", pathway_id),
                "fromVersion": from_version,
                "toVersion": to_version,
                "status": pathway_status.value,
                "revision": revision,
            },
        }
    return payloads


def encode_body(payload: dict) -> bytes:
    """Compact JSON: the bytes signed are exactly the bytes sent."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --- the dispatcher --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claimed:
    delivery_id: int
    webhook_id: int
    event_id: int
    attempts: int
    created_at: datetime
    url: str
    secret: str
    body: bytes


@dataclass(frozen=True)
class _Outcome:
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _short_error(exc: BaseException, url: str) -> str:
    """A one-line reason for `last_error`: the URL (which may carry a token) is cut out."""
    text = str(exc).replace(url, "<url>").strip()
    message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return " ".join(message.split())[:_MAX_ERROR]


class Dispatcher:
    """Sends due deliveries from the outbox and records each attempt.

    All state lives in `webhook_delivery`, so any number of dispatchers (several server
    processes) can run against one database: a delivery is claimed by pushing its
    `next_attempt_at` forward by a lease in a committed statement before it is sent, and only
    the dispatcher whose statement moved it sends it. A dispatcher that dies mid-send leaves the
    lease to expire and the delivery is tried again: at least once, never lost.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: WebhookSettings,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._own_client = client is None
        # trust_env=False: a proxy from the environment would make the address checks moot.
        self._client = client or httpx.AsyncClient(follow_redirects=False, trust_env=False)
        self._clock = clock
        # Jitter only spreads retries out; it guards nothing, so a seeded PRNG is fine.
        self._rng = rng or random.Random()  # noqa: S311
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # The lease outlives a request that runs to its timeout, so a live sender is never raced.
    @property
    def _lease(self) -> timedelta:
        return timedelta(seconds=self._settings.webhook_timeout_seconds + _LEASE_MARGIN_SECONDS)

    def backoff(self, attempts: int) -> float:
        """Seconds before retry number `attempts` (1 after the first failure), with ±20% jitter
        so receivers coming back from an outage are not hit by every retry at once."""
        schedule = self._settings.webhook_retry_schedule or (1.0,)
        base = schedule[min(max(attempts, 1) - 1, len(schedule) - 1)]
        return base * self._rng.uniform(0.8, 1.2)

    async def run_once(self, limit: int = 100) -> int:
        """Claim up to `limit` due deliveries, send them, record the outcomes; returns how many
        were attempted."""
        claimed = await self._claim(limit)
        if not claimed:
            return 0
        gate = asyncio.Semaphore(_CONCURRENCY)

        async def one(item: _Claimed) -> None:
            async with gate:
                outcome = await self._send(item)
                await self._record(item, outcome)

        # return_exceptions: one delivery whose record fails (a database blip) must not abandon
        # the others mid-flight; it stays leased and is simply tried again later.
        results = await asyncio.gather(*(one(item) for item in claimed), return_exceptions=True)
        for item, result in zip(claimed, results, strict=True):
            if isinstance(result, BaseException):
                logger.error(
                    "webhook delivery %s: attempt not recorded", item.delivery_id, exc_info=result
                )
        return len(claimed)

    async def _claim(self, limit: int) -> list[_Claimed]:
        """Take due deliveries for this dispatcher, then read what sending them needs.

        One UPDATE ... WHERE id IN (due, oldest first) RETURNING. On PostgreSQL the inner select
        is FOR UPDATE SKIP LOCKED, so concurrent dispatchers take disjoint rows without waiting;
        SQLite ignores that clause and needs none, because a write statement holds the
        database's single write lock from its start. The claim commits before anything is
        sent, so no lock is held during slow HTTP calls.
        """
        now = self._clock()
        due = (
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.status == WebhookStatus.PENDING,
                WebhookDelivery.next_attempt_at <= now,
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        claim = (
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(due), WebhookDelivery.status == WebhookStatus.PENDING)
            .values(next_attempt_at=now + self._lease)
            .returning(WebhookDelivery.id)
        )
        async with self._sessions() as session:
            ids = list((await session.exec(claim)).scalars().all())
            await session.commit()
            if not ids:
                return []
            rows = (
                await session.exec(
                    select(
                        WebhookDelivery.id,
                        WebhookDelivery.webhook_id,
                        WebhookDelivery.event_id,
                        WebhookDelivery.attempts,
                        WebhookDelivery.created_at,
                        Webhook.url,
                        Webhook.secret,
                    )
                    .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                    .where(WebhookDelivery.id.in_(ids))
                    .order_by(WebhookDelivery.id)
                )
            ).all()
            payloads = await event_payloads(session, {row[2] for row in rows})
            orphans = [row[0] for row in rows if row[2] not in payloads]
            if orphans:
                # Cannot happen while audit events are append-only; if it does, retrying would
                # never help, so the delivery ends now instead of looping until the horizon.
                logger.warning("webhook deliveries %s: event not found; failed", orphans)
                await session.exec(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id.in_(orphans))
                    .values(status=WebhookStatus.FAILED, last_error="event not found")
                )
                await session.commit()
        claimed = []
        for delivery_id, webhook_id, event_id, attempts, created_at, url, secret in rows:
            payload = payloads.get(event_id)
            if payload is None:
                continue
            claimed.append(
                _Claimed(
                    delivery_id=delivery_id,
                    webhook_id=webhook_id,
                    event_id=event_id,
                    attempts=attempts,
                    created_at=created_at,
                    url=url,
                    secret=secret,
                    body=encode_body(payload),
                )
            )
        return claimed

    async def _send(self, item: _Claimed) -> _Outcome:
        settings = self._settings
        target = Pinned(item.url, {}, {})
        if settings.block_private_webhooks:
            parts = urlsplit(item.url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            address = await public_address(parts.hostname or "", port)
            if address is None:
                return _Outcome(None, "address refused: the host is not public now")
            target = pinned(item.url, address)
        timestamp = int(self._clock().timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature(item.secret, item.body, timestamp),
            "X-CPL-Event-Id": _gid("event", item.event_id),
            "X-CPL-Delivery-Id": str(item.delivery_id),
        }
        try:
            response = await self._client.post(
                target.url,
                content=item.body,
                headers={**headers, **target.headers},
                extensions=target.extensions,
                timeout=settings.webhook_timeout_seconds,
                follow_redirects=False,
            )
        except (httpx.HTTPError, OSError) as exc:
            return _Outcome(None, _short_error(exc, item.url))
        # The response body is not read into the record: it is the receiver's, not ours to keep.
        await response.aclose()
        if 200 <= response.status_code < 300:
            return _Outcome(response.status_code, None)
        return _Outcome(response.status_code, f"HTTP {response.status_code}")

    async def _record(self, item: _Claimed, outcome: _Outcome) -> None:
        now = self._clock()
        attempts = item.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_attempt_at": now,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
        }
        if outcome.ok:
            values |= {"status": WebhookStatus.DELIVERED, "delivered_at": now}
            metrics.WEBHOOK_ATTEMPTS.labels("delivered").inc()
            logger.info("webhook delivery %s delivered", item.delivery_id)
        else:
            deadline = item.created_at + timedelta(seconds=self._settings.webhook_horizon_seconds)
            if now >= deadline:
                values["status"] = WebhookStatus.FAILED
                metrics.WEBHOOK_ATTEMPTS.labels("failed").inc()
                logger.warning(
                    "webhook delivery %s failed after %s attempts (%s)",
                    item.delivery_id,
                    attempts,
                    outcome.error,
                )
            else:
                # The last retry lands on the horizon itself rather than past it.
                retry_at = now + timedelta(seconds=self.backoff(attempts))
                values["next_attempt_at"] = min(retry_at, deadline)
                metrics.WEBHOOK_ATTEMPTS.labels("retrying").inc()
                logger.info(
                    "webhook delivery %s attempt %s failed (%s); retrying",
                    item.delivery_id,
                    attempts,
                    outcome.error,
                )
        async with self._sessions() as session:
            await session.exec(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == item.delivery_id,
                    WebhookDelivery.status == WebhookStatus.PENDING,
                )
                .values(**values)
            )
            await session.commit()

    async def _seconds_until_due(self) -> float:
        """Seconds to the earliest pending attempt, capped at the poll interval."""
        poll = self._settings.webhook_poll_seconds
        async with self._sessions() as session:
            earliest = (
                await session.exec(
                    select(func.min(WebhookDelivery.next_attempt_at)).where(
                        WebhookDelivery.status == WebhookStatus.PENDING
                    )
                )
            ).one()
        if earliest is None:
            return poll
        if earliest.tzinfo is None:  # defensive: the column type normally restores the zone
            earliest = earliest.replace(tzinfo=UTC)
        return max(0.0, min(poll, (earliest - self._clock()).total_seconds()))

    async def _loop(self) -> None:
        limit = 100
        while True:
            # Cleared before the pass, so a wake() that arrives during it is not lost.
            self._wake.clear()
            try:
                attempted = await self.run_once(limit)
                delay = 0.0 if attempted >= limit else await self._seconds_until_due()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # A database blip or a bug on one pass must not end delivery for good.
                if not is_outage(error):
                    logger.exception("webhook dispatch pass failed; trying again shortly")
                else:
                    logger.warning("webhook dispatch paused (%s)", describe_outage(error))
                delay = self._settings.webhook_poll_seconds
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)

    def start(self) -> None:
        """Start sending in the background. Pending rows are read from the database on every
        pass, so a restarted server resumes what the previous one left with no extra step."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), name="webhook-dispatcher"
            )

    def wake(self) -> None:
        """Look for due deliveries now (call after committing a change that enqueued some)."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop the background task; deliveries it was sending are retried after their lease."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._own_client:
            await self._client.aclose()
