"""Proactive notifications: the `cplChanges` subscription and a Party's own webhooks.

Events are the audit events of committed changes. A subscription payload is resolved with the
subscriber's own visibility, so the field policy applies to every field for every subscriber;
the subscribers who would get the same answer share one execution of each event
(`schema.subscriptions`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated, cast

import strawberry
from graphql import GraphQLError
from sqlmodel import col, select
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from models import tables
from models.notice import FleetImpact as FleetImpactRow
from notifications import webhook_admin
from notifications.addresses import check_url
from permissions.policy import allows
from permissions.row_scopes import row_scope
from permissions.strawberry_adapter import policy_directives
from resolvers.writes import validation as v
from resolvers.writes.unit_of_work import Work
from schema.ids import BAD_USER_INPUT, decode_cursor, decode_id, encode_id
from schema.mutations import ERROR_TYPES, ConflictError, NotFoundError, ValidationError
from schema.prerequisites import Prerequisite
from schema.query import page_size
from schema.types import (
    ChangeKind,
    Device,
    Firmware,
    UpgradePathway,
    connection_types,
    visible_reason,
)

WebhookDeliveryStatus = tables.WebhookStatus
strawberry.enum(WebhookDeliveryStatus, name="WebhookDeliveryStatus")  # marks it in place


@strawberry.type
class FleetImpact:
    affected_meters: int
    newly_blocked_meters: int
    newly_upgradable_meters: int


async def own_impact(info: Info, event_id: int) -> FleetImpact | None:
    """The caller's own impact of an event: one batched read per operation, for its Party."""
    context = info.context
    scope = row_scope(context.principal, "CplChange", "fleetImpact")
    if scope.owner is None:
        return None
    if context.fleet_impacts is None:

        async def load(keys: list[int]) -> list[FleetImpactRow | None]:
            rows = await context.db.fetch(
                select(FleetImpactRow).where(
                    *scope.where(col(FleetImpactRow.party_id)),
                    col(FleetImpactRow.event_id).in_(keys),
                )
            )
            found = {row.event_id: row for row in rows}
            return [found.get(key) for key in keys]

        context.fleet_impacts = DataLoader(load)
    row = await context.fleet_impacts.load(event_id)
    if row is None:
        return None
    return FleetImpact(
        affected_meters=row.affected_meters,
        newly_blocked_meters=row.newly_blocked_meters,
        newly_upgradable_meters=row.newly_upgradable_meters,
    )


@strawberry.type
class CplChange:
    occurred_at: datetime

    @strawberry.field
    def event_id(self, root: strawberry.Parent[tables.AuditEvent]) -> strawberry.ID:
        return strawberry.ID(encode_id("event", cast(int, root.id)))

    @strawberry.field
    def kind(self, root: strawberry.Parent[tables.AuditEvent]) -> ChangeKind:
        return tables.ChangeKind(root.action)

    @strawberry.field
    def reason(self, root: strawberry.Parent[tables.AuditEvent], info: Info) -> str | None:
        return visible_reason(info.context.principal, root)

    @strawberry.field
    async def device(self, root: strawberry.Parent[tables.AuditEvent], info: Info) -> Device:
        return await info.context.loaders.device.load(root.device_id)

    @strawberry.field
    async def firmware(
        self, root: strawberry.Parent[tables.AuditEvent], info: Info
    ) -> Firmware | None:
        if root.firmware_id is None:
            return None
        return await info.context.loaders.firmware.load(root.firmware_id)

    @strawberry.field
    async def pathway(
        self, root: strawberry.Parent[tables.AuditEvent], info: Info
    ) -> UpgradePathway | None:
        if root.pathway_id is None:
            return None
        return await info.context.loaders.pathway.load(root.pathway_id)

    @strawberry.field
    async def prerequisite(
        self, root: strawberry.Parent[tables.AuditEvent], info: Info
    ) -> Prerequisite | None:
        if root.prerequisite_id is None:
            return None
        return await info.context.loaders.prerequisite.load(root.prerequisite_id)

    @strawberry.field(
        directives=policy_directives("CplChange", "fleetImpact"),
    )
    async def fleet_impact(
        self, root: strawberry.Parent[tables.AuditEvent], info: Info
    ) -> FleetImpact | None:
        return await own_impact(info, cast(int, root.id))


