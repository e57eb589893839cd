"""Descriptions of what tells the world of changes (the subscription, webhooks and their
deliveries) and of the SSC access log (keys: `schema.descriptions`)."""

from __future__ import annotations

from schema.descriptions.pages import connection, paged

SUBSCRIPTIONS = {
    "Subscription": "What may be followed over the WebSocket (graphql-transport-ws).",
    "Subscription.cplChanges": "Every committed change, optionally only for some devices or "
    "kinds, each sent once its transaction has committed.",
    "Subscription.cplChanges(deviceIds)": "Only changes to these devices (and their firmware "
    "and pathways); null: every device. Not empty.",
    "Subscription.cplChanges(kinds)": "Only changes of these kinds; null: every kind. Not empty.",
    "CplChange": "One committed change to the CPL.",
    "CplChange.eventId": "The change's id, `event:<number>`: the audit event's, and a webhook "
    "delivery's.",
    "CplChange.kind": "What the change did.",
    "CplChange.occurredAt": "When it was committed.",
    "CplChange.reason": "Why; hidden when the change set a value hidden from you.",
    "CplChange.device": "The device changed, or whose firmware or pathway was.",
    "CplChange.firmware": "The firmware changed; null when the change was not to firmware.",
    "CplChange.pathway": "The pathway changed; null when the change was not to a pathway.",
}

WEBHOOKS = {
    "Query.webhooks": "Your own webhooks.",
    "Query.webhookDeliveries": "Delivery attempts to your own webhooks, newest first.",
    "Query.webhookDeliveries(webhookId)": "Only deliveries to this webhook of yours (another "
    "Party's gives an empty page).",
    "Query.webhookDeliveries(status)": "Only deliveries in this status.",
    **paged("Query.webhookDeliveries"),
    "Mutation.registerWebhook": "Deliveries of future changes to your endpoint, signed with "
    "the secret.",
    "Mutation.registerWebhook(input)": "The endpoint, and which changes it wants.",
    "Mutation.deleteWebhook": "Stop deliveries to one of your webhooks.",
    "Mutation.deleteWebhook(input)": "The webhook to delete.",
    "RegisterWebhookInput": "An endpoint to deliver changes to.",
    "RegisterWebhookInput.url": "Where to POST each change: `https` (plain `http` to a "
    "loopback address only where the server allows it).",
    "RegisterWebhookInput.deviceIds": "Only changes to these devices; null: every device.",
    "RegisterWebhookInput.kinds": "Only changes of these kinds; null: every kind of change "
    "(a daily digest only when DIGEST is listed).",
    "DeleteWebhookInput": "The webhook to delete.",
    "DeleteWebhookInput.id": "Its id: `webhook:<number>`; another Party's is NOT_FOUND.",
    "RegisterWebhookSuccess": "The webhook registered, and its secret.",
    "RegisterWebhookSuccess.webhook": "The webhook as registered.",
    "RegisterWebhookSuccess.secret": "The signing secret: shown this once, keep it to verify "
    "X-CPL-Signature (or the Standard Webhooks headers).",
    "RegisterWebhookPayload": "What `registerWebhook` answers: RegisterWebhookSuccess, or an "
    "error saying why nothing was registered.",
    "DeleteWebhookSuccess": "The webhook deleted: nothing more is delivered to it.",
    "DeleteWebhookSuccess.webhook": "The webhook as it was.",
    "DeleteWebhookPayload": "What `deleteWebhook` answers: DeleteWebhookSuccess, or an error "
    "saying why nothing was deleted.",
    "Webhook": "An endpoint of yours that changes are delivered to.",
    "Webhook.id": "Its id: `webhook:<number>`.",
    "Webhook.url": "Where each change is POSTed.",
    "Webhook.deviceIds": "Only these devices; null means every device.",
    "Webhook.kinds": "Only these kinds; null means every kind.",
    "Webhook.createdAt": "When it was registered.",
    "WebhookDelivery": "One change's delivery to one webhook, retried until delivered or its "
    "horizon passes.",
    "WebhookDelivery.id": "Its id: `delivery:<number>`.",
    "WebhookDelivery.webhook": "The webhook it goes to.",
    "WebhookDelivery.eventId": "The event's id, the same in every retry: de-duplicate on it "
    "(a DIGEST delivery's: the digest's own id, `digest:N`).",
    "WebhookDelivery.kind": "What the change did; DIGEST for a daily digest.",
    "WebhookDelivery.status": "Where the delivery stands.",
    "WebhookDelivery.attempts": "How many times it was sent.",
    "WebhookDelivery.nextAttemptAt": "When it is sent next, while PENDING.",
    "WebhookDelivery.lastAttemptAt": "When it was last sent; null before the first attempt.",
    "WebhookDelivery.lastStatusCode": "The HTTP status the endpoint last answered; null when it "
    "could not be reached or was never tried.",
    "WebhookDelivery.lastError": "Why the last attempt failed, in one line; null when it did not.",
    "WebhookDelivery.deliveredAt": "When the endpoint accepted it (a 2xx); null until then.",
    "WebhookDelivery.createdAt": "When the change it announces committed, and the delivery "
    "was queued.",
    "WebhookDeliveryStatus": "Where a webhook delivery stands.",
    "WebhookDeliveryStatus.PENDING": "Not delivered yet: it is sent, or sent again, when due.",
    "WebhookDeliveryStatus.DELIVERED": "The endpoint answered 2xx.",
    "WebhookDeliveryStatus.FAILED": "Still failing when its horizon passed: no more attempts.",
    **connection("WebhookDelivery", "webhook deliveries"),
}

SSC_ACCESS = {
    "Query.sscAccessLog": "Who read, or filtered on, the SSC-only values, newest first: one "
    "entry for each operation.",
    **paged("Query.sscAccessLog"),
    "SscAccess": "One operation that read, or filtered on, an SSC-only value.",
    "SscAccess.occurredAt": "When the operation read them.",
    "SscAccess.actorPartyId": "The reader's Party id.",
    "SscAccess.actorSub": "The reader's subject (`sub`): the analyst, or `cli:<user>` for an "
    "export.",
    "SscAccess.operationName": "The operation's name, if it had one.",
    "SscAccess.fields": "The SSC-only fields read or filtered on, like "
    "`Device.zigbeeChipsetVendor` or `DeviceFilter.zigbeeStackVersion`.",
    "SscAccess.deviceIds": "The devices whose SSC-only values were read or filtered on.",
    **connection("SscAccess", "SSC access log entries"),
}

DESCRIPTIONS: dict[str, str] = {**SUBSCRIPTIONS, **WEBHOOKS, **SSC_ACCESS}
