"""A Party's own webhooks: register, list, delete, and read their delivery attempts.

Every query here is held to the caller's row scope under the field's rule (a Party's own
webhooks, `permissions.row_scopes`): another Party's webhook is, to you, a webhook that does not
exist. Registering and deleting run in a unit of work, like every write: a caller-scoped one,
which leaves the CPL's data revision, and every other Party's cached answers, as they were.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import cast

from sqlalchemy import ColumnElement, delete, func
from sqlmodel import col, select

from models.database import RequestSession
from models.notice import WebhookDigest
from models.tables import ChangeKind, Device, Webhook, WebhookDelivery, WebhookStatus
from notifications.signing import new_secret
from permissions.policy import ALLOWED, Rule
from permissions.row_scopes import Scope
from resolvers.reads.paging import Page, page_of
from resolvers.writes import validation as v
from resolvers.writes.unit_of_work import Work

MAX_WEBHOOKS_PER_PARTY = 20
MAX_DEVICES_PER_WEBHOOK = 1_000


async def register(
    work: Work,
    url: str,
    device_ids: Collection[int | None] | None,
    kinds: Collection[ChangeKind] | None,
) -> Webhook:
    """Register a webhook for the caller's Party at `url`, already checked (`check_url`, which
    resolves names: done before the unit of work, so no lookup holds the writers' lock)."""
    session = work.session
    party_id = work.principal.party_id  # the quota is the Party's, whatever its row scope
    if kinds is not None and not kinds:
        raise v.invalid("kinds", "kinds must not be empty; leave it out for every kind.")
    category = work.principal.party_category
    if kinds is not None and ChangeKind.DIGEST in kinds and category not in ALLOWED[Rule.OWN_FLEET]:
        raise v.invalid("kinds", "DIGEST is a Supplier's daily digest of its own stored fleet.")
    devices: list[int] | None = None
    if device_ids is not None:
        if not device_ids:
            raise v.invalid("deviceIds", "deviceIds must not be empty; leave it out for all.")
        if len(device_ids) > MAX_DEVICES_PER_WEBHOOK:
            raise v.invalid(
                "deviceIds", f"A webhook may name at most {MAX_DEVICES_PER_WEBHOOK:,} devices."
            )
        wanted = set(device_ids)
        found = set(
            (await session.exec(select(Device.id).where(col(Device.id).in_(wanted - {None})))).all()
        )
        if None in wanted or found != wanted:
            raise v.not_found("deviceIds", "No device has one of those ids.")
        devices = sorted(cast(set[int], found))  # ids read from the table: never None
    count = (
        await session.exec(
            select(func.count()).select_from(Webhook).where(Webhook.party_id == party_id)
        )
    ).one()
    if count >= MAX_WEBHOOKS_PER_PARTY:
        raise v.conflict(None, f"A Party may register at most {MAX_WEBHOOKS_PER_PARTY} webhooks.")
    webhook = Webhook(
        party_id=party_id,
        party_category=category.value,
        url=url,
        secret=new_secret(),
        device_ids=devices,
        kinds=sorted(k.value for k in kinds) if kinds is not None else None,
    )
    session.add(webhook)
    await session.flush()
    return webhook


async def remove(work: Work, webhook_id: int | None) -> Webhook:
    webhook = await work.session.get(Webhook, webhook_id) if webhook_id is not None else None
    if webhook is None or not work.scope.allows(webhook.party_id):
        raise v.not_found("id", "You have no webhook with that id.")
    await work.session.exec(
        delete(WebhookDelivery).where(col(WebhookDelivery.webhook_id) == webhook.id)
    )
    await work.session.exec(
        delete(WebhookDigest).where(col(WebhookDigest.webhook_id) == webhook.id)
    )
    await work.session.delete(webhook)
    return webhook


async def own_webhooks(db: RequestSession, scope: Scope) -> list[Webhook]:
    return await db.fetch(
        select(Webhook).where(*scope.where(Webhook.party_id)).order_by(col(Webhook.id))
    )


async def own_deliveries(
    db: RequestSession,
    scope: Scope,
    first: int,
    after: int | None,  # the point of the `after` cursor (resolvers.reads.paging)
    webhook_id: int | None = None,
    status: WebhookStatus | None = None,
) -> Page[WebhookDelivery]:
    """Newest first, for the caller's webhooks only."""
    conditions: list[ColumnElement[bool]] = [
        col(WebhookDelivery.webhook_id).in_(
            select(Webhook.id).where(*scope.where(Webhook.party_id))
        )
    ]
    if webhook_id is not None:
        conditions.append(col(WebhookDelivery.webhook_id) == webhook_id)
    if status is not None:
        conditions.append(col(WebhookDelivery.status) == status)
    return await page_of(db, WebhookDelivery, conditions, first, after, newest_first=True)
