"""Importing a pathways file: publish what is new, correct notes that changed.

Each new pathway is checked by the mutations' own graph rules (`write_rules.pathway_ends`)
against the device's published pathways and the file's earlier rows, so a file can neither
repeat a pathway nor close a cycle across rows. A pathway already published with the same
ends is left as it is, or has its notes corrected (through `correct_pathway` itself) when the
file gives different ones; an empty `notes` cell leaves them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from models.database import insert_rows
from models.tables import Device, Firmware, FirmwareStatus, Manufacturer, PathwayStatus
from models.tables import UpgradePathway as Pathway
from resolvers.files.cpl_files import Row
from resolvers.files.import_problems import Problems
from resolvers.writes import events
from resolvers.writes import mutations as writes
from resolvers.writes import validation as v
from resolvers.writes import write_rules as rules
from resolvers.writes.unit_of_work import Work

_PATHWAY: sa.Table = Pathway.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass

UNKNOWN_DEVICE = (
    "no device on the CPL has this manufacturer_identifier, model_identifier and hardware_version."
)


@dataclass(frozen=True, slots=True)
class FirmwareRef:
    id: int | None
    version: str
    status: FirmwareStatus


@dataclass
class _Correction:
    row: int
    pathway_id: int
    revision: int
    notes: str


@dataclass
class PathwayPlan:
    source: str
    problems: Problems = field(default_factory=Problems)
    changes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(
        default_factory=lambda: {"pathways published": 0, "pathway notes corrected": 0}
    )
    new: list[tuple[int, FirmwareRef, FirmwareRef, str | None]] = field(default_factory=list)
    corrections: list[_Correction] = field(default_factory=list)

    def note(self, kind: str, line: str) -> None:
        self.changes.append(line)
        self.counts[kind] = self.counts.get(kind, 0) + 1

    async def apply(self, work: Work) -> None:
        rows = [
            rules.pathway_row(device_id, start.id, end.id, notes, work.principal.party_id)  # type: ignore[arg-type]  # firmware read from the table: ids set
            for device_id, start, end, notes in self.new
        ]
        ids = await insert_rows(work.session, _PATHWAY, rows)
        work.log.extend(
            [
                events.pathway_published(pk, row, start.version, end.version)
                for pk, row, (_, start, end, _) in zip(ids, rows, self.new, strict=True)
            ]
        )
        for correction in self.corrections:
            await writes.correct_pathway(
                work,
                pathway_id=correction.pathway_id,
                expected_revision=correction.revision,
                reason=f"Notes corrected by the import of {self.source}",
                notes=correction.notes,
                from_version=None,
                to_version=None,
            )


async def plan_pathways(
    session: AsyncSession, rows: list[tuple[int, Row]], source: str
) -> PathwayPlan:
    plan = PathwayPlan(source)
    problems = plan.problems
    devices, firmware, published, existing = await _state(session)
    seen: dict[tuple[int, str, str], int] = {}
    for number, row in rows:
        check = problems.check
        key = (
            check(
                number, v.identifier, row["manufacturer_identifier"] or "", "manufacturerIdentifier"
            ),
            check(number, v.identifier, row["model_identifier"] or "", "modelIdentifier"),
            check(number, v.identifier, row["hardware_version"] or "", "hardwareVersion"),
        )
        from_version = check(number, v.firmware_version, row["from_version"] or "", "fromVersion")
        to_version = check(number, v.firmware_version, row["to_version"] or "", "toVersion")
        notes = check(number, v.text, row["notes"], "notes", v.MAX_NOTES)
        if problems.has(number) or from_version is None or to_version is None:
            continue
        device_id = devices.get(key)
        if device_id is None:
            problems.add(number, UNKNOWN_DEVICE)
            continue
        label = f"{from_version} → {to_version} of {' '.join(key)}"  # type: ignore[arg-type]  # a known device's key: each part is a str
        earlier = seen.setdefault((device_id, from_version, to_version), number)
        if earlier != number:
            problems.add(number, f"This pathway repeats row {earlier}.")
            continue
        versions = firmware.get(device_id, {})
        start, end = versions.get(from_version), versions.get(to_version)
        stored = existing.get((device_id, start.id, end.id)) if start and end else None
        if stored is not None:
            if notes is not None and notes != stored["notes"]:
                plan.corrections.append(
                    _Correction(number, stored["id"], stored["revision"], notes)
                )
                plan.note("pathway notes corrected", f"correct the notes of {label}")
            continue
        edges = published.setdefault(device_id, [])
        ends = check(number, rules.pathway_ends, versions, edges, from_version, to_version)
        if ends is not None:
            edges.append((None, ends[0].id, ends[1].id))  # later rows see it as published
            plan.new.append((device_id, ends[0], ends[1], notes))  # type: ignore[arg-type]  # the ends are Firmware rows given as FirmwareLike
            plan.note("pathways published", f"publish {label}")
    return plan


async def _state(session: AsyncSession) -> tuple[Any, Any, Any, Any]:
    """Devices by key, firmware by device and version, published pathways by device and by
    their ends: three statements, plain rows."""
    device: sa.Table = Device.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
    manufacturer: sa.Table = Manufacturer.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
    firmware_table: sa.Table = Firmware.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
    pathway = _PATHWAY
    rows = await session.exec(  # type: ignore[call-overload]  # exec() types only sqlmodel's select()
        sa.select(
            manufacturer.c.identifier,
            device.c.model_identifier,
            device.c.hardware_version,
            device.c.id,
        ).select_from(device.join(manufacturer, manufacturer.c.id == device.c.manufacturer_id))
    )
    devices = {(m, model, hardware): pk for m, model, hardware, pk in rows}
    firmware: dict[int, dict[str, FirmwareRef]] = {}
    rows = await session.exec(  # type: ignore[call-overload]  # exec() types only sqlmodel's select()
        sa.select(
            firmware_table.c.device_id,
            firmware_table.c.id,
            firmware_table.c.version,
            firmware_table.c.status,
        )
    )
    for device_id, pk, version, status in rows:
        firmware.setdefault(device_id, {})[version] = FirmwareRef(pk, version, status)
    published: dict[int, list[tuple[int | None, int, int]]] = {}
    existing: dict[tuple[int, int, int], dict[str, Any]] = {}
    rows = await session.exec(  # type: ignore[call-overload]  # exec() types only sqlmodel's select()
        sa.select(
            pathway.c.device_id,
            pathway.c.id,
            pathway.c.from_firmware_id,
            pathway.c.to_firmware_id,
            pathway.c.notes,
            pathway.c.revision,
        ).where(pathway.c.status == PathwayStatus.PUBLISHED)
    )
    for device_id, pk, from_id, to_id, notes, revision in rows:
        published.setdefault(device_id, []).append((pk, from_id, to_id))
        existing[(device_id, from_id, to_id)] = {"id": pk, "notes": notes, "revision": revision}
    return devices, firmware, published, existing
