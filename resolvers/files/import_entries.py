"""Importing a CPL file's entries: each firmware row's entry id and facts, MP231's previous
entries, and the manufacturers' firmware contacts.

A row's `previous_cpl_entry_ids` (ids separated by `;` or line breaks, or `N/A`) is its
submission: the entries named become PUBLISHED pathways into the row's firmware (each checked
by the mutations' own rules, `write_rules.pathway_ends`, across the file's rows too), "N/A"
says none can, an empty cell says nothing. An entry named may be on the CPL or anywhere in the
file. For firmware already on the CPL, an empty cell leaves its value; a fact that differs is
set with its history (FIRMWARE_DETAILS_CHANGED), but an entry id, once given, is never changed,
and a statement is only ever completed (NOT_SUPPLIED to either, "N/A" to a list), never taken
back. The SSC-only `firmware_zigbee_stack_version` is never echoed in a problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from models.codes import entry_id_code
from models.database import insert_rows
from models.tables import (
    Firmware,
    Manufacturer,
    PathwayStatus,
    PredecessorStatement,
    UpgradePathway,
)
from resolvers.files.cpl_columns import entry_ids
from resolvers.files.cpl_files import Row
from resolvers.files.import_pathways import FirmwareRef
from resolvers.files.import_problems import Problems
from resolvers.writes import entry_rules, events
from resolvers.writes import validation as v
from resolvers.writes import write_rules as rules
from resolvers.writes.change_log import Change
from resolvers.writes.entry_rules import FACT_COLUMNS, EntryFacts
from resolvers.writes.unit_of_work import Work

DeviceKey = tuple[str, str, str]
_PATHWAY: sa.Table = UpgradePathway.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
_MANUFACTURER: sa.Table = Manufacturer.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
_FIRMWARE: sa.Table = Firmware.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
PREVIOUS = "previous_cpl_entry_ids"
# The file's columns of a CPL entry's facts, by the firmware's column they set.
FACT_CELLS = {
    "cpl_entry_id": "cpl_entry_id",
    "gbcs_version": "gbcs_version",
    "smets_chts_version": "smets_chts_version",
    "cpa_certificate_reference": "cpa_certificate_reference",
    "cpa_certificate_expires_on": "cpa_certificate_expires_on",
    "zigbee_stack_version": "firmware_zigbee_stack_version",
}
ENTRY_COLUMNS = (*FACT_COLUMNS.values(), "predecessors")
COUNTED = ("firmware details set", "pathways published", "manufacturer contacts set")


@dataclass(frozen=True, slots=True)
class Cells:
    """A row's entry cells, checked: its facts (None where empty), its submission (`previous`:
    None for an empty cell, () for "N/A", else the entry ids) and its manufacturer's contact."""

    facts: EntryFacts
    previous: tuple[str, ...] | None
    contact: str | None


@dataclass(slots=True)
class _Submission:
    number: int
    key: DeviceKey
    target: FirmwareRef
    previous: tuple[str, ...]


