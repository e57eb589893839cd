"""The CPL data in and out, benchmarked: ``POST /fleet-plan.csv`` with a million rows, and
``cpl-pathways import`` of the ten-times CPL. Run by ``make bench`` after ``bench.run``.

1. **Fleet file.** Over the real-scale synthetic CPL (``bench.generate``, 500 devices), a
   Supplier's file of 1,000,000 rows, a row per meter: each names one of 10,000 groups
   (device and firmware, 70% by ``device_id``, 30% by identifiers, about 0.5% bad), with the
   Supplier's own meter id passed through. ``curl --data-binary`` sends it to
   ``python -m server.cli serve`` (a separate process, as ``make run`` serves) and writes the answer
   to a file: timed end to end, cold (first request after start) and warm. The server's
   peak resident memory (VmHWM) is read at the end. Beside it, GraphQL ``fleetPlan`` of the
   same 10,000 groups (meter counts summed) over HTTP; every row of the file's answer is
   cross-checked against its group's fleetPlan entry.
2. **Import.** The ten-times synthetic CPL (5,000 devices, 50,000 firmware) exported as a CPL
   file, and its forward pathways as a pathways file, imported with ``python -m server.cli import``
   into an empty database (timed as a user runs it, process start included), then imported
   again (nothing to change).

Results are printed and, unless ``--no-readme``, written between the data markers of
``bench/README.md``. Nothing here is a test: a missed target is reported, not failed.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from bench.generate import load_synthetic_cpl
from bench.readme import ROOT, machine, mark, write_readme
from bench.servers import bench_database, peak_kib, postgres_version, server
from bench.workloads import SEED, fleet_items
from models.database import create_engine, session_factory
from models.tables import Device, Firmware, FirmwareStatus, Manufacturer, PathwayStatus
from models.tables import UpgradePathway as Pathway
from resolvers.files.cpl_export import export
from resolvers.files.cpl_files import PATHWAY_COLUMNS
from tests.harness import dev_tokens, own_settings
from tests.live import cli_env

START, END = "<!-- data-io:start -->", "<!-- data-io:end -->"
ROWS = 1_000_000
GROUPS = 10_000
FLEET_FILE_TARGET_S = 10.0
SERVER_PEAK_TARGET_MIB = 400
IMPORT_TARGET_S = 30.0
FLEET_QUERY = (
    "query($items: [FleetItemInput!]!) { fleetPlan(items: $items) { entries { problem "
    "plan { reachable reason from { version } target { version } steps { to { version } } } } } }"
)
COLUMNS = ["meter_id", "device_id", "manufacturer_identifier", "model_identifier"]
COLUMNS += ["hardware_version", "firmware_version"]


@dataclass
class FleetResult:
    backend: str
    megabytes_in: float
    megabytes_out: float
    cold: float
    warm: float
    graphql: float
    idle_kib: int
    peak_kib: int
    graphql_peak_kib: int
    checked: int


@dataclass
class ImportResult:
    backend: str
    firmware_rows: int
    pathway_rows: int
    first: float
    pathways: float
    again: float


def fleet_file(path: Path, groups: list[dict[str, Any]], rng: random.Random) -> list[int]:
    """Write a row per meter, each of a random group; returns each row's group index."""
    chosen = [rng.randrange(len(groups)) for _ in range(ROWS)]
    with path.open("w", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(COLUMNS)
        for meter, index in enumerate(chosen):
            g = groups[index]
            writer.writerow(
                [
                    f"M{meter:08d}",
                    g.get("deviceId", ""),
                    g.get("manufacturerIdentifier", ""),
                    g.get("modelIdentifier", ""),
                    g.get("hardwareVersion", ""),
                    g["firmwareVersion"],
                ]
            )
    return chosen


def curl(url: str, token: str, body: Path, out: Path) -> float:
    started = time.perf_counter()
    subprocess.run(  # noqa: S603 - curl on a loopback URL
        [
            shutil.which("curl") or "curl", "-sS", "--fail", url, "-o", str(out),
            "-H", f"Authorization: Bearer {token}", "-H", "Content-Type: text/csv",
            "--data-binary", f"@{body}",
        ],
        check=True,
    )  # fmt: skip
    return time.perf_counter() - started


def expected_row(entry: dict[str, Any]) -> tuple[str, ...]:
    plan = entry["plan"]
    if plan is None:
        return ("problem",)
    target = plan["target"]["version"] if plan["target"] else ""
    if not plan["reachable"]:
        return ("false", plan["reason"] or "", target, "", "")
    path = ">".join([plan["from"]["version"], *(s["to"]["version"] for s in plan["steps"])])
    return ("true", "", target, str(len(plan["steps"])), path)


def cross_check(out: Path, chosen: list[int], entries: list[dict[str, Any]]) -> int:
    """Every answer row against its group's fleetPlan entry; returns how many were checked."""
    expected = [expected_row(entry) for entry in entries]
    with out.open(newline="") as file:
        reader = csv.reader(file)
        header = next(reader)
        if header[: len(COLUMNS)] != COLUMNS:
            raise RuntimeError(f"unexpected answer header {header}")
        count = 0
        for count, (row, group) in enumerate(zip(reader, chosen, strict=True), start=1):
            if row[0] != f"M{count - 1:08d}":
                raise RuntimeError(f"row {count} is out of order: {row[0]}")
            answer = ("problem",) if row[6] else tuple(row[7:])
            if answer != expected[group]:
                raise RuntimeError(f"row {count}: {answer} but fleetPlan says {expected[group]}")
    if count != ROWS:
        raise RuntimeError(f"{count} answer rows for {ROWS} input rows")
    return count


async def run_fleet(backend: str, directory: Path) -> FleetResult:
    rng = random.Random(SEED)
    async with bench_database(backend, directory) as url:
        cpl = await load_synthetic_cpl(url, 500)
        groups = fleet_items(cpl, GROUPS, rng)
        body = directory / "fleet.csv"
        chosen = fleet_file(body, groups, rng)
        meters = [0] * len(groups)
        for index in chosen:
            meters[index] += 1
        items = [g | {"meterCount": max(m, 1)} for g, m in zip(groups, meters, strict=True)]
        settings = own_settings(directory, url)
        token = dev_tokens(settings)("LARGE_SUPPLIER", party_id="bench-supplier")
        out = directory / "plans.csv"
        async with server(settings, directory / "server.log") as running:
            base, process = running.base, running.process
            async with httpx.AsyncClient(base_url=base, timeout=300) as client:
                idle = peak_kib(process.pid)
                cold = await asyncio.to_thread(curl, f"{base}/fleet-plan.csv", token, body, out)
                warm = await asyncio.to_thread(curl, f"{base}/fleet-plan.csv", token, body, out)
                peak = peak_kib(process.pid)
                started = time.perf_counter()
                response = await client.post(
                    "/graphql",
                    content=json.dumps({"query": FLEET_QUERY, "variables": {"items": items}}),
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json",
                    },
                )
                graphql = time.perf_counter() - started
                graphql_peak = peak_kib(process.pid)
        response.raise_for_status()
        entries = response.json()["data"]["fleetPlan"]["entries"]
        checked = cross_check(out, chosen, entries)
        return FleetResult(
            backend,
            body.stat().st_size / 1e6,
            out.stat().st_size / 1e6,
            cold,
            warm,
            graphql,
            idle,
            peak,
            graphql_peak,
            checked,
        )


