"""Global IDs and opaque cursors.

An ID names its type (`device:12`), so an id of one kind can never be used as another's.
A cursor is opaque on purpose: clients pass it back and must not build one.
"""

from __future__ import annotations

import base64
import binascii
import re

from graphql import GraphQLError

from resolvers.reads.paging import MAX_KEY, is_row, row_point

BAD_USER_INPUT = "BAD_USER_INPUT"


def encode_id(kind: str, pk: int) -> str:
    return f"{kind}:{pk}"


DIGITS = re.compile(r"[0-9]{1,10}")


def _key(number: str) -> int | None:
    if not DIGITS.fullmatch(number) or int(number) > MAX_KEY:
        return None
    return int(number)


def decode_id(kind: str, value: str) -> int | None:
    """The primary key in an id of `kind`, or None when the id is not one of that kind."""
    prefix, _, number = value.strip().partition(":")
    return _key(number) if prefix == kind else None


def encode_cursor(point: int) -> str:
    """A cursor for a point of `resolvers.reads.paging`: a row (`after:<id>`, as cursors have
    always been written) or the gap after a row (`gap:<id>`, which an empty page names)."""
    text = f"after:{point // 2}" if is_row(point) else f"gap:{point // 2}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The point a cursor names; BAD_USER_INPUT for anything this API did not write."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    prefix, _, number = raw.partition(":")
    key = _key(number) if prefix in ("after", "gap") else None
    if key is None:
        raise GraphQLError("Invalid cursor.", extensions={"code": BAD_USER_INPUT})
    return row_point(key) if prefix == "after" else row_point(key) + 1
