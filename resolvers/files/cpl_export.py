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

from models.tables import Device, Firmware, FirmwareStatus, Manufacturer, PathwayStatus
from models.tables import UpgradePathway as Pathway
from permissions.ssc_access import AccessLog, Operator, SscReads
from resolvers.files.cpl_files import (
    CPL_COLUMNS,
    PATHWAY_COLUMNS,
    SSC_COLUMNS,
    write_csv,
    write_xlsx,
)

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
    }
    assert tuple(columns) == CPL_COLUMNS
    assert include_ssc or all(columns[c] is hidden for c in SSC_COLUMNS)
    return (
        sa.select(*columns.values(), _DEVICE.c.id)  # the id last, for the access log
        .select_from(
            _DEVICE.join(_MANUFACTURER, _MANUFACTURER.c.id == _DEVICE.c.manufacturer_id).outerjoin(
                _FIRMWARE, _FIRMWARE.c.device_id == _DEVICE.c.id
            )
        )
        .order_by(*_DEVICE_ORDER, _FIRMWARE.c.added_to_cpl_on, _FIRMWARE.c.id)
    )


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
        .order_by(*_DEVICE_ORDER, _PATHWAY.c.id)
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
    async with sessions() as session:
        rows = (await session.exec(statement)).all()  # type: ignore[call-overload]  # exec() types only sqlmodel's select()
    if what == "devices" and include_ssc:
        reads = SscReads(
            fields={"Device.zigbeeStackVersion", "Device.zigbeeChipsetVendor"},
            device_ids={row[-1] for row in rows},
            operation_name="cpl-pathways export devices --include-ssc",
        )
        await AccessLog(sessions).record(actor, reads)

    def cells() -> Iterator[list[Any]]:
        for row in rows:
            yield [_cell(value) for value in row[: len(columns)]]

    if xlsx:
        return write_xlsx(out, columns, cells(), title=what)
    return write_csv(out, columns, cells())
