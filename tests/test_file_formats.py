"""Files in and out, row by row (issue 26, item 10): a row whose cells do not line up with the
header, or that holds a byte that is not UTF-8, is refused naming its row, in the CPL import and
the fleet file alike, never read with cells dropped, defaulted or replaced; the export writes
XLSX as the import reads it; and an export whose reader goes away ends quietly."""

from __future__ import annotations

import shutil
import subprocess

from openpyxl import Workbook, load_workbook

from resolvers.files.cpl_files import CPL_COLUMNS, PATHWAY_COLUMNS
from server.app import create_app
from server.cli import CLOSED_PIPE_STATUS
from tests import test_cpl_import, test_fleet_csv
from tests.live import CLI_PROCESS
from tests.test_cpl_import import CPL_HEADER, EXAMPLES, FORMULAS, PATHWAY_HEADER, ROOT, Database
from tests.test_fleet_csv import post_csv, rows

db = test_cpl_import.db  # an empty migrated database, and the command against it
examples = test_fleet_csv.examples  # an app's services over the example CPL
GOOD = "1A2B,Heronsgate Meters Ltd,ESME,2001,Heron ESME S1,0100,,,,7A000001,,,"


def refused_rows(result: subprocess.CompletedProcess) -> dict[int, str]:
    """The `row N: …` lines of a refused import, by row; its last line says nothing was
    written."""
    assert result.returncode == 1, result.stdout + result.stderr
    *lines, last = result.stderr.splitlines()
    assert "nothing written" in last, last
    return {int(line.split(":")[0].removeprefix("row ")): line for line in lines}


async def test_a_csv_row_with_more_or_fewer_cells_than_the_header_is_refused(db, tmp_path):
    assert db.cli("import", EXAMPLES / "cpl.csv").returncode == 0
    before = await db.counts()
    ragged = tmp_path / "ragged.csv"
    ragged.write_text(
        "\n".join(
            [
                CPL_HEADER,
                GOOD,
                GOOD.replace("7A000001", "7A000002") + ",extra",  # a cell more
                GOOD.replace("7A000001,,,", "7A000003,,"),  # a cell fewer
                ",".join([""] * 13),  # a blank row, as spreadsheets write one: skipped
                "1A2B,,,2001,,0100",  # six cells of thirteen: never "the rest left as is"
            ]
        )
        + "\n"
    )
    problems = refused_rows(db.cli("import", ragged))
    assert problems == {
        3: "row 3: the row has 14 cells and the header 13.",
        4: "row 4: the row has 12 cells and the header 13.",
        6: "row 6: the row has 6 cells and the header 13.",
    }
    assert await db.counts() == before
    pathways = tmp_path / "pathways.csv"
    pathways.write_text(f"{PATHWAY_HEADER}\n1A2B,2001,0100,3A000001,0D000004,notes,more\n")
    assert refused_rows(db.cli("import", pathways)) == {
        2: "row 2: the row has 7 cells and the header 6."
    }


async def test_a_value_the_header_does_not_name_is_refused_in_csv_and_xlsx(db, tmp_path):
    header = CPL_HEADER.split(",")
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(header)
    sheet.append(GOOD.split(","))
    sheet.append([*GOOD.replace("7A000001", "7A000002").split(","), "", "stray"])  # column 15
    sheet.append(GOOD.replace("7A000001", "7A000003").split(","))
    workbook.save(tmp_path / "stray.xlsx")
    assert refused_rows(db.cli("import", tmp_path / "stray.xlsx")) == {
        3: "row 3: the row has a value in column 15, past the header's last."
    }
    # A blank header cell names no column: a value under it is refused too, in either format.
    blank = tmp_path / "blank.csv"
    blank.write_text(f"{CPL_HEADER},,\n{GOOD},,\n{GOOD.replace('7A000001', '7A000002')},,x\n")
    assert refused_rows(db.cli("import", blank)) == {
        3: "row 3: the row has a value in column 15, which the header leaves blank."
    }
    assert (await db.counts())["firmware"] == 0


async def test_a_byte_that_is_not_utf8_is_named_by_its_row(db, tmp_path):
    assert db.cli("import", EXAMPLES / "cpl.csv").returncode == 0
    before = await db.counts()
    latin1 = GOOD.replace("7A000001", "7A000002").encode().replace(b"ESME S1", b"ESME S\xb9")
    bad = tmp_path / "latin1.csv"
    third = GOOD.replace("7A000001", "7A000003").encode()
    bad.write_bytes(b"\n".join([CPL_HEADER.encode(), GOOD.encode(), latin1, third]) + b"\n")
    assert refused_rows(db.cli("import", bad)) == {3: "row 3: model_name is not UTF-8 text."}
    assert await db.counts() == before  # nothing replaced and stored, nothing at all
    header = tmp_path / "header.csv"
    header.write_bytes(b"manufacturer_identifier\xff," + "\n".join([CPL_HEADER, GOOD]).encode())
    result = db.cli("import", header)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "cpl-pathways import: header.csv: the header is not UTF-8 text; nothing written"
    )


