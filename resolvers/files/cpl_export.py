"""`cpl-pathways export`: the CPL and its pathways as files (CSV, or XLSX as the import takes
too) in the import's own columns.

An export imports back unchanged: the same columns, rows in the order of addition (so a fresh
database importing them keeps which firmware is latest), values as they are stored. The
SSC-only columns stay empty unless the operator asks for them; empty means "leave as is" to the
import, so a public export never clears anything. An export that fills them is a read of the
SSC-only values like any other: its entry in the SSC access log (the operator as actor, the
exported devices) is committed before a row is written. Pathways are the PUBLISHED ones a plan can
use: a pathway to withdrawn firmware leads nowhere a meter may go, and publishing one is
refused, so it is left out rather than exported as a row that could never be imported.
For the same reason `previous_cpl_entry_ids` lists, for ACTIVE firmware whose submission
listed them, the entries its PUBLISHED pathways start from (those with an entry id); "N/A" for
a submission that said so; empty otherwise (which the import reads as "leave as is").
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from datetime import date
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import aliased
from sqlmodel.ext.asyncio.session import AsyncSession

from models.appender import appender_for
from models.codes import NOT_APPLICABLE
from models.tables import (
    Device,
    Firmware,
    FirmwareStatus,
    Manufacturer,
    PathwayStatus,
    PredecessorStatement,
)
from models.tables import UpgradePathway as Pathway
from permissions.ssc_access import AccessLog, Operator, SscReads
from resolvers.files.cpl_files import (
    CPL_COLUMNS,
    PATHWAY_COLUMNS,
    SSC_COLUMNS,
    write_csv,
    write_xlsx,
)
from resolvers.files.import_prerequisites import prerequisite_cells

_MANUFACTURER: sa.Table = Manufacturer.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
_DEVICE: sa.Table = Device.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
_FIRMWARE: sa.Table = Firmware.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
_PATHWAY: sa.Table = Pathway.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
_DEVICE_ORDER = (
    _MANUFACTURER.c.identifier,
    _DEVICE.c.model_identifier,
    _DEVICE.c.hardware_version,
)


def _cell(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, date):
        return value.isoformat()
    return value


def _devices_statement(include_ssc: bool) -> sa.Select[Any]:
    hidden = sa.null()
    columns = {
        "manufacturer_identifier": _MANUFACTURER.c.identifier,
        "manufacturer_name": _MANUFACTURER.c.name,
        "device_type": _DEVICE.c.device_type,
        "model_identifier": _DEVICE.c.model_identifier,
        "model_name": _DEVICE.c.model_name,
        "hardware_version": _DEVICE.c.hardware_version,
        "zigbee_band": _DEVICE.c.zigbee_band,
        # SSC-only values are not even read unless asked for.
        "zigbee_stack_version": _DEVICE.c.zigbee_stack_version if include_ssc else hidden,
        "zigbee_chipset_vendor": _DEVICE.c.zigbee_chipset_vendor if include_ssc else hidden,
        "firmware_version": _FIRMWARE.c.version,
        "firmware_status": _FIRMWARE.c.status,
        "image_hash": _FIRMWARE.c.image_hash,
        "added_to_cpl_on": _FIRMWARE.c.added_to_cpl_on,
        "cpl_entry_id": _FIRMWARE.c.cpl_entry_id,
        "gbcs_version": _FIRMWARE.c.gbcs_version,
        "smets_chts_version": _FIRMWARE.c.smets_chts_version,
        "cpa_certificate_reference": _FIRMWARE.c.cpa_certificate_reference,
        "cpa_certificate_expires_on": _FIRMWARE.c.cpa_certificate_expires_on,
        "previous_cpl_entry_ids": _FIRMWARE.c.predecessors,  # made a cell by `_previous`
        "firmware_zigbee_stack_version": _FIRMWARE.c.zigbee_stack_version
        if include_ssc
        else hidden,
        "firmware_contact": _MANUFACTURER.c.firmware_contact,
        "prerequisites": sa.null(),  # made a cell by `prerequisite_cells`
    }
    assert tuple(columns) == CPL_COLUMNS
    assert include_ssc or all(columns[c] is hidden for c in SSC_COLUMNS)
    return (
        # The firmware's id and the device's last: for the previous entries and the access log.
        sa.select(*columns.values(), _FIRMWARE.c.id, _DEVICE.c.id)
        .select_from(
            _DEVICE.join(_MANUFACTURER, _MANUFACTURER.c.id == _DEVICE.c.manufacturer_id).outerjoin(
                _FIRMWARE, _FIRMWARE.c.device_id == _DEVICE.c.id
            )
        )
        .order_by(*_DEVICE_ORDER, _FIRMWARE.c.added_to_cpl_on, _FIRMWARE.c.id)
    )


_PREVIOUS = CPL_COLUMNS.index("previous_cpl_entry_ids")
_STATUS = CPL_COLUMNS.index("firmware_status")
_PREREQUISITES = CPL_COLUMNS.index("prerequisites")


def _previous_statement() -> sa.Select[Any]:
    """(firmware id, entry id) of each PUBLISHED pathway into a firmware from one with an
    entry id, in the order published."""
    start = aliased(_FIRMWARE)
    return (
        sa.select(_PATHWAY.c.to_firmware_id, start.c.cpl_entry_id)
        .select_from(_PATHWAY.join(start, start.c.id == _PATHWAY.c.from_firmware_id))
        .where(_PATHWAY.c.status == PathwayStatus.PUBLISHED, start.c.cpl_entry_id.is_not(None))
        .order_by(_PATHWAY.c.id)
    )


def _previous(row: Any, listed: dict[int, list[str]]) -> str | None:
    """A firmware's previous-entries cell (`row`: the devices statement's)."""
    statement = row[_PREVIOUS]
    if statement is PredecessorStatement.NONE_EARLIER:
        return NOT_APPLICABLE
    if statement is PredecessorStatement.LISTED and row[_STATUS] is FirmwareStatus.ACTIVE:
        return ";".join(listed.get(row[-2], [])) or None
    return None


def _pathways_statement() -> sa.Select[Any]:
    start = aliased(_FIRMWARE)
    end = aliased(_FIRMWARE)
    return (
        sa.select(
            _MANUFACTURER.c.identifier,
            _DEVICE.c.model_identifier,
            _DEVICE.c.hardware_version,
            start.c.version,
            end.c.version,
            _PATHWAY.c.notes,
        )
        .select_from(
            _PATHWAY.join(_DEVICE, _DEVICE.c.id == _PATHWAY.c.device_id)
            .join(_MANUFACTURER, _MANUFACTURER.c.id == _DEVICE.c.manufacturer_id)
            .join(start, start.c.id == _PATHWAY.c.from_firmware_id)
            .join(end, end.c.id == _PATHWAY.c.to_firmware_id)
        )
        .where(
            _PATHWAY.c.status == PathwayStatus.PUBLISHED,
            end.c.status == FirmwareStatus.ACTIVE,
        )
        # By the firmware they lead to, as MP231 lists them: the same order in a database that
        # imported this export (its firmware added in the same order), then as published.
        .order_by(*_DEVICE_ORDER, end.c.added_to_cpl_on, end.c.id, _PATHWAY.c.id)
    )


async def export(
    sessions: async_sessionmaker[AsyncSession],
    what: str,
    out: IO[Any],
    *,
    include_ssc: bool,
    actor: Operator,
    xlsx: bool = False,
) -> int:
    """Write `devices` (a CPL file) or `pathways` to `out`, as CSV (text) or, with `xlsx`, as
    a workbook (bytes); returns how many rows. `actor` is who the SSC access log names when
    the SSC-only columns are filled (raises `AccessLogUnavailable`, having written nothing, if
    the entry cannot be committed)."""
    if what == "devices":
        columns, statement = CPL_COLUMNS, _devices_statement(include_ssc)
    elif what == "pathways":
        columns, statement = PATHWAY_COLUMNS, _pathways_statement()
    else:
        raise ValueError(f"nothing to export called {what!r}")
    listed: dict[int, list[str]] = {}
    required: dict[int, str] = {}
    async with sessions() as session:
        rows = (await session.exec(statement)).all()  # type: ignore[call-overload]  # exec() types only sqlmodel's select()
        if what == "devices":
            for to_id, entry in await session.exec(_previous_statement()):  # type: ignore[call-overload]  # exec() types only sqlmodel's select()
                listed.setdefault(to_id, []).append(entry)
            required = await prerequisite_cells(session)
    if what == "devices" and include_ssc:
        reads = SscReads(
            fields={
                "Device.zigbeeStackVersion",
                "Device.zigbeeChipsetVendor",
                "Firmware.zigbeeStackVersion",
            },
            device_ids={row[-1] for row in rows},
            operation_name="cpl-pathways export devices --include-ssc",
        )
        log = AccessLog(appender_for(sessions.kw["bind"]))  # the log's own connection there
        try:
            await log.record(actor, reads)
        finally:
            await log.close()

    def cells() -> Iterator[list[Any]]:
        for row in rows:
            found = [_cell(value) for value in row[: len(columns)]]
            if what == "devices":
                found[_PREVIOUS] = _previous(row, listed) if row[-2] is not None else None
                found[_PREREQUISITES] = required.get(row[-2])
            yield found

    if xlsx:
        return write_xlsx(out, columns, cells(), title=what)
    return write_csv(out, columns, cells())
