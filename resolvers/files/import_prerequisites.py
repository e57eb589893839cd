"""The CPL file's optional `prerequisites` column: what a row's firmware needs at a premises,
declared by the import as `declarePrerequisite` declares it (`resolvers.writes.prerequisites`:
the same rules, rows and change builder), in the import's unit of work.

A cell holds prerequisites separated by `;`, each a device type, a colon, then either firmware
by device identifiers and version, separated by `,` (`CHF: 0E3F/1888/0100=6D080202,
0E3F/1888/0100=76080102`: a CHF running any of them) or a GBCS version (`CHF: GBCS v4.0`). The
firmware named may be on the CPL already or added by the same file. A prerequisite already
PUBLISHED is left as it is, so importing a file again writes nothing; an empty cell (or no
column) changes nothing, and the import never withdraws one (`withdrawPrerequisite` does).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.database import insert_rows
from models.tables import (
    Device,
    DeviceType,
    Firmware,
    FirmwareStatus,
    Manufacturer,
    PathwayStatus,
    Prerequisite,
)
from resolvers.files.cpl_files import Row
from resolvers.files.import_problems import Problems
from resolvers.planning.premises_rules import gbcs_key, gbcs_text
from resolvers.writes import events
from resolvers.writes import prerequisites as rules
from resolvers.writes import validation as v
from resolvers.writes.unit_of_work import Work

COLUMN = "prerequisites"
SYNTAX = (
    "prerequisites must be <device type>: <firmware>, ... or <device type>: GBCS <version>, "
    "several separated by ';', a firmware as 0E3F/1888/0100=6D080202."
)
_PREREQUISITE: sa.Table = Prerequisite.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
_KEY_COLUMNS = (
    "manufacturer_identifier",
    "model_identifier",
    "hardware_version",
    "firmware_version",
)
Key = tuple[str, str, str]  # a device's identifiers
FirmwareKey = tuple[Key, str]  # and a firmware's version


@dataclass(frozen=True)
class Declared:
    """One prerequisite the import declares: its firmware, the type and firmware it needs."""

    row: int
    firmware: FirmwareKey
    wanted: DeviceType
    required: tuple[FirmwareKey, ...] | None
    gbcs: str | None


@dataclass(frozen=True)
class _Known:
    """A firmware the file may name: on the CPL (with its id), or added by the file."""

    device_type: DeviceType
    active: bool
    id: int | None


def _parse(cell: str) -> list[tuple[DeviceType, list[FirmwareKey] | None, str | None]] | None:
    found: list[tuple[DeviceType, list[FirmwareKey] | None, str | None]] = []
    for part in cell.split(";"):
        if not part.strip():
            continue
        name, colon, rest = (text.strip() for text in part.partition(":"))
        if not colon or name.upper() not in DeviceType.__members__ or not rest:
            return None
        wanted = DeviceType[name.upper()]
        if rest.lower().startswith("gbcs"):
            found.append((wanted, None, rest[4:].strip()))
            continue
        named: list[FirmwareKey] = []
        for firmware in rest.split(","):
            device, equals, version = (text.strip().upper() for text in firmware.partition("="))
            keys = [key.strip() for key in device.split("/")]
            if not equals or len(keys) != 3 or not version:
                return None
            named.append(((keys[0], keys[1], keys[2]), version))
        found.append((wanted, named, None))
    return found


async def _known(session: AsyncSession) -> dict[FirmwareKey, _Known]:
    rows = await session.exec(
        select(  # type: ignore[call-overload]  # sqlmodel's select() types at most 4 columns
            Manufacturer.identifier,
            Device.model_identifier,
            Device.hardware_version,
            Firmware.version,
            Device.device_type,
            Firmware.status,
            Firmware.id,
        )
        .join(Device, col(Device.id) == Firmware.device_id)
        .join(Manufacturer, col(Manufacturer.id) == Device.manufacturer_id)
    )
    return {
        ((m, model, hw), version): _Known(kind, status is FirmwareStatus.ACTIVE, pk)
        for m, model, hw, version, kind, status, pk in rows
    }


async def _existing(session: AsyncSession, known: dict[FirmwareKey, _Known]) -> set[Any]:
    """The PUBLISHED prerequisites, keyed as the file's are compared with them (`_key`)."""
    by_id = {found.id: key for key, found in known.items()}
    rows = await session.exec(
        select(Prerequisite).where(Prerequisite.status == PathwayStatus.PUBLISHED)
    )
    found = set()
    for row in rows:
        named = [by_id[pk] for pk in row.requires_firmware_ids or ()]
        gbcs = row.requires_gbcs_version
        found.add(_key(by_id[row.firmware_id], row.requires_device_type, named or None, gbcs))
    return found


def _key(
    owner: FirmwareKey, wanted: DeviceType, named: list[FirmwareKey] | None, gbcs: str | None
) -> tuple[Any, ...]:
    required = tuple(sorted(set(named))) if named is not None else None
    return owner, wanted, required, gbcs_key(gbcs)


def _owner(row: Row) -> FirmwareKey | None:
    """The firmware a row names, as the import normalises it (None when it names none)."""
    parts = [row.get(name) for name in _KEY_COLUMNS]
    if any(part is None for part in parts):
        return None
    m, model, hw, version = (cast(str, part).strip().upper() for part in parts)
    return (m, model, hw), version


