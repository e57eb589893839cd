"""`cpl-pathways import` refuses what would take the machine or forge the record: an XLSX file
that declares or holds more than it may, or expands to more than it may, is refused in one line
before its rows are read, in bounded memory; an `--actor` that is not a party id is a usage
error. Nothing is written either way (issue 24, rows 10 and 11)."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from resolvers.files.cpl_files import (
    XLSX_MAX_BYTES,
    XLSX_MAX_COLUMNS,
    XLSX_MAX_ROWS,
    XLSX_MAX_SHARED_STRINGS_BYTES,
)
from tests import test_cpl_import
from tests.test_cpl_import import CPL_HEADER, EXAMPLES, ROOT

db = test_cpl_import.db  # the same fixture: an empty migrated database, and the command

# A process that imports the example CPL peaks at about 80 MB; the shared-strings bomb below took
# 324 MB (and 15 s) before its parts' sizes were checked.
PEAK_BOUND_BYTES = 200 * 1024 * 1024


# The command as `python -m server.cli` runs it, writing its process's peak resident memory
# (VmHWM, of its own address space: a child's rusage counts the forking parent's too) to a file at
# exit.
MEASURED = (
    "import atexit, os, runpy, sys\n"
    "def peak():\n"
    "    lines = open('/proc/self/status').read().splitlines()\n"
    "    kb = next(line.split()[1] for line in lines if line.startswith('VmHWM:'))\n"
    "    open(os.environ['PEAK_FILE'], 'w').write(kb)\n"
    "atexit.register(peak)\n"
    "runpy.run_module('server.cli', run_name='__main__', alter_sys=True)\n"
)


def run(db, *args: str | Path, tmp_path: Path) -> tuple[int, str, int]:
    """Exit code, standard error and peak resident memory (bytes) of `cpl-pathways ARGS`."""
    peak = tmp_path / "peak.txt"
    result = subprocess.run(
        [sys.executable, "-c", MEASURED, *map(str, args)],
        cwd=ROOT,
        env={**db.env, "PEAK_FILE": str(peak)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.returncode, result.stderr, int(peak.read_text()) * 1024


def header_workbook() -> Workbook:
    workbook = Workbook()
    workbook.active.append(CPL_HEADER.split(","))
    return workbook


def rewritten(source: Path, target: Path, change, extra: dict[str, bytes] | None = None) -> Path:
    """A copy of the XLSX `source` with each part `change(name, data)`, and `extra` parts."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for part in old.infolist():
            new.writestr(part.filename, change(part.filename, old.read(part.filename)))
        for name, data in (extra or {}).items():
            new.writestr(name, data)
    return target


