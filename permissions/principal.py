"""The authenticated caller, as every later layer sees it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class PartyCategory(enum.Enum):
    """SEC Party categories, the `party_category` claim of a token."""

    LARGE_SUPPLIER = "LARGE_SUPPLIER"
    SMALL_SUPPLIER = "SMALL_SUPPLIER"
    NETWORK_PARTY = "NETWORK_PARTY"
    OTHER_SEC_PARTY = "OTHER_SEC_PARTY"
    MANUFACTURER = "MANUFACTURER"
    SSC = "SSC"
    SECAS = "SECAS"


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified token's claims: nothing here comes from anywhere but a checked signature."""

    sub: str
    party_id: str
    party_category: PartyCategory
    manufacturer_id: str | None = None
    # When the credential stops being accepted (Unix seconds, leeway included); not part of who
    # the caller is, so two tokens of one caller give equal principals.
    expires_at: float | None = field(default=None, compare=False)
