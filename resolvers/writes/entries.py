"""A CPL entry as MP231 submits it, and whom to contact about a manufacturer's firmware.

`addFirmware` takes, besides the firmware, the published entry's facts and the submission's
word on the earlier versions that can be upgraded to it: their versions (`upgradableFrom`),
their CPL entry ids (`upgradableFromEntries`), or "N/A" (`noEarlierVersion: true`). The named
versions become PUBLISHED pathways into the new firmware, in the same unit of work, each with
its own PATHWAY_PUBLISHED event; nothing named: NOT_SUPPLIED. `setFirmwareContact` sets the
Firmware Information Repository's contact of a manufacturer: by the manufacturer itself or
SECAS (the row scope of the device writers' rule). A manufacturer has no history of its own
(the audit log is of devices, firmware and pathways), so the contact has none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import Device, Firmware, Manufacturer, PredecessorStatement, UpgradePathway
from resolvers.writes import entry_rules, events
from resolvers.writes import validation as v
from resolvers.writes import write_rules as rules
from resolvers.writes.entry_rules import EntryFacts
from resolvers.writes.unit_of_work import Work
from resolvers.writes.validation import NotAllowed


@dataclass(frozen=True, slots=True)
class Entry:
    """A new firmware's entry, checked: its facts, its statement and the firmware that can be
    upgraded to it (each once, as named)."""

    facts: EntryFacts
    statement: PredecessorStatement
    predecessors: list[Firmware] = field(default_factory=list)

    def row_values(self) -> tuple[EntryFacts, PredecessorStatement]:
        return self.facts, self.statement


def _listed(values: list[str] | None, field_name: str) -> list[str]:
    if values is not None and not values:
        raise v.invalid(
            field_name,
            f'{field_name} is empty: list at least one, or send noEarlierVersion: true for "N/A".',
        )
    return values or []


async def submitted(
    session: AsyncSession,
    device: Device,
    version: str,
    firmware: Mapping[str, Firmware],
    submission: Mapping[str, Any],
) -> Entry:
    """The entry of `version`, a new firmware of `device` (`firmware`: its others by version),
    from the input's fields: facts validated, its entry id unique, the earlier versions it
    names found among the device's own."""
    certificate = submission.get("cpa_certificate")
    facts = entry_rules.entry_facts(
        cpl_entry_id=submission.get("cpl_entry_id"),
        gbcs_version=submission.get("gbcs_version"),
        smets_chts_version=submission.get("smets_chts_version"),
        cpa_reference=certificate.reference if certificate is not None else None,
        cpa_expires_on=certificate.expires_on if certificate is not None else None,
        zigbee_stack_version=submission.get("zigbee_stack_version"),
    )
    if facts.cpl_entry_id is not None and await _by_entry(session, facts.cpl_entry_id):
        raise v.conflict("cplEntryId", f"CPL entry {facts.cpl_entry_id} is already on the CPL.")
    found: dict[int, Firmware] = {}
    for given in _listed(submission.get("upgradable_from"), "upgradableFrom"):
        earlier = v.firmware_version(given, "upgradableFrom")
        if earlier == version:
            raise v.invalid("upgradableFrom", "A firmware cannot be upgraded to from itself.")
        row = firmware.get(earlier)
        if row is None:
            raise v.not_found("upgradableFrom", f"Device has no firmware {earlier}.")
        found.setdefault(row.id, row)  # type: ignore[arg-type]  # a loaded row: its id is set
    for given in _listed(submission.get("upgradable_from_entries"), "upgradableFromEntries"):
        code = entry_rules.entry_id(given, "upgradableFromEntries")
        row = await _by_entry(session, code) if code is not None else None
        if row is None:
            raise v.not_found("upgradableFromEntries", f"No CPL entry {code or given!r}.")
        if row.device_id != device.id:
            raise v.invalid(
                "upgradableFromEntries",
                f"CPL entry {code} is firmware of another device; a pathway joins firmware "
                "of one device.",
            )
        found.setdefault(row.id, row)  # type: ignore[arg-type]  # a loaded row: its id is set
    statement = entry_rules.statement(bool(found), submission.get("no_earlier_version"))
    return Entry(facts, statement, list(found.values()))


async def _by_entry(session: AsyncSession, code: str) -> Firmware | None:
    return (await session.exec(select(Firmware).where(Firmware.cpl_entry_id == code))).first()


async def publish_predecessors(
    work: Work, firmware: Firmware, predecessors: list[Firmware]
) -> None:
    """A PUBLISHED pathway from each firmware named into the new one, with its event. The
    pathway rules hold by construction: both ends are the device's, the new firmware is ACTIVE
    and new (no pathway reaches it yet, none leaves it, so none repeats and none closes a
    cycle), and it was refused as its own predecessor."""
    assert firmware.id is not None  # flushed by the caller
    made = []
    for earlier in predecessors:
        assert earlier.id is not None  # a loaded row
        row = rules.pathway_row(
            firmware.device_id, earlier.id, firmware.id, None, work.principal.party_id
        )
        pathway = UpgradePathway(**row)
        work.session.add(pathway)
        made.append((pathway, row, earlier.version))
    await work.session.flush()
    for pathway, row, from_version in made:
        assert pathway.id is not None  # flushed above
        work.log.append(events.pathway_published(pathway.id, row, from_version, firmware.version))


async def owned_manufacturer(work: Work, manufacturer_id: int | None) -> Manufacturer:
    """A manufacturer by id, once the caller's row scope covers it."""
    row = (
        await work.session.exec(select(Manufacturer).where(col(Manufacturer.id) == manufacturer_id))
    ).first()
    if row is None:
        raise v.not_found("manufacturerIdentifier", "No manufacturer with that identifier.")
    if not work.scope.allows(row.identifier):
        raise NotAllowed()
    return row


async def set_firmware_contact(
    work: Work, *, manufacturer_identifier: str, firmware_contact: str
) -> Manufacturer:
    identifier = v.identifier(manufacturer_identifier, "manufacturerIdentifier")
    if not work.scope.allows(identifier):
        raise NotAllowed()
    contact = entry_rules.firmware_contact(firmware_contact)
    row = (
        await work.session.exec(select(Manufacturer).where(Manufacturer.identifier == identifier))
    ).first()
    if row is None:
        raise v.not_found("manufacturerIdentifier", "No manufacturer with that identifier.")
    row.firmware_contact = contact
    await work.session.flush()
    return row


__all__ = [
    "Entry",
    "owned_manufacturer",
    "publish_predecessors",
    "set_firmware_contact",
    "submitted",
]
