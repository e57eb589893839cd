"""Webhook signing secrets and the signatures that let a receiver trust a delivery.

Every delivery is signed twice with the webhook's one secret: `X-CPL-Signature`, CPL's own
(a hex HMAC keyed with the whole secret string), and the `webhook-id`, `webhook-timestamp` and
`webhook-signature` headers of the Standard Webhooks specification, so receivers may verify
with its published libraries instead of code of their own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-CPL-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


def new_secret() -> str:
    """A signing secret, shown to the registering Party once: the prefix and the standard
    base64 of 32 random bytes, the form Standard Webhooks libraries read; the prefix also makes
    a leaked one recognisable to secret scanners."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The `X-CPL-Signature` header value: `t=<unix seconds>,v1=<hex HMAC-SHA256>`.

    The timestamp is inside the signed message so a captured request cannot be replayed later
    with a fresh `t`; receivers reject stale timestamps.
    """
    message = f"{timestamp}.".encode() + body
    mac = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def standard_key(secret: str) -> bytes | None:
    """The Standard Webhooks key of a secret: what follows the prefix, base64-decoded as the
    official Python library decodes it (characters outside the standard alphabet skipped,
    padding added), or None where that decoding fails.

    Secrets issued before these headers were URL-safe base64. About three in four of them still
    decode so, and their deliveries verify with that library as they are; the others cannot be
    read by it at all, and stricter libraries read none of them. Those deliveries carry no
    `webhook-signature` (a new registration gives a secret of the new form); `X-CPL-Signature`
    is the same for every secret.
    """
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX) + "==")
    except binascii.Error:
        return None
    return key or None


def message_id(event_id: int, webhook_id: int) -> str:
    """The `webhook-id`: one event to one webhook is one message, whatever the attempt, so a
    receiver can de-duplicate on it (it holds no `.`, which the signed message uses)."""
    return f"msg_event{event_id}_webhook{webhook_id}"


def delivery_subject(
    event_id: int | None, digest_id: int | None, webhook_id: int
) -> tuple[str, str, str]:
    """What a delivery is of, as its headers say it: (header, its id, `webhook-id`): an event
    it announces (`X-CPL-Event-Id`), or a daily digest (`X-CPL-Digest-Id`), one message each."""
    if event_id is not None:
        return "X-CPL-Event-Id", f"event:{event_id}", message_id(event_id, webhook_id)
    return "X-CPL-Digest-Id", f"digest:{digest_id}", f"msg_digest{digest_id}_webhook{webhook_id}"


def signature_headers(secret: str, body: bytes, timestamp: int, msg_id: str) -> dict[str, str]:
    """Every signature header of one attempt: CPL's own and the Standard Webhooks three, which
    sign `{webhook-id}.{webhook-timestamp}.{body}` as `v1,<base64 HMAC-SHA256>`."""
    headers = {
        SIGNATURE_HEADER: signature(secret, body, timestamp),
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
    }
    key = standard_key(secret)
    if key is not None:
        message = f"{msg_id}.{timestamp}.".encode() + body
        mac = hmac.new(key, message, hashlib.sha256).digest()
        headers["webhook-signature"] = "v1," + base64.b64encode(mac).decode("ascii")
    return headers
