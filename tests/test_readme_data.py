"""The README's "CPL in and out" example block runs as written, against a real server on the
demo CPL (what `make run` serves), and answers what the README says it does."""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import replace
from pathlib import Path

from server.app import create_app, create_services
from tests.live import serve

ROOT = Path(__file__).resolve().parent.parent
BASE = "BASE=http://127.0.0.1:8000"


def example_block() -> str:
    section = (ROOT / "README.md").read_text().split("## The CPL in and out", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


async def test_the_readme_data_examples_run_as_written(
    settings, token, tmp_path, own_database
) -> None:
    token("SSC")  # makes sure the development key the command line signs with exists
    block = example_block()
    assert block.startswith(BASE)
    own = replace(settings, database_url=own_database)
    services = create_services(own)
    work = tmp_path / "work"
    work.mkdir()
    for name in ("examples", ".venv"):
        (work / name).symlink_to(ROOT / name)
    env = {
        "PATH": "/usr/bin:/bin",
        "CPL_DATABASE_URL": own_database,
        "CPL_DATA_DIR": str(settings.data_dir),
        "CPL_ISSUER": settings.issuer,
        "CPL_AUDIENCE": settings.audience,
    }
    async with serve(create_app(own, services)) as address:
        script = block.replace(BASE, f"BASE=http://{address}", 1)
        result = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-e", "-c", script],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    await services.engine.dispose()
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Imported cpl.csv (a CPL file, 9 rows): 2 manufacturers added" in out
    assert "Imported pathways.csv (a pathways file, 6 rows): 6 pathways published." in out
    assert (
        "Imported cpl-published.csv (a CPL file, 9 rows): 1 manufacturers added, 3 devices "
        "added, 9 firmware added, 1 firmware withdrawn, 6 pathways published, 1 manufacturer "
        "contacts set." in out
    )
    assert "column 'Comments' is not a column of a cpl file; ignored" in result.stderr
    assert "Nothing to change: the database already holds cpl.csv" in out
    assert "outcome,reason,rows,meters\nup_to_date,,1,300\n" in out
    assert "Dry run of cpl.csv (a CPL file, 9 rows): would make no changes." in out
    assert "1A2B,2001,0100,2B000002,0D000004,Reboots twice; allow 10 minutes." in out
    assert "north-01,1A2B,2001,0100,3A000001,1200,,true,,0D000004,2,3A000001>2B000002>0D000004" in (
        out
    )
    exported = (work / "cpl-export.csv").read_text()
    assert "Heron ESME S1" in exported and "Aurora ESME Mk1" in exported
    assert "Lumen Silicon" not in exported and "ZB-PRO" not in exported
