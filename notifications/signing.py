"""Webhook signing secrets and the signatures that let a receiver trust a delivery."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-CPL-Signature"


def new_secret() -> str:
    """A signing secret, shown to the registering Party once; the prefix makes a leaked one
    recognisable to secret scanners."""
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The `X-CPL-Signature` header value: `t=<unix seconds>,v1=<hex HMAC-SHA256>`.

    The timestamp is inside the signed message so a captured request cannot be replayed later
    with a fresh `t`; receivers reject stale timestamps.
    """
    message = f"{timestamp}.".encode() + body
    mac = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"
