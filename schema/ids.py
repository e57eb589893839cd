"""Global IDs and opaque cursors.

An ID names its type (`device:12`), so an id of one kind can never be used as another's.
A cursor is opaque on purpose: clients pass it back and must not build one.
"""

from __future__ import annotations

import base64
import binascii

from graphql import GraphQLError

BAD_USER_INPUT = "BAD_USER_INPUT"


def encode_id(kind: str, pk: int) -> str:
    return f"{kind}:{pk}"


def decode_id(kind: str, value: str) -> int | None:
    """The primary key in an id of `kind`, or None when the id is not one of that kind."""
    prefix, _, number = value.strip().partition(":")
    if prefix != kind or not number.isdigit() or len(number) > 18:
        return None
    return int(number)


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
    if prefix != "after" or not number.isdigit() or len(number) > 18:
        raise GraphQLError("Invalid cursor.", extensions={"code": BAD_USER_INPUT})
    return int(number)
