"""The rules of a CPL entry's own facts and of MP231's submission, for the mutation and the
import alike.

A firmware row is a published CPL entry: its entry id (unique, any case in, upper case
stored), the GBCS and SMETS/CHTS versions it states, its CPA certificate (a reference and an
expiry) and, SSC only, the Zigbee stack it runs. Its submission says which earlier versions
can be upgraded to it (LISTED), that none can ("N/A": NONE_EARLIER), or nothing
(NOT_SUPPLIED). Failures are `MutationFailure`s naming the input field; the stack version is
never echoed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from models.codes import ENTRY_ID_LENGTH, entry_id_code
from models.tables import PredecessorStatement
from resolvers.writes import validation as v

MAX_GBCS = 20
MAX_SMETS_CHTS = 40
MAX_CPA_REFERENCE = 100
MAX_CONTACT = 500
# Audit names (the Firmware fields the history shows) and the columns behind them.
FACT_COLUMNS = {
    "cplEntryId": "cpl_entry_id",
    "gbcsVersion": "gbcs_version",
    "smetsChtsVersion": "smets_chts_version",
    "cpaCertificateReference": "cpa_certificate_reference",
    "cpaCertificateExpiresOn": "cpa_certificate_expires_on",
    "zigbeeStackVersion": "zigbee_stack_version",
}
SSC_FACTS = frozenset({"zigbeeStackVersion"})


def entry_id(value: str | None, field: str = "cplEntryId") -> str | None:
    """An entry id, upper case; None for none given."""
    if value is None or not value.strip():
        return None
    code = entry_id_code(value)
    if code is None:
        raise v.invalid(
            field,
            f"{field} must be 1 to {ENTRY_ID_LENGTH} letters, digits or -_./, starting with "
            "a letter or digit (and not N/A).",
        )
    return code


@dataclass(frozen=True, slots=True)
class EntryFacts:
    """A CPL entry's own facts, validated; None where not given."""

    cpl_entry_id: str | None = None
    gbcs_version: str | None = None
    smets_chts_version: str | None = None
    cpa_certificate_reference: str | None = None
    cpa_certificate_expires_on: date | None = None
    zigbee_stack_version: str | None = None

    def columns(self) -> dict[str, Any]:
        return {column: getattr(self, column) for column in FACT_COLUMNS.values()}


NO_FACTS = EntryFacts()


def entry_facts(
    *,
    cpl_entry_id: str | None,
    gbcs_version: str | None,
    smets_chts_version: str | None,
    cpa_reference: str | None,
    cpa_expires_on: date | None,
    zigbee_stack_version: str | None,
) -> EntryFacts:
    reference = v.text(cpa_reference, "cpaCertificate", MAX_CPA_REFERENCE)
    if cpa_expires_on is not None and reference is None:
        raise v.invalid("cpaCertificate", "cpaCertificate needs its reference with its expiry.")
    return EntryFacts(
        cpl_entry_id=entry_id(cpl_entry_id),
        gbcs_version=v.text(gbcs_version, "gbcsVersion", MAX_GBCS),
        smets_chts_version=v.text(smets_chts_version, "smetsChtsVersion", MAX_SMETS_CHTS),
        cpa_certificate_reference=reference,
        cpa_certificate_expires_on=cpa_expires_on,
        zigbee_stack_version=v.text(zigbee_stack_version, "zigbeeStackVersion", v.MAX_ZIGBEE_TEXT),
    )


def cpa_text(reference: str | None, expires_on: date | None) -> str | None:
    """A CPA certificate as its history shows it: the reference, and its expiry if it has one."""
    if reference is None:
        return None
    return f"{reference}, expires {expires_on.isoformat()}" if expires_on else reference


def public_history(row: Any) -> dict[str, Any]:
    """The public facts of a firmware row (a mapping of columns) as its history names them."""
    return {
        "cplEntryId": row.get("cpl_entry_id"),
        "gbcsVersion": row.get("gbcs_version"),
        "smetsChtsVersion": row.get("smets_chts_version"),
        "cpaCertificate": cpa_text(
            row.get("cpa_certificate_reference"), row.get("cpa_certificate_expires_on")
        ),
        "predecessors": row.get("predecessors"),
    }


def statement(listed: bool, no_earlier_version: bool | None) -> PredecessorStatement:
    """What a submission says of the earlier versions: LISTED when it names some, NONE_EARLIER
    for "N/A" (`noEarlierVersion: true`), else NOT_SUPPLIED. Both at once is refused."""
    if listed and no_earlier_version:
        raise v.invalid(
            "noEarlierVersion",
            "noEarlierVersion says no earlier version can be upgraded to this one; "
            "do not list earlier versions with it.",
        )
    if listed:
        return PredecessorStatement.LISTED
    return (
        PredecessorStatement.NONE_EARLIER
        if no_earlier_version
        else (PredecessorStatement.NOT_SUPPLIED)
    )


def firmware_contact(value: str | None) -> str | None:
    """A manufacturer's firmware contact (a name, an address, a URL): text; blank clears it."""
    return v.text(value, "firmwareContact", MAX_CONTACT)
