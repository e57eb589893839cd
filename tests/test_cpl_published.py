"""The CPL as SECAS publishes it (issue 27): its headers and spellings imported through one
alias table, MP231's previous entries read into pathways, entry facts set with their history,
and an export that imports back unchanged; on the backend under test, through the command."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import text

from models.database import create_engine, migrate
from resolvers.files import cpl_columns
from resolvers.files.cpl_files import FileProblem, read_table
from tests.harness import fresh_database
from tests.test_cpl_import import EXAMPLES, Database, write

PUBLISHED = EXAMPLES / "cpl-published.csv"
CONTACT = "CPL team, cpl@wrenfield.example, 0161 496 0000"
OWN_HEADER = ",".join(cpl_columns.CPL_COLUMNS)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with fresh_database(tmp_path) as url:
        engine = create_engine(url)
        await migrate(engine)
        await engine.dispose()
        yield Database(url, tmp_path / "data")


async def rows(db: Database, sql: str) -> list[tuple]:
    engine = create_engine(db.url)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(text(sql))]
    finally:
        await engine.dispose()


async def test_the_published_layout_fills_an_empty_database(db) -> None:
    result = db.cli("import", PUBLISHED)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "Imported cpl-published.csv (a CPL file, 9 rows): 1 manufacturers added, "
        "3 devices added, 9 firmware added, 1 firmware withdrawn, 6 pathways published, "
        "1 manufacturer contacts set.\n"
    )
    assert result.stderr == (
        "cpl-pathways import: cpl-published.csv: column 'Comments' is not a column of a cpl "
        "file; ignored\n"
    )
    assert await rows(db, "SELECT identifier, firmware_contact FROM manufacturer") == [
        ("5E6F", CONTACT)
    ]
    devices = await rows(
        db, "SELECT model_identifier, hardware_version, device_type, zigbee_band FROM device "
        "ORDER BY id",
    )  # fmt: skip
    assert devices == [
        ("4001", "0100", "ESME", "BAND_2_4_GHZ"),  # the hardware version a number made: 100
        ("4002", "0100", "GSME", "BAND_868_MHZ"),
        ("4003", "0200", "CHF", "DUAL_BAND"),
    ]
    firmware = await rows(
        db,
        "SELECT version, cpl_entry_id, predecessors, added_to_cpl_on, "
        "cpa_certificate_expires_on, status FROM firmware WHERE device_id = 1 ORDER BY id",
    )
    assert [f[:3] for f in firmware] == [
        ("10000001", "CPL-50101", "NONE_EARLIER"),
        ("10000002", "CPL-50102", "LISTED"),
        ("10000003", "CPL-50103", "LISTED"),
        ("10000004", "CPL-50104", "NOT_SUPPLIED"),
    ]
    assert str(firmware[0][3]) == "2021-03-01" and str(firmware[0][4]) == "2025-06-30"
    pathways = await rows(
        db,
        "SELECT s.cpl_entry_id, e.cpl_entry_id FROM upgrade_pathway p "
        "JOIN firmware s ON s.id = p.from_firmware_id JOIN firmware e ON e.id = p.to_firmware_id "
        "ORDER BY p.id",
    )
    assert pathways == [
        ("CPL-50101", "CPL-50102"),
        ("CPL-50101", "CPL-50103"),
        ("CPL-50102", "CPL-50103"),
        ("CPL-50201", "CPL-50203"),
        ("CPL-50202", "CPL-50203"),  # from the withdrawn firmware: its meters leave by it
        ("CPL-50301", "CPL-50302"),
    ]
    hashes = await rows(db, "SELECT image_hash FROM firmware")
    assert all(len(h) == 64 and h == h.upper() for (h,) in hashes)
    again = db.cli("import", PUBLISHED)
    assert again.stdout.startswith("Nothing to change"), again.stdout + again.stderr


async def test_an_export_of_it_imports_back_unchanged(db, tmp_path) -> None:
    assert db.cli("import", PUBLISHED).returncode == 0
    engine = create_engine(db.url)
    async with engine.begin() as connection:  # SSC-only values the public export leaves empty
        await connection.execute(
            text("UPDATE firmware SET zigbee_stack_version = 'ZB-PRO 2023 r23 p2' WHERE id = 3")
        )
        await connection.execute(text("UPDATE device SET zigbee_stack_version = 'ZB-PRO 2023'"))
    await engine.dispose()
    files = {}
    for what, flags in (("devices", ["--include-ssc"]), ("public", []), ("pathways", [])):
        files[what] = tmp_path / f"{what}.csv"
        kind = "pathways" if what == "pathways" else "devices"
        exported = db.cli("export", kind, *flags, "--output", files[what])
        assert exported.returncode == 0, exported.stderr
    header = files["public"].read_text().splitlines()[0]
    assert header == OWN_HEADER
    text_of = files["devices"].read_text()
    assert (
        "CPL-50103,4.1,SMETS2 v5.1,CPA-4001-C,2027-06-30,CPL-50101;CPL-50102,ZB-PRO 2023 r23 p2"
        in text_of
    )
    assert ",CPL-50101,3.2,SMETS2 v4.2,CPA-4001-A,2025-06-30,N/A,," in text_of
    assert "ZB-PRO" not in files["public"].read_text()
    before = await rows(db, "SELECT revision FROM data_revision")
    for what in ("devices", "public", "pathways"):
        result = db.cli("import", files[what])
        assert result.stdout.startswith("Nothing to change"), result.stdout + result.stderr
        assert result.stderr == ""  # its own columns: no warning
    assert await rows(db, "SELECT revision FROM data_revision") == before
    # The empty SSC-only cells of the public export cleared nothing.
    assert await rows(db, "SELECT zigbee_stack_version FROM firmware WHERE id = 3") == [
        ("ZB-PRO 2023 r23 p2",)
    ]
    # Into an empty database, and out again: the same files.
    async with fresh_database(tmp_path / "fresh") as url:
        engine = create_engine(url)
        await migrate(engine)
        await engine.dispose()
        fresh = Database(url, tmp_path / "fresh-data")
        for what in ("devices", "pathways"):
            result = fresh.cli("import", files[what])
            assert result.returncode == 0, result.stderr
        for what, flags in (("devices", ["--include-ssc"]), ("pathways", [])):
            again = fresh.cli("export", what, *flags)
            assert again.stdout == files[what].read_text(), what


async def test_previous_entries_must_name_entries_of_the_same_device(db, tmp_path) -> None:
    assert db.cli("import", PUBLISHED).returncode == 0
    header = "manufacturer_identifier,model_identifier,hardware_version,firmware_version,"
    header += "cpl_entry_id,previous_cpl_entry_ids"
    bad = write(
        tmp_path / "bad.csv",
        header,
        "5E6F,4001,0100,10000005,CPL-50105,CPL-59999",  # 2: no such entry
        "5E6F,4001,0100,10000006,CPL-50106,CPL-50201",  # 3: another device's
        "5E6F,4001,0100,10000007,CPL-50101,",  # 4: another firmware's entry id
        "5E6F,4001,0100,10000002,,N/A",  # 5: listed on the CPL: not taken back
        "5E6F,4001,0100,10000008,CPL-50108,CPL-50108",  # 6: its own
        "5E6F,4001,0100,10000009,CPL-50109,;",  # 7: no entry named
        '5E6F,4001,0100,1000000A,"CPL-5010A",CPL-50109',  # fine, but the file has problems
        "5E6F,4002,0100,20000004,CPL-5010A,N/A",  # 9: an entry id the file gave already
        "5E6F,4002,0100,20000005,bad id!,",  # 10: not an entry id
    )
    result = db.cli("import", bad)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[:-1] == [
        "row 2: previous_cpl_entry_ids: no CPL entry 'CPL-59999' on the CPL or in the file.",
        "row 3: previous_cpl_entry_ids: CPL-50201 is an entry of another device.",
        "row 4: cpl_entry_id CPL-50101 is another firmware's on the CPL.",
        "row 5: previous_cpl_entry_ids says N/A, but the CPL lists earlier entries for this "
        "firmware; import does not take them back.",
        "row 6: previous_cpl_entry_ids: A pathway cannot lead from a version to itself.",
        "row 7: previous_cpl_entry_ids names no entry; give ids, N/A, or leave it empty.",
        "row 9: cpl_entry_id CPL-5010A repeats row 8's.",
        "row 10: cpl_entry_id must be 1 to 40 letters, digits or -_./, starting with a letter "
        "or digit (and not N/A).",
    ]
    assert await rows(db, "SELECT count(*) FROM firmware") == [(9,)]


async def test_entries_listed_before_ids_were_kept_get_them_with_their_history(db, tmp_path):
    own = write(
        tmp_path / "old.csv",
        "manufacturer_identifier,manufacturer_name,device_type,model_identifier,model_name,"
        "hardware_version,firmware_version",
        "0A0A,Oldfield,ESME,0001,Oldfield ESME,0100,00000001",
        "0A0A,Oldfield,ESME,0001,Oldfield ESME,0100,00000002",
    )
    assert db.cli("import", own).returncode == 0
    assert await rows(db, "SELECT predecessors FROM firmware") == [("NOT_SUPPLIED",)] * 2
    published = write(
        tmp_path / "entries.csv",
        "Manufacturer ID,Model ID,HW Version,Firmware Version,CPL Entry ID,GBCS Version,"
        "Previous CPL Entry IDs,Firmware Zigbee Stack Version",
        "0a0a,1,100,1,OLD-1,3.2,n/a,",
        "0A0A,0001,0100,00000002,OLD-2,4.0,OLD-1,ZB-PRO 2017 r22 p1",
    )
    result = db.cli("import", published)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "Imported entries.csv (a CPL file, 2 rows): 2 firmware details set, 1 pathways published.\n"
    )
    assert await rows(
        db, "SELECT cpl_entry_id, gbcs_version, predecessors, zigbee_stack_version FROM firmware "
        "ORDER BY id",
    ) == [
        ("OLD-1", "3.2", "NONE_EARLIER", None),
        ("OLD-2", "4.0", "LISTED", "ZB-PRO 2017 r22 p1"),
    ]  # fmt: skip
    events = await rows(
        db, "SELECT action, reason FROM audit_event WHERE action <> 'FIRMWARE_ADDED' "
        "AND action <> 'DEVICE_ADDED' ORDER BY id",
    )  # fmt: skip
    assert events == [
        ("FIRMWARE_DETAILS_CHANGED", "CPL import of entries.csv"),
        ("FIRMWARE_DETAILS_CHANGED", "CPL import of entries.csv"),
        ("PATHWAY_PUBLISHED", None),
    ]
    # An entry id, once given, is not changed; a dry run says what it would set.
    changed = write(
        tmp_path / "changed.csv",
        "Manufacturer ID,Model ID,HW Version,Firmware Version,CPL Entry ID,GBCS Version",
        "0A0A,0001,0100,00000001,OLD-9,",
        "0A0A,0001,0100,00000002,,4.1",
    )
    refused = db.cli("import", changed)
    assert refused.returncode == 1
    assert "row 2: cpl_entry_id differs from the CPL's; import does not change it." in (
        refused.stderr
    )
    dry = db.cli("import", "--dry-run", write(tmp_path / "gbcs.csv", *changed.read_text()
                                              .replace("OLD-9", "OLD-1").splitlines()))  # fmt: skip
    assert dry.stdout.splitlines() == [
        "set gbcs_version of firmware 00000002 of 0A0A 0001 0100",
        "Dry run of gbcs.csv (a CPL file, 2 rows): would make 1 firmware details set.",
    ]


async def test_numbers_a_workbook_made_of_identifiers_import_as_the_codes(db, tmp_path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Manufacturer Identifier", "Manufacturer Name", "Device Type",
                  "Model Identifier", "Model Name", "Hardware Version", "Zigbee Band",
                  "Firmware Version", "CPL Entry ID", "Previous CPL Entry IDs"])  # fmt: skip
    sheet.append(["0C0C", "Numbered", "ESME", 1000, "N", 100, "2,4 GHz", 1, "N-1", "N/A"])
    sheet.append(["0C0C", "Numbered", "ESME", 1000, "N", 100, "2.4GHz", 2000, "N-2", "N-1"])
    workbook.save(tmp_path / "numbers.xlsx")
    result = db.cli("import", tmp_path / "numbers.xlsx")
    assert result.returncode == 0, result.stderr
    assert await rows(db, "SELECT model_identifier, hardware_version, zigbee_band FROM device") == [
        ("1000", "0100", "BAND_2_4_GHZ")
    ]
    assert await rows(db, "SELECT version FROM firmware ORDER BY id") == [
        ("00000001",),
        ("00002000",),
    ]


def test_one_alias_table_reads_either_layout_in_any_case_and_punctuation() -> None:
    for spelling in ("Manufacturer Identifier", "MANUFACTURER_IDENTIFIER", "manufacturer-id",
                     " Manufacturer ID ", "manufacturer identifier"):  # fmt: skip
        assert cpl_columns.ALIASES[cpl_columns.key(spelling)] == "manufacturer_identifier"
    found = cpl_columns.layout(["Model ID", "manufacturer id", "Hardware Version",
                                "Firmware Version", "", "Extra"])  # fmt: skip
    assert found.kind == "cpl"
    assert found.columns == [
        "model_identifier", "manufacturer_identifier", "hardware_version", "firmware_version",
        None, None,
    ]  # fmt: skip
    assert found.warnings == ["column 'Extra' is not a column of a cpl file; ignored"]
    pathways = cpl_columns.layout(["Manufacturer Identifier", "Model Identifier",
                                   "Hardware Version", "From Version", "To Version"])  # fmt: skip
    assert pathways.kind == "pathways" and pathways.warnings == []
    with pytest.raises(cpl_columns.HeaderProblem, match="more than once: model_identifier"):
        cpl_columns.layout(["Model ID", "model_identifier"])
    with pytest.raises(cpl_columns.HeaderProblem, match=r"missing column.*firmware_version"):
        cpl_columns.layout(["Manufacturer ID", "Model ID", "Hardware Version"])


@pytest.mark.parametrize(
    ("column", "given", "read"),
    [
        ("zigbee_band", "2.4GHz", "BAND_2_4_GHZ"),
        ("zigbee_band", "2,4 ghz", "BAND_2_4_GHZ"),
        ("zigbee_band", "868 MHz", "BAND_868_MHZ"),
        ("zigbee_band", "Dual band", "DUAL_BAND"),
        ("zigbee_band", "2.4GHz & 868MHz", "DUAL_BAND"),
        ("zigbee_band", "band_868_mhz", "BAND_868_MHZ"),
        ("zigbee_band", "5GHz", "5GHz"),  # left for the import to refuse
        ("device_type", "In-Home Display", "IHD"),
        ("device_type", "communications hub function", "CHF"),
        ("device_type", "gsme", "GSME"),
        ("hardware_version", "100", "0100"),
        ("hardware_version", "0x0a1b", "0a1b"),
        ("model_identifier", "1", "0001"),
        ("firmware_version", "1000001", "01000001"),
        ("firmware_version", "ab12", "ab12"),  # not a number: left as written
        ("added_to_cpl_on", "1/3/2021", "2021-03-01"),
        ("added_to_cpl_on", "2021-03-01", "2021-03-01"),
        ("cpa_certificate_expires_on", "30/06/2025", "2025-06-30"),
        ("model_name", "100", "100"),
    ],
)
def test_values_in_their_common_spellings(column: str, given: str, read: str) -> None:
    assert cpl_columns.cell_value(column, given) == read


def test_the_previous_entries_cell() -> None:
    assert cpl_columns.entry_ids("CPL-1; CPL-2\nCPL-3\r\n") == ["CPL-1", "CPL-2", "CPL-3"]
    assert cpl_columns.entry_ids(" n/a ") is None
    assert cpl_columns.entry_ids("N/A") is None


def test_a_header_of_neither_kind_is_a_file_problem(tmp_path) -> None:
    path = write(tmp_path / "odd.csv", "Colour,Size", "red,9")
    with pytest.raises(FileProblem, match="missing column"):
        read_table(path)