async def plan_prerequisites(
    session: AsyncSession, rows: list[tuple[int, Row]], plan: Any
) -> list[Declared]:
    """Check the column against the CPL as it is and the file's own devices and firmware
    (`plan`: the CPL import's `CplPlan`, whose problems and changes it adds to), and return what
    it would declare."""
    cells = [(number, row, cell) for number, row in rows if (cell := row.get(COLUMN))]
    if not cells:
        return []
    known = await _known(session)
    types = {key: found.device_type for (key, _), found in known.items()}
    types |= {key: fields["deviceType"] for key, fields in plan.devices}
    for new in plan.firmware:
        known.setdefault((new.key, new.version), _Known(types[new.key], not new.withdrawn, None))
    declared = await rules.declared_types(session)
    existing = await _existing(session, known)
    problems: Problems = plan.problems
    found: list[Declared] = []
    for number, row, cell in cells:
        parsed = _parse(cell)
        owner = _owner(row)
        if parsed is None:
            problems.add(number, SYNTAX)
            continue
        if owner is None or owner not in known:
            continue  # the row's own problems say why it names no firmware
        for wanted, named, gbcs in parsed:
            if not _valid(problems, number, known, owner, wanted, named, gbcs, declared):
                continue
            key = _key(owner, wanted, named, gbcs)
            if key in existing:
                continue  # already PUBLISHED, or twice in the file
            existing.add(key)
            declared.append((known[owner].device_type.value, wanted.value))
            found.append(Declared(number, owner, wanted, key[2], gbcs))
            plan.note(
                "prerequisites declared",
                f"declare a {wanted.value} prerequisite of firmware {_text([owner])}",
            )
    return found


def _valid(
    problems: Problems,
    number: int,
    known: dict[FirmwareKey, _Known],
    owner: FirmwareKey,
    wanted: DeviceType,
    named: list[FirmwareKey] | None,
    gbcs: str | None,
    declared: list[tuple[str, str]],
) -> bool:
    """The mutation's rules, each failure a problem of the row."""
    firmware = known[owner]
    status = FirmwareStatus.ACTIVE if firmware.active else FirmwareStatus.WITHDRAWN
    subject = SimpleNamespace(version=owner[1], status=status)
    try:
        if gbcs is not None:
            rules.requirement(None, gbcs)
        if len(named or ()) > rules.MAX_REQUIRED_FIRMWARE:
            raise v.invalid("prerequisites", f"{COLUMN} names too many firmware.")
        rules.check_declaration(firmware.device_type, subject, wanted, declared)
    except v.MutationFailure as failure:
        problems.add(number, f"{COLUMN}: {failure.message}")
        return False
    missing = [found for found in named or () if found not in known]
    if missing:
        problems.add(number, f"prerequisites names firmware not on the CPL: {_text(missing)}.")
        return False
    if any(known[found].device_type is not wanted for found in named or ()):
        problems.add(number, f"prerequisites must name firmware of {wanted.value} devices.")
        return False
    return True


def _text(firmware: Iterable[FirmwareKey]) -> str:
    return ", ".join(f"{'/'.join(key)} {version}" for key, version in firmware)


async def prerequisite_cells(session: AsyncSession) -> dict[int, str]:
    """The column's cell of each firmware with PUBLISHED prerequisites, by firmware id, as the
    import reads it (the export writes it, so an export imports back unchanged)."""
    names = {found.id: key for key, found in (await _known(session)).items()}
    rows = await session.exec(
        select(Prerequisite)
        .where(Prerequisite.status == PathwayStatus.PUBLISHED)
        .order_by(col(Prerequisite.id))
    )
    parts: dict[int, list[str]] = {}
    for row in rows:
        named = gbcs_text(row.requires_gbcs_version or "")
        if row.requires_firmware_ids is not None:
            found = (names[pk] for pk in row.requires_firmware_ids)
            named = ", ".join(f"{'/'.join(key)}={version}" for key, version in found)
        parts.setdefault(row.firmware_id, []).append(f"{row.requires_device_type.value}: {named}")
    return {firmware_id: "; ".join(found) for firmware_id, found in parts.items()}


async def apply_prerequisites(work: Work, declared: list[Declared]) -> None:
    """Declare them, once the file's devices and firmware are written."""
    if not declared:
        return
    known = await _known(work.session)
    rows = []
    for found in declared:
        owner = known[found.firmware]
        ids = sorted(cast(int, known[f].id) for f in found.required) if found.required else None
        rows.append(
            rules.prerequisite_row(
                cast(int, owner.id), found.wanted, ids, found.gbcs, work.principal.party_id
            )
        )
    pks = await insert_rows(work.session, _PREREQUISITE, rows)
    device_of = await _devices_of(work.session, [row["firmware_id"] for row in rows])
    for found, row, pk in zip(declared, rows, pks, strict=True):
        text = _text(found.required) if found.required else None
        change = events.prerequisite_declared(pk, device_of[row["firmware_id"]], row, text)
        work.log.append(change)


async def _devices_of(session: AsyncSession, firmware_ids: list[int]) -> dict[int, int]:
    rows = await session.exec(
        select(Firmware.id, Firmware.device_id).where(col(Firmware.id).in_(firmware_ids))
    )
    return {cast(int, pk): device_id for pk, device_id in rows}