def _device_ids(ids: list[strawberry.ID] | None) -> set[int | None] | None:
    return None if ids is None else {decode_id("device", i) for i in ids}


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def cpl_changes(
        self,
        info: Info,
        device_ids: list[strawberry.ID] | None = None,
        kinds: list[ChangeKind] | None = None,
        only_my_fleet: bool = False,
    ) -> AsyncGenerator[CplChange, None]:
        devices = _device_ids(device_ids)
        if devices is not None and (None in devices or not devices):
            raise GraphQLError("deviceIds must list device ids; leave it out for all devices.",
                               extensions={"code": BAD_USER_INPUT})  # fmt: skip
        if kinds is not None and not kinds:
            raise GraphQLError("kinds must not be empty; leave it out for every kind.",
                               extensions={"code": BAD_USER_INPUT})  # fmt: skip
        wanted = {kind.value for kind in kinds} if kinds is not None else None
        services = info.context.services
        principal = info.context.principal
        mine = only_my_fleet and allows(principal, "CplChange", "fleetImpact")
        async with services.bus.subscribe() as events:
            while True:
                # Read once for every subscriber (`schema.subscriptions.SharedEvents`); the bus
                # has made the revision clock forget, so the event's execution reads it anew.
                event = await services.events.row(await events.get())
                if event is None:
                    continue
                if devices is not None and event.device_id not in devices:
                    continue
                if wanted is not None and event.action not in wanted:
                    continue
                if only_my_fleet and not (
                    mine and principal.party_id in await services.events.impacted(event.id)
                ):
                    continue
                yield event


# --- webhooks -----------------------------------------------------------------------------------


@strawberry.type
class Webhook:
    url: str
    created_at: datetime

    @strawberry.field
    def id(self, root: strawberry.Parent[tables.Webhook]) -> strawberry.ID:
        return strawberry.ID(encode_id("webhook", cast(int, root.id)))

    @strawberry.field
    def device_ids(self, root: strawberry.Parent[tables.Webhook]) -> list[strawberry.ID] | None:
        if root.device_ids is None:
            return None
        return [strawberry.ID(encode_id("device", i)) for i in root.device_ids]

    @strawberry.field
    def kinds(self, root: strawberry.Parent[tables.Webhook]) -> list[ChangeKind] | None:
        return None if root.kinds is None else [tables.ChangeKind(k) for k in root.kinds]


@strawberry.type
class WebhookDelivery:
    status: WebhookDeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime

    @strawberry.field
    def id(self, root: strawberry.Parent[tables.WebhookDelivery]) -> strawberry.ID:
        return strawberry.ID(encode_id("delivery", cast(int, root.id)))

    @strawberry.field
    def event_id(self, root: strawberry.Parent[tables.WebhookDelivery]) -> strawberry.ID:
        if root.event_id is None:  # a daily digest: its own id, as `X-CPL-Digest-Id` says it
            return strawberry.ID(encode_id("digest", cast(int, root.digest_id)))
        return strawberry.ID(encode_id("event", root.event_id))

    @strawberry.field
    async def kind(self, root: strawberry.Parent[tables.WebhookDelivery], info: Info) -> ChangeKind:
        if root.event_id is None:
            return tables.ChangeKind.DIGEST
        event = await info.context.loaders.event.load(root.event_id)
        return tables.ChangeKind(event.action)

    @strawberry.field
    async def webhook(self, root: strawberry.Parent[tables.WebhookDelivery], info: Info) -> Webhook:
        return await info.context.loaders.webhook.load(root.webhook_id)


