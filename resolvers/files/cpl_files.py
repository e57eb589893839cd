"""The CPL's file formats: their columns, and reading a CSV or XLSX file into rows.

A file's kind is told by its header, so one command imports either; the header may use the
published CPL's names or this project's (`resolvers.files.cpl_columns`). Rows are numbered as a
spreadsheet shows them (the header is row 1), so `row N` in a problem points at the line a
person would look at. Every cell is text, stripped; an empty cell is None ("leave as is").
"""

from __future__ import annotations

import csv
import datetime
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The columns, their aliases and the spellings of their values: `resolvers.files.cpl_columns`
# (the columns named here as well, for those who read them from this module).
from resolvers.files.cpl_columns import CPL_COLUMNS as CPL_COLUMNS
from resolvers.files.cpl_columns import KINDS, HeaderProblem, cell_value, layout
from resolvers.files.cpl_columns import PATHWAY_COLUMNS as PATHWAY_COLUMNS
from resolvers.files.cpl_columns import SSC_COLUMNS as SSC_COLUMNS

Row = dict[str, str | None]

# An XLSX file is a zip of XML parts, and a few KB of it can declare a sheet of a million rows
# or expand to gigabytes of shared strings (openpyxl holds those all in memory). The CPL is about
# 5,000 rows of 20 columns (about 2 MB of XML), so these bounds are generous; a file past any
# of them is refused before its rows are read (SECURITY.md: input bounds).
XLSX_MAX_ROWS = 100_000  # data rows, the header not counted
XLSX_MAX_COLUMNS = 64
XLSX_MAX_BYTES = 100_000_000  # every part together, uncompressed, as the zip declares them
XLSX_MAX_SHARED_STRINGS_BYTES = 16_000_000  # xl/sharedStrings.xml uncompressed


class FileProblem(Exception):
    """The file as a whole cannot be read: not UTF-8, no header, or a header of no known kind."""


@dataclass(frozen=True)
class Table:
    kind: str
    rows: list[tuple[int, Row]]
    """(row number as a spreadsheet shows it, cells by column)."""
    warnings: list[str] = field(default_factory=list)
    """What was read but ignored (columns of no kind), for the operator to see."""


def read_table(path: Path) -> Table:
    """The rows of a CPL or pathways file; XLSX by its suffix, CSV (UTF-8, BOM or not) else."""
    lines = _xlsx_lines(path) if path.suffix.lower() == ".xlsx" else _csv_lines(path)
    try:
        header = next(lines, None)
        if header is None:
            raise FileProblem("the file is empty; it needs a header row")
        try:
            found = layout(header)
        except HeaderProblem as problem:
            raise FileProblem(str(problem)) from None
        kind, columns = found.kind, found.columns
        rows: list[tuple[int, Row]] = []
        for number, cells in enumerate(lines, start=2):
            if not any(cell.strip() for cell in cells):
                continue
            row: Row = dict.fromkeys(KINDS[kind])
            for column, cell in zip(columns, cells, strict=False):
                if column:
                    text = unescape_cell(cell.strip())
                    row[column] = cell_value(column, text) if text else None
            rows.append((number, row))
    except UnicodeDecodeError:
        raise FileProblem("the file is not UTF-8 text") from None
    except csv.Error as error:
        raise FileProblem(f"the file is not valid CSV ({error})") from None
    return Table(kind, rows, found.warnings)


def _csv_lines(path: Path) -> Iterator[list[str]]:
    # utf-8-sig drops a byte-order mark when there is one (spreadsheets often write it).
    with path.open(encoding="utf-8-sig", newline="") as file:
        yield from csv.reader(file)


def _xlsx_lines(path: Path) -> Iterator[list[str]]:
    """The first sheet's rows, each `XLSX_MAX_COLUMNS` cells wide, read within the bounds."""
    from openpyxl import load_workbook

    _check_xlsx_parts(path)
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds for a file that is not XLSX
        reason = type(error).__name__
        raise FileProblem(f"the file is not a readable XLSX workbook ({reason})") from None
    try:
        sheet = workbook.worksheets[0]
        rows, columns = sheet.max_row or 0, sheet.max_column or 0
        if rows > XLSX_MAX_ROWS + 1 or columns > XLSX_MAX_COLUMNS:
            raise FileProblem(
                f"the sheet declares {rows:,} rows of {columns:,} columns; at most "
                f"{XLSX_MAX_ROWS:,} rows (and a header) of {XLSX_MAX_COLUMNS} columns are read"
            )
        # Read-only mode trusts the declared size to stop, and fills every gap up to a far-off
        # row with empty rows: the bounds are given instead (one past each, to notice them).
        sheet.reset_dimensions()
        lines = sheet.iter_rows(
            max_row=XLSX_MAX_ROWS + 2, max_col=XLSX_MAX_COLUMNS + 1, values_only=True
        )
        for number, values in enumerate(lines, start=1):
            if number > XLSX_MAX_ROWS + 1:
                raise FileProblem(f"the sheet has rows past row {XLSX_MAX_ROWS + 1:,}")
            if values[XLSX_MAX_COLUMNS] is not None:
                raise FileProblem(f"row {number} has cells past column {XLSX_MAX_COLUMNS}")
            yield [_cell_text(value) for value in values[:XLSX_MAX_COLUMNS]]
    finally:
        workbook.close()


def _check_xlsx_parts(path: Path) -> None:
    """Refuse a workbook whose parts expand past the bounds, from the sizes its zip declares
    (reading a part stops at its declared size, so they cannot lie), before any is read."""
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, ValueError):
        raise FileProblem("the file is not a readable XLSX workbook (not a zip)") from None
    total = sum(part.file_size for part in parts)
    if total > XLSX_MAX_BYTES:
        raise FileProblem(f"the workbook expands to {total:,} bytes; at most {XLSX_MAX_BYTES:,}")
    strings = sum(part.file_size for part in parts if part.filename.endswith("sharedStrings.xml"))
    if strings > XLSX_MAX_SHARED_STRINGS_BYTES:
        raise FileProblem(
            f"the workbook's shared strings expand to {strings:,} bytes; "
            f"at most {XLSX_MAX_SHARED_STRINGS_BYTES:,}"
        )


def _cell_text(value: Any) -> str:
    """A spreadsheet cell as the text a CSV would hold: dates ISO, whole numbers without `.0`."""
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return value.date().isoformat() if value.time() == datetime.time() else value.isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# A cell a spreadsheet would run as a formula (OWASP's CSV injection rule): it starts with one
# of these, maybe behind quotes this rule added. Written with one more leading `'`, read with
# one fewer, so what is escaped reads back as it was and nothing else is touched.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")
_ESCAPED = re.compile(r"'+[=+\-@\t\r]")


def escape_cell(cell: Any) -> Any:
    """A cell as a file the project writes holds it: a would-be formula behind a `'`."""
    return f"'{cell}" if isinstance(cell, str) and _FORMULA.match(cell) else cell


def unescape_cell(cell: str) -> str:
    """A cell as read: the one `'` that `escape_cell` put before a would-be formula removed."""
    return cell[1:] if _ESCAPED.match(cell) else cell


def write_csv(file: Any, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> int:
    """Write a header and rows (None as an empty cell, would-be formulas escaped); returns
    how many rows."""
    writer = csv.writer(file, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow(["" if cell is None else escape_cell(cell) for cell in row])
        count += 1
    return count
