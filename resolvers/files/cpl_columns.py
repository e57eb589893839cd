"""The CPL file's columns as people write them: one table of header aliases, and the spellings
of the values a spreadsheet holds.

SECAS publishes the CPL as a spreadsheet with headers like "Manufacturer Identifier", "Model
Identifier", "Hardware Version" and "Firmware Version"; this project's own files say
`manufacturer_identifier`. A header is matched with its case, spaces and punctuation ignored
(`key`), so both, and "Manufacturer ID" or "manufacturer-identifier", name one column. A header
that names no column is reported as a warning and its cells ignored; only the columns that
identify a row are required, so a file may leave out any other (an absent column leaves the
stored values as they are, as an empty cell does). Values are read as people and spreadsheets
write them: bands as "2.4GHz" or "868 MHz", device types by their names, hex identifiers in any
case and re-padded where a spreadsheet made them numbers (`100` was the hardware version
`0100`), dates as ISO or as the UK writes them (`31/01/2024`). What is still not a valid value
after this is left for the import's own checks to refuse.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from models.codes import IDENTIFIER_DIGITS, VERSION_DIGITS
from models.tables import DeviceType, ZigbeeBand

# Each kind's columns, in the order an export writes them (the import takes any order).
CPL_COLUMNS: tuple[str, ...] = (
    "manufacturer_identifier",
    "manufacturer_name",
    "device_type",
    "model_identifier",
    "model_name",
    "hardware_version",
    "zigbee_band",
    "zigbee_stack_version",
    "zigbee_chipset_vendor",
    "firmware_version",
    "firmware_status",
    "image_hash",
    "added_to_cpl_on",
    "cpl_entry_id",
    "gbcs_version",
    "smets_chts_version",
    "cpa_certificate_reference",
    "cpa_certificate_expires_on",
    "previous_cpl_entry_ids",
    "firmware_zigbee_stack_version",
    "firmware_contact",
    "prerequisites",  # `resolvers.files.import_prerequisites`
)
PATHWAY_COLUMNS: tuple[str, ...] = (
    "manufacturer_identifier",
    "model_identifier",
    "hardware_version",
    "from_version",
    "to_version",
    "notes",
)
KINDS = {"cpl": CPL_COLUMNS, "pathways": PATHWAY_COLUMNS}
# What a file of each kind must have; every other column of the kind may be left out.
REQUIRED = {
    "cpl": ("manufacturer_identifier", "model_identifier", "hardware_version", "firmware_version"),
    "pathways": PATHWAY_COLUMNS[:5],
}
SSC_COLUMNS = frozenset(
    {"zigbee_stack_version", "zigbee_chipset_vendor", "firmware_zigbee_stack_version"}
)
"""Columns only SSC may read: never echoed in a problem, empty in an export unless asked."""


def key(header: str) -> str:
    """A header or a value as compared: lower case, letters and digits only."""
    return re.sub(r"[^0-9a-z]", "", header.lower())


# Every column's own name is an alias of itself; these are the others: the published CPL's
# headers as commonly written, and shorter forms people type.
_ALIASES: dict[str, tuple[str, ...]] = {
    "manufacturer_identifier": ("Manufacturer Identifier", "Manufacturer ID"),
    "manufacturer_name": ("Manufacturer Name", "Manufacturer"),
    "device_type": ("Device Type", "Type"),
    "model_identifier": ("Model Identifier", "Model ID"),
    "model_name": ("Model Name", "Model", "Device Model"),
    "hardware_version": ("Hardware Version", "HW Version"),
    "zigbee_band": ("Zigbee Band", "Frequency Band", "Band"),
    "zigbee_stack_version": ("Zigbee Stack Version", "Device Zigbee Stack Version"),
    "zigbee_chipset_vendor": ("Zigbee Chipset Vendor", "Chipset Vendor"),
    "firmware_version": ("Firmware Version", "FW Version"),
    "firmware_status": ("Firmware Status", "Status"),
    "image_hash": ("Firmware Image Hash", "Image Hash", "Firmware Hash", "Hash"),
    "added_to_cpl_on": ("Date Added to CPL", "Date Added", "Added to CPL"),
    "cpl_entry_id": ("CPL Entry ID", "CPL Entry Identifier", "Entry ID", "CPL ID"),
    "gbcs_version": ("GBCS Version",),
    "smets_chts_version": (
        "SMETS/CHTS Version",
        "SMETS Version",
        "CHTS Version",
        "Technical Specification Version",
    ),
    "cpa_certificate_reference": (
        "CPA Certificate",
        "CPA Certificate Reference",
        "CPA Certificate Number",
        "CPA Reference",
    ),
    "cpa_certificate_expires_on": (
        "CPA Certificate Expiry",
        "CPA Certificate Expiry Date",
        "CPA Expiry Date",
        "CPA Expiry",
    ),
    "previous_cpl_entry_ids": (
        "Previous CPL Entry IDs",
        "Previous CPL Entries",
        "Previous Entry IDs",
        "Upgradable From CPL Entries",
        "Upgradable From Entries",
    ),
    "firmware_zigbee_stack_version": ("Firmware Zigbee Stack Version",),
    "firmware_contact": ("Firmware Contact", "Manufacturer Firmware Contact", "Contact"),
    "prerequisites": ("Firmware Prerequisites", "Prerequisites at the Premises"),
    "from_version": ("From Version", "From Firmware Version"),
    "to_version": ("To Version", "To Firmware Version"),
    "notes": ("Notes", "Note"),
}


def _aliases() -> dict[str, str]:
    """The table by header key; an alias that would name two columns is an error here."""
    found: dict[str, str] = {}
    for column, aliases in _ALIASES.items():
        for alias in (column, *aliases):
            if found.setdefault(key(alias), column) != column:
                raise ValueError(f"the header {alias!r} would name two columns")
    assert set(found.values()) == set(CPL_COLUMNS) | set(PATHWAY_COLUMNS)
    return found


ALIASES = _aliases()


class HeaderProblem(Exception):
    """The header cannot be read as either kind of file."""


@dataclass(frozen=True)
class Layout:
    """A header read: the kind of file, each position's column (None: ignored) and warnings."""

    kind: str
    columns: list[str | None]
    warnings: list[str]