WebhookDeliveryEdge, WebhookDeliveryConnection = connection_types(
    WebhookDelivery, "WebhookDelivery"
)


@strawberry.type
class RegisterWebhookSuccess:
    webhook: Webhook
    secret: str


@strawberry.type
class DeleteWebhookSuccess:
    webhook: Webhook


Errors = ValidationError | NotFoundError | ConflictError
RegisterWebhookPayload = Annotated[
    RegisterWebhookSuccess | Errors, strawberry.union("RegisterWebhookPayload")
]
DeleteWebhookPayload = Annotated[
    DeleteWebhookSuccess | Errors, strawberry.union("DeleteWebhookPayload")
]


@strawberry.input
class RegisterWebhookInput:
    url: str
    device_ids: list[strawberry.ID] | None = None
    kinds: list[ChangeKind] | None = None


@strawberry.input
class DeleteWebhookInput:
    id: strawberry.ID


def _error(failure: v.MutationFailure) -> ValidationError | NotFoundError | ConflictError:
    return ERROR_TYPES[failure.code](
        code=failure.code, message=failure.message, field=failure.field
    )


@strawberry.type
class WebhookQueries:
    @strawberry.field(directives=policy_directives("Query", "webhooks"))
    async def webhooks(self, info: Info) -> list[Webhook]:
        scope = row_scope(info.context.principal, "Query", "webhooks")
        rows = await webhook_admin.own_webhooks(info.context.db, scope)
        return cast(list[Webhook], rows)  # the table's rows: Strawberry reads their fields by name

    @strawberry.field(directives=policy_directives("Query", "webhookDeliveries"))
    async def webhook_deliveries(
        self,
        info: Info,
        webhook_id: strawberry.ID | None = None,
        status: WebhookDeliveryStatus | None = None,
        first: int | None = 50,
        after: str | None = None,
    ) -> WebhookDeliveryConnection:  # type: ignore[valid-type]  # connection_types() makes the class at import
        webhook_pk = None
        if webhook_id is not None:
            # An id that names no webhook of yours gives an empty page, never someone else's.
            webhook_pk = decode_id("webhook", webhook_id) or 0
        page = await webhook_admin.own_deliveries(
            info.context.db,
            row_scope(info.context.principal, "Query", "webhookDeliveries"),
            page_size(first),
            decode_cursor(after),
            webhook_id=webhook_pk,
            status=status,
        )
        return WebhookDeliveryConnection(page=page)


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(directives=policy_directives("Mutation", "registerWebhook"))
    async def register_webhook(
        self, info: Info, input: RegisterWebhookInput
    ) -> RegisterWebhookPayload:
        services = info.context.services
        principal = info.context.principal
        device_ids = _device_ids(input.device_ids)
        try:
            url = await check_url(input.url, services.settings)

            async def register(work: Work) -> tables.Webhook:
                return await webhook_admin.register(work, url, device_ids, input.kinds)

            scope = row_scope(principal, "Mutation", "registerWebhook")
            webhook = await services.writes.run(principal, scope, register, cpl=False)
        except v.MutationFailure as failure:
            return _error(failure)
        return RegisterWebhookSuccess(webhook=webhook, secret=webhook.secret)

    @strawberry.mutation(directives=policy_directives("Mutation", "deleteWebhook"))
    async def delete_webhook(self, info: Info, input: DeleteWebhookInput) -> DeleteWebhookPayload:
        principal = info.context.principal
        webhook_id = decode_id("webhook", input.id)

        async def remove(work: Work) -> tables.Webhook:
            return await webhook_admin.remove(work, webhook_id)

        scope = row_scope(principal, "Mutation", "deleteWebhook")
        try:
            webhook = await info.context.services.writes.run(principal, scope, remove, cpl=False)
        except v.MutationFailure as failure:
            return _error(failure)
        return DeleteWebhookSuccess(webhook=webhook)