@dataclass
class EntryPlan:
    """The entry part of a CPL file's plan (`import_devices.CplPlan` holds one)."""

    details: dict[int, tuple[int, dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    pathways: list[tuple[DeviceKey, FirmwareRef, FirmwareRef]] = field(default_factory=list)
    contacts: dict[str, str | None] = field(default_factory=dict)
    _contact_rows: dict[str, tuple[int, str]] = field(default_factory=dict)
    _submissions: list[_Submission] = field(default_factory=list)
    _entries: dict[str, tuple[int, DeviceKey, FirmwareRef]] = field(default_factory=dict)

    # --- reading the rows ----------------------------------------------------------------

    def parse(self, problems: Problems, number: int, row: Row) -> Cells | None:
        expires = None
        if row.get("cpa_certificate_expires_on") is not None:
            try:
                expires = date.fromisoformat(row["cpa_certificate_expires_on"] or "")
            except ValueError:
                problems.add(number, "cpa_certificate_expires_on must be a date as YYYY-MM-DD.")
        facts = problems.check(
            number,
            entry_rules.entry_facts,
            cpl_entry_id=row.get("cpl_entry_id"),
            gbcs_version=row.get("gbcs_version"),
            smets_chts_version=row.get("smets_chts_version"),
            cpa_reference=row.get("cpa_certificate_reference"),
            cpa_expires_on=expires,
            zigbee_stack_version=row.get("firmware_zigbee_stack_version"),
        )
        contact = problems.check(number, entry_rules.firmware_contact, row.get("firmware_contact"))
        cell = row.get(PREVIOUS)
        previous: tuple[str, ...] | None = None
        if cell is not None:
            listed = entry_ids(cell)
            previous = () if listed is None else tuple(listed)
            if listed == []:
                problems.add(
                    number, f"{PREVIOUS} names no entry; give ids, N/A, or leave it empty."
                )
        if facts is None:
            return None
        return Cells(facts, previous, contact)

    def contact(self, problems: Problems, number: int, manufacturer: str, cells: Cells) -> None:
        if cells.contact is None:
            return
        first = self._contact_rows.setdefault(manufacturer, (number, cells.contact))
        if first[1] != cells.contact:
            problems.add(number, f"firmware_contact differs from row {first[0]}'s.")

    @staticmethod
    def statement(cells: Cells | None) -> PredecessorStatement:
        """What a new firmware's row says of its predecessors."""
        if cells is None or cells.previous is None:
            return PredecessorStatement.NOT_SUPPLIED
        return PredecessorStatement.LISTED if cells.previous else PredecessorStatement.NONE_EARLIER

    def new_firmware(
        self, problems: Problems, number: int, key: DeviceKey, target: FirmwareRef, cells: Cells
    ) -> None:
        """A row adding firmware (`target`, its id a stand-in until it is written)."""
        self._name(problems, number, key, target, cells.facts.cpl_entry_id)
        if cells.previous:
            self._submissions.append(_Submission(number, key, target, cells.previous))

    def known_firmware(
        self,
        problems: Problems,
        number: int,
        key: DeviceKey,
        known: dict[str, Any],
        target: FirmwareRef,
        cells: Cells,
    ) -> str | None:
        """A row naming firmware on the CPL: the details it sets (a change line), or None."""
        given = {column: getattr(cells.facts, column) for column in FACT_COLUMNS.values()}
        given = {column: value for column, value in given.items() if value is not None}
        stored_id = known["cpl_entry_id"]
        if "cpl_entry_id" in given and stored_id is not None and given["cpl_entry_id"] != stored_id:
            problems.add(number, "cpl_entry_id differs from the CPL's; import does not change it.")
            return None
        self._name(problems, number, key, target, given.get("cpl_entry_id") or stored_id)
        statement = known["predecessors"]
        if cells.previous is not None:
            wanted = self.statement(cells)
            if statement is PredecessorStatement.LISTED and not cells.previous:
                problems.add(
                    number,
                    f"{PREVIOUS} says N/A, but the CPL lists earlier entries for this firmware; "
                    "import does not take them back.",
                )
                return None
            if statement is not PredecessorStatement.LISTED:
                given["predecessors"] = wanted
            if cells.previous:
                self._submissions.append(_Submission(number, key, target, cells.previous))
        after = {c: value for c, value in given.items() if value != known[c]}
        if not after:
            return None
        before = {column: known[column] for column in after}
        self.details[known["id"]] = (known["device_id"], before, after)
        named = ", ".join(_cell_name(column) for column in after)
        return f"set {named} of firmware {target.version} of {' '.join(key)}"

    def _name(
        self, problems: Problems, number: int, key: DeviceKey, target: FirmwareRef, code: str | None
    ) -> None:
        if code is None:
            return
        first = self._entries.setdefault(code, (number, key, target))
        if (first[1], first[2].id) != (key, target.id):
            problems.add(number, f"cpl_entry_id {code} repeats row {first[0]}'s.")

    # --- after every row ---------------------------------------------------------------

    async def resolve(
        self,
        session: AsyncSession,
        problems: Problems,
        plan: Any,
        stored_entries: dict[str, tuple[DeviceKey, FirmwareRef]],
        versions: dict[DeviceKey, dict[str, FirmwareRef]],
    ) -> None:
        """Entry ids unique across the CPL and the file; each submission's pathways checked
        (`versions`: every device's firmware, the file's with stand-in ids); the contacts
        that differ from the CPL's."""
        for code, (number, key, target) in self._entries.items():
            other = stored_entries.get(code)
            if other is not None and (other[0], other[1].id) != (key, target.id):
                problems.add(number, f"cpl_entry_id {code} is another firmware's on the CPL.")
        entries = {code: (key, target) for code, (_, key, target) in self._entries.items()}
        entries = {**stored_entries, **entries}
        published = await _published(session, versions)
        for submission in self._submissions:
            self._submit(problems, submission, entries, versions, published, plan)
        rows = await session.exec(  # type: ignore[call-overload]  # exec() types only sqlmodel's select()
            sa.select(_MANUFACTURER.c.identifier, _MANUFACTURER.c.firmware_contact)
        )
        manufacturers = dict(rows.all())
        for manufacturer, (_, contact) in self._contact_rows.items():
            if manufacturer not in manufacturers or manufacturers[manufacturer] != contact:
                self.contacts[manufacturer] = contact
                plan.note(
                    "manufacturer contacts set", f"set the firmware contact of {manufacturer}"
                )

    def _submit(
        self,
        problems: Problems,
        submission: _Submission,
        entries: dict[str, tuple[DeviceKey, FirmwareRef]],
        versions: dict[DeviceKey, dict[str, FirmwareRef]],
        published: dict[DeviceKey, list[tuple[int | None, int, int]]],
        plan: Any,
    ) -> None:
        number, key, target = submission.number, submission.key, submission.target
        edges = published.setdefault(key, [])
        for given in submission.previous:
            code = entry_id_code(given)
            found = entries.get(code) if code is not None else None
            if found is None:
                problems.add(
                    number, f"{PREVIOUS}: no CPL entry {given!r} on the CPL or in the file."
                )
                continue
            if found[0] != key:
                problems.add(number, f"{PREVIOUS}: {code} is an entry of another device.")
                continue
            start = found[1]
            if any((a, b) == (start.id, target.id) for _, a, b in edges):
                continue  # published already
            try:
                rules.pathway_ends(versions[key], edges, start.version, target.version)  # type: ignore[arg-type]  # a FirmwareRef is a read-only FirmwareLike
            except v.MutationFailure as failure:
                problems.add(number, f"{PREVIOUS}: {failure.message}")
                continue
            edges.append((None, start.id, target.id))  # type: ignore[arg-type]  # stand-in ids are ints
            self.pathways.append((key, start, target))
            label = f"{start.version} → {target.version} of {' '.join(key)}"
            plan.note("pathways published", f"publish {label}")

    # --- writing -------------------------------------------------------------------------

    async def apply(
        self,
        work: Work,
        device_ids: dict[DeviceKey, int],
        firmware_ids: dict[int, int],
        reason: str,
    ) -> list[Change]:
        """Write the details, pathways and contacts; `firmware_ids` maps stand-in ids to the
        new firmware's. Returns the changes to record."""
        session = work.session
        recorded: list[Change] = []
        for firmware_id, (device_id, before, after) in sorted(self.details.items()):
            await session.exec(
                sa.update(_FIRMWARE).where(_FIRMWARE.c.id == firmware_id).values(**after)
            )
            recorded.append(
                events.firmware_details_changed(
                    firmware_id, device_id, _history(before), _history(after), reason
                )
            )

        def real(ref: FirmwareRef) -> int:
            assert ref.id is not None  # stand-ins and stored rows alike
            return firmware_ids.get(ref.id, ref.id)

        rows = [
            rules.pathway_row(
                device_ids[key], real(start), real(end), None, work.principal.party_id
            )
            for key, start, end in self.pathways
        ]
        ids = await insert_rows(session, _PATHWAY, rows)
        recorded += [
            events.pathway_published(pk, row, start.version, end.version)
            for pk, row, (_, start, end) in zip(ids, rows, self.pathways, strict=True)
        ]
        for manufacturer, contact in sorted(self.contacts.items()):
            await session.exec(
                sa.update(_MANUFACTURER)
                .where(_MANUFACTURER.c.identifier == manufacturer)
                .values(firmware_contact=contact)
            )
        return recorded


_HISTORY = {column: name for name, column in FACT_COLUMNS.items()} | {
    "predecessors": "predecessors"
}


def _history(values: dict[str, Any]) -> dict[str, Any]:
    """Column values by the names the history uses (the CPA certificate as one field)."""
    named = {_HISTORY[column]: value for column, value in values.items()}
    reference = named.pop("cpaCertificateReference", None)
    expires = named.pop("cpaCertificateExpiresOn", None)
    if "cpa_certificate_reference" in values or "cpa_certificate_expires_on" in values:
        named["cpaCertificate"] = entry_rules.cpa_text(reference, expires)
    return named


_CELL_OF = {"predecessors": PREVIOUS} | {column: cell for column, cell in FACT_CELLS.items()}


def _cell_name(column: str) -> str:
    """A firmware column as the file names it."""
    return _CELL_OF.get(column, column)


async def _published(
    session: AsyncSession, versions: dict[DeviceKey, dict[str, FirmwareRef]]
) -> dict[DeviceKey, list[tuple[int | None, int, int]]]:
    """Each device's PUBLISHED pathways, as the pathway rules read them."""
    key_of = {ref.id: key for key, refs in versions.items() for ref in refs.values()}
    rows = await session.exec(  # type: ignore[call-overload]  # exec() types only sqlmodel's select()
        sa.select(_PATHWAY.c.id, _PATHWAY.c.from_firmware_id, _PATHWAY.c.to_firmware_id).where(
            _PATHWAY.c.status == PathwayStatus.PUBLISHED
        )
    )
    published: dict[DeviceKey, list[tuple[int | None, int, int]]] = {}
    for pk, from_id, to_id in rows:
        key = key_of.get(from_id)
        if key is not None:
            published.setdefault(key, []).append((pk, from_id, to_id))
    return published


__all__ = ["COUNTED", "ENTRY_COLUMNS", "Cells", "EntryPlan"]
