"""The authenticated caller, as every later layer sees it."""

from __future__ import annotations

import enum
from dataclasses import dataclass


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
