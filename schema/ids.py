"""Global IDs and opaque cursors.

An ID names its type (`device:12`), so an id of one kind can never be used as another's.
A cursor is opaque on purpose: clients pass it back and must not build one.
"""

from __future__ import annotations

import base64
import binascii
import re

from graphql import GraphQLError

BAD_USER_INPUT = "BAD_USER_INPUT"


def encode_id(kind: str, pk: int) -> str:
    return f"{kind}:{pk}"


MAX_KEY = 2**31 - 1  # the primary keys are 32-bit integers on both databases
DIGITS = re.compile(r"[0-9]{1,10}")


def _key(number: str) -> int | None:
    if not DIGITS.fullmatch(number) or int(number) > MAX_KEY:
        return None
    return int(number)


def decode_id(kind: str, value: str) -> int | None:
    """The primary key in an id of `kind`, or None when the id is not one of that kind."""
    prefix, _, number = value.strip().partition(":")
    return _key(number) if prefix == kind else None


def encode_cursor(pk: int) -> str:
    return base64.urlsafe_b64encode(f"after:{pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    prefix, _, number = raw.partition(":")
    key = _key(number) if prefix == "after" else None
    if key is None:
        raise GraphQLError("Invalid cursor.", extensions={"code": BAD_USER_INPUT})
    return key