async def forward_pathways(url: str, path: Path) -> int:
    """The synthetic CPL's PUBLISHED pathways that go forward in order of addition (the
    generator's few downgrades would close cycles, which an import rightly refuses)."""
    start, end = sa.orm.aliased(Firmware), sa.orm.aliased(Firmware)
    statement = (
        sa.select(
            Manufacturer.identifier,
            Device.model_identifier,
            Device.hardware_version,
            start.version,
            end.version,
        )
        .select_from(Pathway)
        .join(Device, Device.id == Pathway.device_id)
        .join(Manufacturer, Manufacturer.id == Device.manufacturer_id)
        .join(start, start.id == Pathway.from_firmware_id)
        .join(end, end.id == Pathway.to_firmware_id)
        .where(
            Pathway.status == PathwayStatus.PUBLISHED,
            end.status == FirmwareStatus.ACTIVE,
            Pathway.from_firmware_id < Pathway.to_firmware_id,
        )
        .order_by(Pathway.id)
    )
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
    finally:
        await engine.dispose()
    with path.open("w", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(PATHWAY_COLUMNS)
        writer.writerows([*row, ""] for row in rows)
    return len(rows)


def cli_import(url: str, directory: Path, path: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "server.cli", "import", str(path)],
        cwd=ROOT,
        env=cli_env(url, directory),
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"import failed: {result.stderr[-2000:]}")
    print(f"  {result.stdout.strip()} ({elapsed:.1f} s)", flush=True)
    return elapsed


