"""The daily digest of a `DIGEST` webhook: once a day, from `CPL_DIGEST_HOUR_UTC`, the
`FleetDigest` of its Party's own fleet since its previous digest, signed and sent by the
dispatcher like any delivery; nothing when nothing changed.

Exactly once across processes: every process's scheduler pass tries each such webhook's day,
and the day is claimed by inserting its `WebhookDigest` row, unique per (webhook, day), in the
same transaction as the delivery it makes. The process whose insert commits first sends it; any
other's insert fails on the constraint and rolls back, leaving nothing. No timer of a process
decides anything.

What a digest holds is read as `fleetDigest` reads it (`resolvers.planning.digest`): the
Party's own fleet impact rows, for the events after the previous digest's last one (the first:
the events since the webhook was registered), at most `MAX_DIGEST_CHANGES` of them, the rest
left for the next day. Each change is the webhook body of its event with the Party's own
`fleetImpact` (`notifications.payloads.delivery_payloads`), so nothing of another Party's fleet
is read.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.notice import FleetImpact, WebhookDigest
from models.tables import AuditEvent, ChangeKind, Webhook, WebhookDelivery, WebhookStatus
from notifications.payloads import delivery_payloads, fleet_reader
from resolvers.planning.digest import MAX_DIGEST_CHANGES, summed_impact

logger = logging.getLogger("cpl_pathways.digests")
DIGEST = ChangeKind.DIGEST.value


async def send_due_digests(
    sessions: async_sessionmaker[AsyncSession], now: datetime, hour: int
) -> int:
    """Claim today's digest of every DIGEST webhook not yet claimed, once `now` (UTC) is at or
    past `hour`; returns how many this process claimed (sent or found empty)."""
    now = now.astimezone(UTC)
    if now.hour < hour:
        return 0
    day = now.date()
    async with sessions() as session:
        hooks = (await session.exec(select(Webhook.id, fleet_reader(), Webhook.kinds))).all()
        done = set(
            (
                await session.exec(
                    select(WebhookDigest.webhook_id).where(col(WebhookDigest.day) == day)
                )
            ).all()
        )
    claimed = 0
    for webhook_id, party, kinds in hooks:
        if webhook_id is None or not party or kinds is None or DIGEST not in kinds:
            continue  # not a digest's, or registered by a category that may read no fleet
        if webhook_id in done:
            continue
        async with sessions() as session:
            try:
                await _claim(session, webhook_id, party, day, now)
                await session.commit()
                claimed += 1
            except IntegrityError:  # another process claimed this day first: it sends it
                await session.rollback()
    return claimed


async def _claim(
    session: AsyncSession, webhook_id: int, party: str, day: date, now: datetime
) -> None:
    webhook = await session.get(Webhook, webhook_id)
    if webhook is None:  # deleted since it was listed
        return
    previous = (
        await session.exec(
            select(WebhookDigest)
            .where(col(WebhookDigest.webhook_id) == webhook_id)
            .order_by(col(WebhookDigest.day).desc())
            .limit(1)
        )
    ).first()
    if previous is None:
        since, after = webhook.created_at, None
    else:
        sent = previous.body is not None
        since, after = (previous.created_at if sent else previous.since), previous.last_event_id
    statement = (
        select(AuditEvent.id, FleetImpact)
        .join(FleetImpact, col(FleetImpact.event_id) == col(AuditEvent.id))
        .where(col(FleetImpact.party_id) == party)
        .order_by(col(AuditEvent.id))
        .limit(MAX_DIGEST_CHANGES)
    )
    if after is None:
        statement = statement.where(col(AuditEvent.occurred_at) >= since)
    else:  # ids, not times: an event committed after the last digest read is never skipped
        statement = statement.where(col(AuditEvent.id) > after)
    rows = (await session.exec(statement)).all()
    body = await _body(session, party, since, rows) if rows else None
    digest = WebhookDigest(
        webhook_id=webhook_id,
        day=day,
        since=since,
        last_event_id=rows[-1][0] if rows else after,
        body=body,
        created_at=now,
    )
    session.add(digest)
    await session.flush()  # the claim: fails here on (webhook, day) if another process has it
    if body is not None:
        session.add(
            WebhookDelivery(
                webhook_id=webhook_id,
                digest_id=digest.id,
                status=WebhookStatus.PENDING,
                next_attempt_at=now,
                created_at=now,
            )
        )
        logger.info("webhook %s: digest of %s with %s changes", webhook_id, day, len(rows))


async def _body(session: AsyncSession, party: str, since: datetime, rows: Any) -> dict[str, Any]:
    """A `FleetDigest` as a webhook body: `changes` are the events' delivery bodies, each
    with the Party's own `fleetImpact`, and `impact` their sum."""
    payloads = await delivery_payloads(session, {(event_id, party) for event_id, _ in rows})
    total = summed_impact([impact for _, impact in rows])
    return {
        "kind": DIGEST,
        "since": since.astimezone(UTC).isoformat(),
        "changes": [payloads[(event_id, party)] for event_id, _ in rows],
        "impact": {
            "affectedMeters": total.affected,
            "newlyBlockedMeters": total.newly_blocked,
            "newlyUpgradableMeters": total.newly_upgradable,
        },
    }


async def digest_bodies(session: AsyncSession, ids: Collection[int]) -> dict[int, dict]:
    """The stored body of each digest, by id (what the dispatcher signs and sends)."""
    if not ids:
        return {}
    rows = await session.exec(
        select(WebhookDigest.id, WebhookDigest.body).where(col(WebhookDigest.id).in_(sorted(ids)))
    )
    return {cast(int, d): dict(body) for d, body in rows.all() if body is not None}