async def test_a_new_manufacturers_identifier_is_checked_like_any_other(db, tmp_path):
    """Found by nobody until issue 26: a new manufacturer's identifier must be 4 hex digits as
    a known one's is (`ZZZZ` would otherwise be stored as a manufacturer)."""
    new = tmp_path / "new.csv"
    row = "ZZZZ,Zed Meters,ESME,2001,Zed ESME,0100,,,,7A000001,,,"
    new.write_text(f"{CPL_HEADER}\n{row}\n{row.replace('ZZZZ', '9F9F')}\n")
    assert refused_rows(db.cli("import", new)) == {
        2: "row 2: manufacturer_identifier must be 4 hex digits."
    }
    assert await db.scalar("SELECT count(*) FROM manufacturer") == 0
    assert db.cli("import", "--dry-run", new).returncode == 1
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(f"{CPL_HEADER}\n{row.replace('ZZZZ', '9F9F')}\n")
    assert db.cli("import", fixed).returncode == 0
    assert await db.scalar("SELECT min(identifier) FROM manufacturer") == "9F9F"


async def test_the_fleet_file_names_a_bad_byte_by_its_row_wherever_it_is(examples, token):
    """A bad byte on row 3 spoils row 3, not the header; past the first piece of the body
    (20,000 rows on) it is a problem of its row too, never replaced and planned."""
    settings, services = examples
    app = create_app(settings, services)
    header = b"meter,manufacturer_identifier,model_identifier,hardware_version,firmware_version\n"
    good = b"m-%d,1A2B,2001,0100,3A000001\n"
    bad = b"m-\xff%d,1A2B,2001,0100,3A000001\n"
    early = header + good % 1 + bad % 2 + good % 3
    answered = rows(await post_csv(app, early, token("SMALL_SUPPLIER")))
    assert [row["meter"] for row in answered] == ["m-1", "", "m-3"]
    assert answered[1]["problem"] == "the row is not UTF-8 text; its cells could not be read"
    assert answered[0]["path"] == answered[2]["path"] == "3A000001>2B000002>0D000004"

    count = 25_000

    async def pieces():
        yield header + b"".join(good % i for i in range(count))
        yield bad % count + good % (count + 1)

    late = rows(await post_csv(app, pieces(), token("SMALL_SUPPLIER")))
    assert len(late) == count + 2
    assert [i for i, row in enumerate(late) if row["problem"]] == [count]
    assert late[count]["problem"] == "the row is not UTF-8 text; its cells could not be read"
    assert "\ufffd" not in str(late)

    spoilt = await post_csv(app, b"meter\xff,device_id,firmware_version\n", token("SSC"))
    assert spoilt.status_code == 400
    assert "the header is not UTF-8 text" in spoilt.json()["errors"][0]["message"]


async def test_an_xlsx_export_imports_back_unchanged_with_formulas_escaped(
    db, own_database, tmp_path
):
    """The demo CPL with would-be formulas in its cells, exported as XLSX, imported into an
    empty database and exported again as CSV, is the CSV the first database exports: the
    same columns and cells, every cell text, the formulas behind a `'` and none a formula."""
    source = Database(own_database, tmp_path / "source-data")
    await test_cpl_import.with_formulas(own_database)
    for what in ("devices", "pathways"):
        written = source.cli("export", what, "--include-ssc", "--output", tmp_path / f"{what}.xlsx")
        assert written.returncode == 0, written.stderr
        sheet = load_workbook(tmp_path / f"{what}.xlsx").worksheets[0]
        cells = [cell for row in sheet.iter_rows() for cell in row if cell.value is not None]
        assert all(cell.data_type == "s" for cell in cells)  # text: no formula, no number
        values = [cell.value for cell in cells]
        assert [cell.value for cell in sheet[1] if cell.value] == list(
            CPL_COLUMNS if what == "devices" else PATHWAY_COLUMNS
        )
        for formula in FORMULAS:
            assert f"'{formula}" in values
    for what in ("devices", "pathways"):
        imported = db.cli("import", tmp_path / f"{what}.xlsx")
        assert imported.returncode == 0, imported.stdout + imported.stderr
    for what in ("devices", "pathways"):
        assert db.cli("export", what, "--include-ssc").stdout == (
            source.cli("export", what, "--include-ssc").stdout
        )
    assert "0100" in str(list(load_workbook(tmp_path / "devices.xlsx").worksheets[0].values))


def test_an_export_whose_reader_has_gone_ends_quietly(own_database, tmp_path):
    """`cpl-pathways export devices | head`: the pipe closes before the rows are written. The
    command ends as a command that SIGPIPE ends does (status 141), saying nothing: no
    BrokenPipeError traceback."""
    source = Database(own_database, tmp_path / "data")
    process = subprocess.Popen(
        [*CLI_PROCESS, "export", "devices"],
        cwd=ROOT,
        env=source.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()  # the only reader goes before anything is written
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == CLOSED_PIPE_STATUS == 141
    assert stderr == ""
    pipeline = f"{' '.join(CLI_PROCESS)} export devices | head -n 1"
    shell = subprocess.run(
        [shutil.which("bash") or "/bin/bash", "-o", "pipefail", "-c", pipeline],
        cwd=ROOT,
        env=source.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shell.stdout == ",".join(CPL_COLUMNS) + "\n" and shell.stderr == ""
    assert shell.returncode in (0, CLOSED_PIPE_STATUS)  # 0 if the rows fit the pipe first
