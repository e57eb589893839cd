"""The dispatcher: sends what the outbox holds, retries, and records every attempt.

A `Dispatcher` sends what is due, retries with exponential backoff and jitter up to a horizon,
and records every attempt on the delivery's row, so the state of a delivery is always in the
database and a restarted server simply carries on from it.

Delivery is at least once: a crash between the receiver's answer and our record of it sends the
event again, so every body carries a stable `eventId`, and every attempt a stable `webhook-id`,
for receivers to de-duplicate on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from config import metrics
from models.tables import Webhook, WebhookDelivery, WebhookStatus, utcnow
from notifications.addresses import (
    AddressRefused,
    Pinned,
    UrlSettings,
    pinned,
    public_address,
)
from notifications.digests import digest_bodies
from notifications.outages import OutageLog
from notifications.payloads import delivery_payloads, encode_body, fleet_reader
from notifications.signing import delivery_subject, signature_headers

logger = logging.getLogger(__name__)

USER_AGENT = "cpl-pathways-webhooks"
_MAX_ERROR = 200
_CONCURRENCY = 10
# How long a claimed delivery is hidden from other dispatchers beyond the request timeout, so a
# dispatcher that dies mid-send releases it soon, and a live one is never raced.
_LEASE_MARGIN_SECONDS = 30.0


class WebhookSettings(UrlSettings, Protocol):
    """The part of `settings.Settings` the dispatcher reads (a Protocol so tests may pass a
    subset)."""

    @property
    def webhook_retry_schedule(self) -> tuple[float, ...]: ...
    @property
    def webhook_horizon_seconds(self) -> float: ...
    @property
    def webhook_timeout_seconds(self) -> float: ...
    @property
    def webhook_poll_seconds(self) -> float: ...


@dataclass(frozen=True)
class _Claimed:
    delivery_id: int
    webhook_id: int
    event_id: int | None  # None for a daily digest (`digest_id`)
    digest_id: int | None
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


def _key(row: Any) -> tuple[Any, Any]:  # (event id, Party), or (None, digest id) for a digest
    return (row[2], row[7]) if row[2] is not None else (None, row[8])


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
        self._outages = OutageLog(logger, "webhook dispatcher")
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
            .order_by(col(WebhookDelivery.next_attempt_at), col(WebhookDelivery.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        claim = (
            update(WebhookDelivery)
            .where(
                col(WebhookDelivery.id).in_(due),
                col(WebhookDelivery.status) == WebhookStatus.PENDING,
            )
            .values(next_attempt_at=now + self._lease)
            .returning(col(WebhookDelivery.id))
        )
        async with self._sessions() as session:
            ids = list((await session.exec(claim)).scalars().all())
            await session.commit()
            if not ids:
                return []
            rows = (
                await session.exec(
                    select(  # type: ignore[call-overload]  # sqlmodel's select() types at most 4 columns
                        WebhookDelivery.id,
                        WebhookDelivery.webhook_id,
                        WebhookDelivery.event_id,
                        WebhookDelivery.attempts,
                        WebhookDelivery.created_at,
                        Webhook.url,
                        Webhook.secret,
                        fleet_reader(),
                        WebhookDelivery.digest_id,
                    )
                    .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                    .where(col(WebhookDelivery.id).in_(ids))
                    .order_by(WebhookDelivery.id)
                )
            ).all()
            # Each body carries its receiver's own fleetImpact, and nothing of another Party's.
            events = {(row[2], row[7]) for row in rows if row[2] is not None}
            payloads: dict[Any, dict] = await delivery_payloads(session, events)
            digests = await digest_bodies(session, {row[8] for row in rows if row[2] is None})
            payloads |= {(None, d): body for d, body in digests.items()}
            orphans = [row[0] for row in rows if _key(row) not in payloads]
            if orphans:
                # Cannot happen while audit events are append-only; if it does, retrying would
                # never help, so the delivery ends now instead of looping until the horizon.
                logger.warning("webhook deliveries %s: event not found; failed", orphans)
                await session.exec(
                    update(WebhookDelivery)
                    .where(col(WebhookDelivery.id).in_(orphans))
                    .values(status=WebhookStatus.FAILED, last_error="event not found")
                )
                await session.commit()
        claimed = []
        for row in rows:
            delivery_id, webhook_id, event_id, attempts, created_at, url, secret, _, digest = row
            payload = payloads.get(_key(row))
            if payload is None:
                continue
            claimed.append(
                _Claimed(
                    delivery_id=delivery_id,
                    webhook_id=webhook_id,
                    event_id=event_id,
                    digest_id=digest,
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
            try:
                address = await public_address(parts.hostname or "", port)
            except AddressRefused:
                return _Outcome(None, "address refused: the host is not public now")
            target = pinned(item.url, address)
        timestamp = int(self._clock().timestamp())
        header, subject, msg_id = delivery_subject(item.event_id, item.digest_id, item.webhook_id)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **signature_headers(item.secret, item.body, timestamp, msg_id),
            header: subject,
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
                    col(WebhookDelivery.id) == item.delivery_id,
                    col(WebhookDelivery.status) == WebhookStatus.PENDING,
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
                self._outages.succeeded()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # A database blip or a bug on one pass must not end delivery for good.
                self._outages.failed(error)
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