def layout(header: Iterable[str]) -> Layout:
    """The kind and columns of a header; raises `HeaderProblem` naming what is missing (or
    repeated), so a file is never read with its columns guessed."""
    cells = [cell.strip() for cell in header]
    named = [ALIASES.get(key(cell)) if key(cell) else None for cell in cells]
    found = [column for column in named if column is not None]
    repeated = sorted({column for column in found if found.count(column) > 1})
    if repeated:
        raise HeaderProblem(f"the header names column(s) more than once: {', '.join(repeated)}")
    kind = "pathways" if {"from_version", "to_version"} & set(found) else "cpl"
    missing = [column for column in REQUIRED[kind] if column not in found]
    if missing:
        raise HeaderProblem(
            f"the header is neither a CPL file's nor a pathways file's (missing column(s): "
            f"{', '.join(missing)})"
        )
    columns = [column if column in KINDS[kind] else None for column in named]
    ignored = [cell for cell, column in zip(cells, columns, strict=True) if cell and not column]
    warnings = [f"column {cell!r} is not a column of a {kind} file; ignored" for cell in ignored]
    return Layout(kind, columns, warnings)


# --- values ---------------------------------------------------------------------------------

_BANDS = {
    **{key(name): ZigbeeBand.BAND_2_4_GHZ for name in ("2.4GHz", "2.4 GHz", "2400MHz", "2.4")},
    **{key(name): ZigbeeBand.BAND_868_MHZ for name in ("868MHz", "868 MHz", "0.868GHz", "868")},
    **{
        key(name): ZigbeeBand.DUAL_BAND
        for name in (
            "Dual",
            "Dual Band",
            "2.4GHz and 868MHz",
            "2.4GHz & 868MHz",
            "2.4GHz/868MHz",
            "868MHz/2.4GHz",
            "868MHz and 2.4GHz",
            "Both",
        )
    },
    **{key(band.value): band for band in ZigbeeBand},
}
_DEVICE_TYPES = {
    **{key(kind.value): kind for kind in DeviceType},
    **{
        key(name): kind
        for kind, names in {
            DeviceType.ESME: ("Electricity Smart Metering Equipment", "Electricity Meter"),
            DeviceType.GSME: ("Gas Smart Metering Equipment", "Gas Meter"),
            DeviceType.CHF: ("Communications Hub Function", "Comms Hub", "Communications Hub"),
            DeviceType.GPF: ("Gas Proxy Function",),
            DeviceType.PPMID: ("Prepayment Meter Interface Device", "Prepayment Interface Device"),
            DeviceType.IHD: ("In-Home Display", "In Home Display"),
            DeviceType.HCALCS: ("HAN Connected Auxiliary Load Control Switch",),
            DeviceType.SAPC: ("Standalone Auxiliary Proportional Controller",),
        }.items()
        for name in names
    },
}
_HEX_WIDTHS = {
    "manufacturer_identifier": IDENTIFIER_DIGITS,
    "model_identifier": IDENTIFIER_DIGITS,
    "hardware_version": IDENTIFIER_DIGITS,
    "firmware_version": VERSION_DIGITS,
    "from_version": VERSION_DIGITS,
    "to_version": VERSION_DIGITS,
}
_UK_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_DATES = ("added_to_cpl_on", "cpa_certificate_expires_on")


def _hex(value: str, width: int) -> str:
    """A hex code as a spreadsheet may have mangled it: `0x` dropped, and a number shorter than
    the code re-padded with the zeros it lost (`100` → `0100`)."""
    code = value.strip()
    if code[:2].lower() == "0x":
        code = code[2:]
    return code.zfill(width) if code.isdigit() and len(code) < width else code


def cell_value(column: str, value: str) -> str:
    """A non-empty cell as the import checks it: its usual spellings made canonical."""
    if column in _HEX_WIDTHS:
        return _hex(value, _HEX_WIDTHS[column])
    if column == "zigbee_band":
        band = _BANDS.get(key(value))
        return band.value if band is not None else value
    if column == "device_type":
        kind = _DEVICE_TYPES.get(key(value))
        return kind.value if kind is not None else value
    if column in _DATES and (uk := _UK_DATE.fullmatch(value.strip())):
        day, month, year = uk.groups()
        return f"{year}-{int(month):02d}-{int(day):02d}"
    return value


NOT_APPLICABLE = ("N/A", "NA", "None")
_SEPARATORS = re.compile(r"[;\r\n]+")


def entry_ids(value: str) -> list[str] | None:
    """The previous-entries cell: its entry ids (separated by `;` or line breaks), or None for
    "N/A" (no earlier version can be upgraded to this entry)."""
    if key(value) in {key(word) for word in NOT_APPLICABLE}:
        return None
    return [part.strip() for part in _SEPARATORS.split(value) if part.strip()]