async def run_import(backend: str, directory: Path) -> ImportResult:
    cpl_file, pathways_file = directory / "cpl-10x.csv", directory / "pathways-10x.csv"
    async with bench_database(backend, directory / "source") as url:
        await load_synthetic_cpl(url, 5_000)
        engine = create_engine(url)
        try:
            with cpl_file.open("w", newline="") as out:
                firmware = await export(session_factory(engine), "devices", out, include_ssc=True)
        finally:
            await engine.dispose()
        pathways = await forward_pathways(url, pathways_file)
    async with bench_database(backend, directory / "target") as url:
        first = await asyncio.to_thread(cli_import, url, directory, cpl_file)
        second = await asyncio.to_thread(cli_import, url, directory, pathways_file)
        again = await asyncio.to_thread(cli_import, url, directory, cpl_file)
    return ImportResult(backend, firmware, pathways, first, second, again)


def report(fleets: list[FleetResult], imports: list[ImportResult], pg: str | None) -> str:
    lines = ["Produced by `python -m bench.data_io`.", "", *machine(pg), ""]
    lines += [
        "### POST /fleet-plan.csv: 1,000,000 rows (a row per meter), real-scale CPL",
        "",
        "| backend | request MB | answer MB | curl end to end, cold (s) | warm (s) "
        "| GraphQL fleetPlan of the 10,000 groups (s) | server peak RSS: idle / after the files "
        "/ after fleetPlan (MiB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for f in fleets:
        lines.append(
            f"| {f.backend} | {f.megabytes_in:.1f} | {f.megabytes_out:.1f} | {f.cold:.2f} "
            f"| {f.warm:.2f} | {f.graphql:.2f} "
            f"| {f.idle_kib / 1024:.0f} / {f.peak_kib / 1024:.0f} "
            f"/ {f.graphql_peak_kib / 1024:.0f} |"
        )
    lines += [
        "",
        "### cpl-pathways import: the ten-times CPL into an empty database",
        "",
        "| backend | CPL file rows | first import (s) | pathways file rows | its import (s) "
        "| CPL file again, nothing to change (s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for i in imports:
        lines.append(
            f"| {i.backend} | {i.firmware_rows:,} | {i.first:.1f} | {i.pathway_rows:,} "
            f"| {i.pathways:.1f} | {i.again:.1f} |"
        )
    lines += ["", "### Targets", "", "| target | backend | measured | result |"]
    lines.append("| --- | --- | ---: | --- |")
    for f in fleets:
        lines.append(
            f"| fleet file ≤ {FLEET_FILE_TARGET_S:.0f} s end to end (cold; warm) | {f.backend} "
            f"| {f.cold:.2f} s; {f.warm:.2f} s "
            f"| {mark(max(f.cold, f.warm) <= FLEET_FILE_TARGET_S)} |"
        )
        lines.append(
            f"| server peak ≤ {SERVER_PEAK_TARGET_MIB} MiB (the files) | {f.backend} "
            f"| {f.peak_kib / 1024:.0f} MiB | {mark(f.peak_kib / 1024 <= SERVER_PEAK_TARGET_MIB)} |"
        )
    for i in imports:
        lines.append(
            f"| import of 50,000 firmware rows ≤ {IMPORT_TARGET_S:.0f} s | {i.backend} "
            f"| {i.first:.1f} s | {mark(i.first <= IMPORT_TARGET_S)} |"
        )
    checked = sum(f.checked for f in fleets)
    lines += [
        "",
        f"Cross-check: all {checked:,} answer rows are in order and equal their group's "
        "fleetPlan entry (reachability, reason, target and every version of the path).",
    ]
    return "\n".join(lines)


async def amain(args: argparse.Namespace) -> None:
    pg = await postgres_version() if "postgresql" in args.backends else None
    backends = [b for b in args.backends if b != "postgresql" or pg]
    fleets, imports = [], []
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="cpl-bench-io-") as temporary:
            print(f"{backend}: fleet file of {ROWS:,} rows", flush=True)
            fleets.append(await run_fleet(backend, Path(temporary)))
        with tempfile.TemporaryDirectory(prefix="cpl-bench-io-") as temporary:
            print(f"{backend}: import of the ten-times CPL", flush=True)
            imports.append(await run_import(backend, Path(temporary)))
    section = report(fleets, imports, pg)
    print()
    print(section)
    if not args.no_readme:
        write_readme(section, (START, END), "Data in and out")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.data_io", description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgresql", help="sqlite, postgresql")
    parser.add_argument("--no-readme", action="store_true", help="print only, leave README alone")
    args = parser.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
