"""Why a caller could not be authenticated, in words safe to log and to send back.

Its own module because every step of authentication raises these: reading the header, fetching
the issuer's keys (`permissions.keys`), checking the token (`permissions.tokens`) and reading the
SEC claims of a token or a sign-in (`permissions.claims`).
"""

from __future__ import annotations

__all__ = ["AuthenticationError", "KeysUnavailableError"]


class AuthenticationError(Exception):
    """The caller could not be authenticated.

    `reason` is a short fixed phrase ("token expired", "invalid signature", ...): it never quotes
    the token or any claim value, so it is safe to log and to return in a 401 response.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeysUnavailableError(AuthenticationError):
    """The issuer's keys could not be fetched (an IdP outage rather than a bad token).

    A subclass so callers that only care about "authenticated or not" need not distinguish it,
    while an HTTP layer may choose to answer 503 instead of 401.
    """

    def __init__(self, reason: str = "signing keys unavailable") -> None:
        super().__init__(reason)
