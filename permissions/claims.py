"""The SEC claims, checked the one way for bearer tokens, browser sign-ins and the development
issuer: a non-empty `party_id`, one of the seven `party_category` values and, for a MANUFACTURER,
a `manufacturer_id` of exactly four hex digits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from models.codes import IDENTIFIER_DIGITS, hex_code

from .auth_errors import AuthenticationError
from .principal import PartyCategory, Principal

__all__ = ["is_party_id", "normalise_manufacturer_id", "principal_from_claims"]

MAX_PARTY_ID_LENGTH: Final = 200  # the width of the actor columns of the audit log


def _storable(text: str) -> bool:
    """Fit for the audit log's actor columns: no NUL, no other control character and no lone
    surrogate, none of which PostgreSQL stores (a batch of access-log entries holding one would
    fail, and be retried, for ever)."""
    return text.isprintable()


def is_party_id(value: object) -> bool:
    """Whether `value` may be recorded as an actor's party id: non-blank printable text of at
    most `MAX_PARTY_ID_LENGTH` characters (a token's claim, or a command's `--actor`)."""
    return (
        isinstance(value, str)
        and bool(value.strip())
        and len(value) <= MAX_PARTY_ID_LENGTH
        and _storable(value)
    )


def normalise_manufacturer_id(value: object) -> str:
    """Return a manufacturer id as four upper-case hex digits, or raise `ValueError`."""
    # A claim is taken as sent: ASCII hex digits in either case and no spaces (for other text,
    # `upper()` could make hex digits of what are none, as it makes "FF" of the ligature "ﬀ").
    code = None
    if isinstance(value, str) and value.isascii():
        code = hex_code(value, IDENTIFIER_DIGITS)
    if code is None:
        raise ValueError("manufacturer_id must be exactly 4 hexadecimal digits")
    return code


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """The principal the SEC claims name, checked the one way for tokens and for sign-ins: a
    non-empty `sub` and `party_id`, a known `party_category`, and for a MANUFACTURER its
    `manufacturer_id` as four hex digits. Raises `AuthenticationError` otherwise."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise AuthenticationError("missing claims: sub")
    if len(sub) > MAX_PARTY_ID_LENGTH or not _storable(sub):
        raise AuthenticationError("invalid claims: sub")
    party_id = claims.get("party_id")
    if party_id is None:
        raise AuthenticationError("missing party_id")
    if not is_party_id(party_id):
        raise AuthenticationError("invalid claims: party_id")

    raw_category = claims.get("party_category")
    if raw_category is None:
        raise AuthenticationError("missing party_category")
    try:
        category = PartyCategory(raw_category)
    except (ValueError, TypeError):
        raise AuthenticationError("invalid claims: party_category") from None

    manufacturer_id: str | None = None
    if category is PartyCategory.MANUFACTURER:
        raw_mid = claims.get("manufacturer_id")
        if raw_mid is None or raw_mid == "":
            raise AuthenticationError("missing manufacturer_id")
        try:
            manufacturer_id = normalise_manufacturer_id(raw_mid)
        except ValueError:
            raise AuthenticationError("invalid claims: manufacturer_id") from None

    return Principal(
        sub=sub,
        party_id=party_id,
        party_category=category,
        manufacturer_id=manufacturer_id,
    )
