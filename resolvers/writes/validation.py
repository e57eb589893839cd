"""Input formats of the CPL, checked before anything is written.

Values are accepted in any case and stored upper case. A failure names the offending field and
never echoes the value, so an SSC-only value cannot come back in an error message.
"""

from __future__ import annotations

import re
from typing import Literal, overload

from models.codes import IDENTIFIER_DIGITS, IMAGE_HASH_DIGITS, VERSION_DIGITS, hex_code

MAX_NAME = 200
MAX_ZIGBEE_TEXT = 100
MAX_NOTES = 4000
MAX_REASON = 2000
MAX_IDEMPOTENCY_KEY = 200


class MutationFailure(Exception):
    """A request the caller can fix or must reconsider; becomes a MutationError payload."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class NotAllowed(Exception):
    """The caller may run this mutation, but not for this manufacturer's devices."""


def invalid(field: str, message: str) -> MutationFailure:
    return MutationFailure("VALIDATION", message, field)


def not_found(field: str, message: str) -> MutationFailure:
    return MutationFailure("NOT_FOUND", message, field)


def conflict(field: str | None, message: str) -> MutationFailure:
    return MutationFailure("CONFLICT", message, field)


def _hex(value: str, digits: int, field: str, what: str) -> str:
    code = hex_code(value.strip(), digits)
    if code is None:
        raise invalid(field, f"{field} must be {what}.")
    return code


def identifier(value: str, field: str) -> str:
    return _hex(value, IDENTIFIER_DIGITS, field, "4 hex digits")


def firmware_version(value: str, field: str) -> str:
    return _hex(value, VERSION_DIGITS, field, "8 hex digits")


def image_hash(value: str | None, field: str = "imageHash") -> str | None:
    if value is None:
        return None
    return _hex(value, IMAGE_HASH_DIGITS, field, "64 hex digits (SHA-256)")


CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@overload
def text(value: str | None, field: str, limit: int, *, required: Literal[True]) -> str: ...
@overload
def text(value: str | None, field: str, limit: int, *, required: bool = False) -> str | None: ...
def text(value: str | None, field: str, limit: int, *, required: bool = False) -> str | None:
    """Trimmed text of at most `limit` characters, without control characters (line breaks and
    tabs allowed); blank counts as missing."""
    trimmed = value.strip() if value is not None else None
    if trimmed and CONTROL.search(trimmed):
        raise invalid(field, f"{field} must not contain control characters.")
    if not trimmed:
        if required:
            raise invalid(field, f"{field} is required.")
        return None
    if len(trimmed) > limit:
        raise invalid(field, f"{field} must be at most {limit} characters.")
    return trimmed
