"""The CPL's hex codes: one check of their format for every place that reads one.

Manufacturer identifiers, model identifiers and hardware versions are 4 hex digits, firmware
versions 8, image hashes 64; a CPL entry's id is an identifier of its own (`entry_id_code`).
They arrive in any case and are stored and compared upper case, so a check and its
normalisation are one step: a mutation, the file import, a fleet plan and a token's
`manufacturer_id` claim all call `hex_code`, and only what each says when it fails differs.
"""

from __future__ import annotations

import re

IDENTIFIER_DIGITS = 4
VERSION_DIGITS = 8
IMAGE_HASH_DIGITS = 64

_UPPER_HEX = re.compile(r"[0-9A-F]*")
# A CPL entry id: letters, digits and `-_./`, starting with a letter or digit, at most 40;
# stored upper case, so matched in any case. Never "N/A", which the files use for "none".
ENTRY_ID_LENGTH = 40
_ENTRY_ID = re.compile(r"[0-9A-Z][0-9A-Z._/-]{0,39}")
NOT_APPLICABLE = "N/A"


def hex_code(value: str, digits: int) -> str | None:
    """`value` upper case, if that is exactly `digits` hex digits; None otherwise.

    Surrounding spaces are the caller's to strip: a user's input may carry them, a token's claim
    may not."""
    code = value.upper()
    return code if len(code) == digits and _UPPER_HEX.fullmatch(code) else None


def entry_id_code(value: str) -> str | None:
    """A CPL entry id, stripped and upper case, if it is one; None otherwise."""
    code = value.strip().upper()
    return code if _ENTRY_ID.fullmatch(code) and code != NOT_APPLICABLE else None