def with_shared_strings(source: Path, target: Path, count: int) -> Path:
    """A workbook whose shared-strings table holds `count` copies of one string: 24 bytes each
    expanded, a few KB on disk."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    relationship = (
        "http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"
    )
    content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"

    def change(name: str, data: bytes) -> bytes:
        if name == "[Content_Types].xml":
            override = f'<Override PartName="/xl/sharedStrings.xml" ContentType="{content_type}"/>'
            return data.replace(b"</Types>", override.encode() + b"</Types>")
        if name == "xl/_rels/workbook.xml.rels":
            rel = f'<Relationship Id="rIdS" Type="{relationship}" Target="sharedStrings.xml"/>'
            return data.replace(b"</Relationships>", rel.encode() + b"</Relationships>")
        return data

    strings = f'<sst xmlns="{main}">'.encode() + b"<si><t>abcdefgh</t></si>" * count + b"</sst>"
    return rewritten(source, target, change, {"xl/sharedStrings.xml": strings})


async def refused(db, path: Path, tmp_path: Path, reason: str) -> None:
    """The import of `path` exits 1 with one line naming `reason`, writes nothing, and its
    process stays within the memory bound."""
    before = await db.counts()
    code, stderr, peak = run(db, "import", path, tmp_path=tmp_path)
    assert code == 1, stderr
    assert stderr.splitlines() == [f"cpl-pathways import: {path.name}: {reason}; nothing written"]
    assert peak < PEAK_BOUND_BYTES, f"peak {peak:,} bytes"
    assert await db.counts() == before


async def test_a_sheet_declaring_every_row_and_column_is_refused_unread(db, tmp_path) -> None:
    workbook = header_workbook()
    workbook.active["XFD1048576"] = "x"  # the dimension becomes A1:XFD1048576: 5 KB on disk
    workbook.save(tmp_path / "dimension.xlsx")
    await refused(
        db,
        tmp_path / "dimension.xlsx",
        tmp_path,
        f"the sheet declares 1,048,576 rows of 16,384 columns; at most {XLSX_MAX_ROWS:,} rows "
        f"(and a header) of {XLSX_MAX_COLUMNS} columns are read",
    )


def undeclared(workbook: Workbook, path: Path) -> Path:
    """`workbook` saved at `path` without the size its sheet declares (as some writers do), so
    that only the rows and cells themselves can be bounded."""
    workbook.save(path.with_suffix(".declared.xlsx"))
    return rewritten(
        path.with_suffix(".declared.xlsx"),
        path,
        lambda name, data: (
            re.sub(rb"<dimension[^>]*/>", b"", data) if "worksheets" in name else data
        ),
    )


async def test_a_far_row_in_a_sheet_that_declares_no_size_is_refused(db, tmp_path) -> None:
    workbook = header_workbook()
    workbook.active["A1048576"] = "x"
    far = undeclared(workbook, tmp_path / "far.xlsx")
    await refused(db, far, tmp_path, f"the sheet has rows past row {XLSX_MAX_ROWS + 1:,}")


async def test_a_cell_past_the_last_column_is_refused(db, tmp_path) -> None:
    workbook = header_workbook()
    workbook.active.cell(row=2, column=XLSX_MAX_COLUMNS + 1, value="x")
    wide = undeclared(workbook, tmp_path / "wide.xlsx")
    await refused(db, wide, tmp_path, f"row 2 has cells past column {XLSX_MAX_COLUMNS}")


async def test_a_shared_strings_bomb_is_refused_before_it_is_expanded(db, tmp_path) -> None:
    header_workbook().save(tmp_path / "plain.xlsx")
    count = 1_600_000  # 40 MB expanded, under 100 KB on disk
    bomb = with_shared_strings(tmp_path / "plain.xlsx", tmp_path / "strings.xlsx", count)
    assert bomb.stat().st_size < 200_000
    with zipfile.ZipFile(bomb) as archive:
        size = archive.getinfo("xl/sharedStrings.xml").file_size
    reason = (
        f"the workbook's shared strings expand to {size:,} bytes; "
        f"at most {XLSX_MAX_SHARED_STRINGS_BYTES:,}"
    )
    await refused(db, bomb, tmp_path, reason)


async def test_a_workbook_expanding_past_the_total_bound_is_refused(db, tmp_path) -> None:
    header_workbook().save(tmp_path / "plain.xlsx")
    padding = b"<!-- -->" * (XLSX_MAX_BYTES // 8 + 1)  # an unreferenced part: still refused
    bomb = rewritten(
        tmp_path / "plain.xlsx", tmp_path / "big.xlsx", lambda _n, d: d, {"docProps/x.xml": padding}
    )
    with zipfile.ZipFile(bomb) as archive:
        total = sum(part.file_size for part in archive.infolist())
    reason = f"the workbook expands to {total:,} bytes; at most {XLSX_MAX_BYTES:,}"
    await refused(db, bomb, tmp_path, reason)


@pytest.mark.parametrize("actor", ["evil\nINFO forged", "x" * 300, " ", "tab\there"])
async def test_an_actor_that_is_no_party_id_is_a_usage_error(db, actor) -> None:
    before = await db.counts()
    for command in (["import", EXAMPLES / "cpl.csv"], ["export", "devices"]):
        result = db.cli(*command, "--actor", actor)
        stderr = result.stderr
        assert result.returncode == 2, stderr
        expected = (
            f"cpl-pathways {command[0]}: --actor must be printable text of 1 to 200 characters"
        )
        assert stderr.splitlines() == [expected]
    assert await db.counts() == before


async def test_an_actor_that_is_a_party_id_is_recorded_as_given(db) -> None:
    result = db.cli("import", EXAMPLES / "cpl.csv", "--actor", "secas-ops é")
    assert result.returncode == 0, result.stderr
    actors = await db.scalar("SELECT count(DISTINCT actor_party_id) FROM audit_event")
    assert actors == 1
    assert await db.scalar("SELECT min(actor_party_id) FROM audit_event") == "secas-ops é"
