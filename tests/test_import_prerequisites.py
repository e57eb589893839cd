"""The CPL file's optional `prerequisites` column: declared by the import under the mutation's
rules, in the import's one transaction, with history; a second import writes nothing."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from models.database import create_engine, migrate, session_factory
from notifications.bus import change_bus
from notifications.channels import consumers
from permissions.ssc_access import Operator
from resolvers.files.cpl_export import export
from resolvers.files.cpl_import import ImportResult, import_file, importer
from tests.harness import fresh_database, scalar

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = (ROOT / "examples" / "cpl.csv").read_text().splitlines()
NEEDS = {  # the example's firmware (by version) and what the column says it needs
    "0D000004": "CHF: 3C4D/3001/0200=0C000030, 3C4D/3001/0200=0B000020",
    "5F000002": "chf: GBCS v4.0",
}


def cpl_file(tmp_path: Path, needs: dict[str, str], name: str = "cpl.csv") -> Path:
    lines = [EXAMPLE[0] + ",prerequisites"]
    for line in EXAMPLE[1:]:
        version = line.split(",")[9]
        cell = needs.get(version, "")
        lines.append(f'{line},"{cell}"' if cell else f"{line},")
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database(tmp_path) as url:
        engine = create_engine(url)
        await migrate(engine)
        await engine.dispose()
        yield url


async def run(url: str, path: Path) -> ImportResult:
    engine = create_engine(url)
    try:
        sessions = session_factory(engine)
        return await import_file(
            sessions, consumers(change_bus(url, sessions)), path, importer(path)
        )
    finally:
        await engine.dispose()


async def test_the_column_declares_prerequisites_once(database, tmp_path):
    result = await run(database, cpl_file(tmp_path, NEEDS))
    assert result.problems == [] and result.written
    assert result.counts["prerequisites declared"] == 2
    assert await scalar(database, "SELECT count(*) FROM prerequisite") == 2
    events = "SELECT count(*) FROM audit_event WHERE action = 'PREREQUISITE_DECLARED'"
    assert await scalar(database, events) == 2
    assert (
        await scalar(
            database,
            "SELECT requires_gbcs_version FROM prerequisite WHERE requires_firmware_ids IS NULL",
        )
        == "v4.0"
    )
    again = await run(database, cpl_file(tmp_path, NEEDS))
    assert again.problems == [] and not again.written and again.changes == []
    assert await scalar(database, "SELECT count(*) FROM prerequisite") == 2


async def test_a_file_without_the_column_imports_as_before(database, tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("\n".join(EXAMPLE) + "\n")
    result = await run(database, path)
    assert result.written and "prerequisites declared" not in result.counts
    assert await scalar(database, "SELECT count(*) FROM prerequisite") == 0


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("CHF 3C4D/3001/0200=0C000030", "prerequisites must be <device type>:"),
        ("CHF: 3C4D/3001/0200=0FFFFFFF", "prerequisites names firmware not on the CPL"),
        ("GSME: 3C4D/3001/0200=0C000030", "prerequisites must name firmware of GSME devices"),
        ("CHF: 1A2B/2002/0100=5F000002", "prerequisites must name firmware of CHF devices"),
        ("ESME: GBCS 4", "prerequisites: A prerequisite names a device of another type"),
        ("CHF: GBCS four", "prerequisites: requiresGbcsVersion must be a GBCS version"),
    ],
)
async def test_a_bad_cell_is_a_problem_of_its_row_and_nothing_is_written(
    database, tmp_path, cell, problem
):
    result = await run(database, cpl_file(tmp_path, {"0D000004": cell}))
    assert not result.written
    (line,) = result.problems
    assert line.startswith("row 5: ") and problem in line, line
    assert await scalar(database, "SELECT count(*) FROM manufacturer") == 0


async def test_a_cycle_of_device_types_within_the_file_is_refused(database, tmp_path):
    cycle = {**NEEDS, "0C000030": "ESME: 1A2B/2001/0100=0D000004"}
    result = await run(database, cpl_file(tmp_path, cycle))
    assert not result.written
    assert any("would form a cycle (CHF → ESME → CHF)" in line for line in result.problems)


async def test_an_export_writes_the_column_and_imports_back_unchanged(database, tmp_path):
    assert (await run(database, cpl_file(tmp_path, NEEDS))).written
    engine = create_engine(database)
    try:
        out = io.StringIO()
        sessions = session_factory(engine)
        await export(sessions, "devices", out, include_ssc=False, actor=Operator("test", "test"))
    finally:
        await engine.dispose()
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    cells = {row["firmware_version"]: row["prerequisites"] for row in rows if row["prerequisites"]}
    assert cells == {
        "0D000004": "CHF: 3C4D/3001/0200=0B000020, 3C4D/3001/0200=0C000030",
        "5F000002": "CHF: GBCS v4.0",
    }
    exported = tmp_path / "export.csv"
    exported.write_text(out.getvalue())
    again = await run(database, exported)
    assert again.problems == [] and not again.written
