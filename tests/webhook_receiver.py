"""What a webhook receiver does with `X-CPL-Signature`, as the tests' receivers do it.

It is receiver code, so it lives with the tests rather than in the server: the README shows the
same check for receivers to copy.
"""

from __future__ import annotations

import hashlib
import hmac
import time


def verify_signature(
    secret: str,
    body: bytes,
    header: str,
    *,
    tolerance: int = 300,
    now: float | None = None,
) -> bool:
    """Whether `header` is a valid signature of the raw `body` made within `tolerance` seconds.

    Verify the exact bytes received, before parsing them, in constant time, and refuse old
    timestamps to stop replays. Several `v1` values are accepted so a future secret rotation
    can sign with old and new keys at once.
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
    message = f"{timestamp}.".encode() + body
    expected = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    # Compare against every candidate without stopping early, so timing says nothing.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    return matched
