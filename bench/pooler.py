"""Behind a transaction pooler, in ``make bench``: 1, 2 and 4 ``cpl-pathways serve`` processes
on one PostgreSQL, their pools connected directly or through PgBouncer in transaction mode
(Debian's, started by ``tests/pgbouncer.py``; ``CPL_DATABASE_POOLER=transaction``, sessions on
``CPL_DATABASE_DIRECT_URL``), under the same load:

1. **Uncached reads** (``CPL_RESPONSE_CACHE_SIZE=0``): ``bench.read``'s typical Supplier query,
   wrk with 16 connections shared out over the processes.
2. **Writes**: ``addFirmware``, each a version of its own (wrk's Lua counts), 32 connections:
   writers take turns on the data revision's row, so the others wait, each on a pooled
   connection; the writes the database holds afterwards are counted beside wrk's count (which
   leaves out those still in flight when it stops).
3. **A write seen by another process** (2 and 4 processes): from a write's answer on the first
   process to the first answer of the second that lists it, asked every 2 ms; the median of
   ``--samples``.
4. **The server's connections** to the database: the most ``pg_stat_activity`` showed while
   1 to 3 ran, against the bound: the pooler's pool plus two a process (the change listener and
   the revision reader), or, directly, each process's pool, overflow and two.

For each process count both modes serve at once, each on a fresh copy of the seeded demo
database, and their loads take turns in every round, in an order that alternates, so that the
machine's drift falls on both sides of a ratio alike (ratios: the median of the rounds'); the
rounds of reads come before those of writes, which lengthen the lists the reads return. Then
what a statement costs through the pool, its prepared statement cached (no pooler) or unnamed
and parsed at each execution (the pooler's setting), directly and through PgBouncer.

Results are printed and, unless ``--no-readme``, written between the pooler markers of
``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
from sqlalchemy import text

from bench.readme import write_readme
from bench.servers import PG_URL, postgres_version, server
from bench.wrk import DONE, Run, parse_wrk, round_rps, wrk, wrk_command, wrk_script
from config.settings import Settings
from models.database import create_engine, pooled_engine
from tests.harness import (
    create_database,
    dev_tokens,
    drop_databases,
    fresh_database,
    own_settings,
    seed_demo_database,
)
from tests.pgbouncer import PgBouncer, missing, most_connections, pgbouncer

START, END = "<!-- pooler:start -->", "<!-- pooler:end -->"
READ = (
    "{ devices(first: 50) { totalCount nodes { id modelName zigbeeBand manufacturer { name } "
    "latestFirmware { version } firmware { version status upgradesTo { to { version } status } }"
    " } } }"
)
WRITE = (
    'mutation($v: String!) { addFirmware(input: { deviceId: "device:2", version: $v }) '
    "{ __typename } }"
)
LISTED = '{ device(id: "device:2") { firmware { version } } }'
READ_CONNECTIONS, WRITE_CONNECTIONS = 16, 32
PROCESSES = (1, 2, 4)
MODES = ("direct", "pooler")
WITHIN = 0.10  # uncached reads through the pooler within 10 % of direct
STATEMENT = text("SELECT revision FROM data_revision WHERE id = 1")
FIRMWARE = text("SELECT count(*) FROM firmware")


@dataclass
class Measured:
    """One mode's, over the rounds."""

    reads: list[float] = field(default_factory=list)  # req/s a round, all processes
    writes: list[float] = field(default_factory=list)  # answered writes a second, a round
    committed: int = 0  # writes the database holds
    answered: int = 0  # writes wrk counted
    errors: int = 0  # wrk's socket errors and non-2xx answers, reads and writes
    seen_ms: list[float] = field(default_factory=list)  # a write's delay to another process
    connections: int = 0  # the most the server held to the database


def ratio(ours: list[float], theirs: list[float]) -> float:
    """The median over rounds of the ratio within each round."""
    return statistics.median(a / b if b else 0.0 for a, b in zip(ours, theirs, strict=True))


def write_script(directory: Path, token: str, prefix: str) -> Path:
    """wrk's Lua: a write of a new firmware version each request (``prefix``, three hex digits,
    then a counter: eight), and the pooling lines of ``bench.wrk``."""
    body = json.dumps({"query": WRITE, "variables": {"v": "@@"}}).replace('"@@"', '"%s%05X"')
    script = directory / f"write-{prefix}.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\ncounter = 0\n'
        "request = function()\n  counter = counter + 1\n"
        f"  return wrk.format(nil, nil, nil, string.format({json.dumps(body)}, "
        f'"{prefix}", counter))\nend\n' + DONE
    )
    return script


def write_load(urls: list[str], scripts: list[Path], seconds: int) -> list[Run]:
    """wrk against each process at once, each with its own script (its own versions)."""
    processes = [
        subprocess.Popen(  # noqa: S603 - wrk from Debian's package, loopback only
            wrk_command(url, script, max(1, WRITE_CONNECTIONS // len(urls)), seconds),
            stdout=subprocess.PIPE,
            text=True,
        )
        for url, script in zip(urls, scripts, strict=True)
    ]
    return [parse_wrk(process.communicate(timeout=seconds + 60)[0]) for process in processes]


async def seen_by_another(bases: list[str], tokens: dict[str, str], version: str) -> float:
    """The delay, in ms, from a write's answer on the first process to the second's first
    answer that lists it (asked every 2 ms)."""
    writer = {"Authorization": f"Bearer {tokens['SECAS']}"}
    reader = {"Authorization": f"Bearer {tokens['SMALL_SUPPLIER']}"}
    async with httpx.AsyncClient(timeout=30) as one, httpx.AsyncClient(timeout=30) as other:
        answer = await one.post(
            f"{bases[0]}/graphql",
            json={"query": WRITE, "variables": {"v": version}},
            headers=writer,
        )
        assert answer.json()["data"]["addFirmware"]["__typename"] == "AddFirmwareSuccess"
        written = time.perf_counter()
        while time.perf_counter() < written + 10:
            listed = await other.post(f"{bases[1]}/graphql", json={"query": LISTED}, headers=reader)
            if version in [f["version"] for f in listed.json()["data"]["device"]["firmware"]]:
                return (time.perf_counter() - written) * 1000
            await asyncio.sleep(0.002)
    raise RuntimeError(f"{version} not seen by another process within 10 s")


async def firmware(direct: str) -> int:
    """The firmware rows the database holds."""
    engine = create_engine(direct)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(FIRMWARE) or 0)
    finally:
        await engine.dispose()


async def measure(
    settings: Settings, pooler: PgBouncer, template: str, processes: int, args
) -> dict[str, Measured]:
    """Both modes' servers at once, each on a fresh copy of the demo database; their loads
    take turns, round by round."""
    folder = settings.data_dir
    make = dev_tokens(settings)
    tokens = {c: make(c, ttl_seconds=3600) for c in ("SMALL_SUPPLIER", "SECAS")}
    reads_script = wrk_script(folder, tokens["SMALL_SUPPLIER"], READ)
    seconds = max(1, round(args.seconds))
    copies = [await create_database(folder, "postgresql", template=template, server=PG_URL,
                                    prefix="cpl_bench") for _ in MODES]  # fmt: skip
    direct, urls, bases = dict(zip(MODES, copies, strict=True)), {}, {}
    results = {mode: Measured() for mode in MODES}
    try:
        async with contextlib.AsyncExitStack() as stack:
            for mode in MODES:
                pooled = pooler.url(direct[mode]) if mode == "pooler" else direct[mode]
                setting = "transaction" if mode == "pooler" else "none"
                own = replace(settings, database_url=pooled, response_cache_bytes=0)
                variables = {
                    "CPL_DATABASE_DIRECT_URL": direct[mode],
                    "CPL_DATABASE_POOLER": setting,
                }
                servers = [
                    await stack.enter_async_context(
                        server(own, folder / f"{mode}-{processes}-{index}.log", **variables)
                    )
                    for index in range(processes)
                ]
                bases[mode] = [running.base for running in servers]
                urls[mode] = [f"{base}/graphql" for base in bases[mode]]
                wrk(urls[mode], reads_script, 2, 1)  # each snapshot loaded, each pool warm
            before = {mode: await firmware(direct[mode]) for mode in MODES}
            most = {mode: await stack.enter_async_context(most_connections(direct[mode]))
                    for mode in MODES}  # fmt: skip
            # Reads first: every write lengthens device:2's firmware list, which they read.
            for turn in range(args.rounds):
                for mode in MODES if turn % 2 == 0 else MODES[::-1]:
                    runs = await asyncio.to_thread(
                        wrk, urls[mode], reads_script, READ_CONNECTIONS, seconds
                    )
                    results[mode].reads.append(round_rps(runs))
                    results[mode].errors += sum(run.errors for run in runs)
            for turn in range(args.rounds):
                for mode in MODES if turn % 2 == 0 else MODES[::-1]:
                    scripts = [write_script(folder, tokens["SECAS"], f"B{turn:X}{index:X}")
                               for index in range(processes)]  # fmt: skip
                    runs = await asyncio.to_thread(write_load, urls[mode], scripts, seconds)
                    results[mode].writes.append(round_rps(runs))
                    results[mode].answered += sum(run.requests for run in runs)
                    results[mode].errors += sum(run.errors for run in runs)
            for mode in MODES:
                results[mode].connections = most[mode][0]
                results[mode].committed = await firmware(direct[mode]) - before[mode]
            for sample in range(args.samples if processes > 1 else 0):
                for mode in MODES if sample % 2 == 0 else MODES[::-1]:
                    delay = await seen_by_another(bases[mode], tokens, f"D{sample:07X}")
                    results[mode].seen_ms.append(delay)
        return results
    finally:
        await drop_databases(copies, PG_URL)


def bound(mode: str, processes: int, pool: int, settings: Settings) -> int:
    """The most server connections the mode may hold: the pooler's pool and two a process;
    directly, each process's pool, overflow and two."""
    if mode == "pooler":
        return pool + 2 * processes
    return processes * (settings.db_pool_size + settings.db_max_overflow + 2)


def mark(met: bool) -> str:
    return "✅" if met else "❌"


def rows(results: dict[int, dict[str, Measured]], pool: int, settings: Settings) -> list[str]:
    lines = []
    for processes, modes in results.items():
        for mode, got in modes.items():
            reads = ratio(got.reads, modes["direct"].reads)
            writes = ratio(got.writes, modes["direct"].writes)
            limit = bound(mode, processes, pool, settings)
            within = "" if mode == "direct" else f" {mark(reads >= 1 - WITHIN)}"
            seen = f"{statistics.median(got.seen_ms):.0f}" if got.seen_ms else ""
            cells = [str(processes), mode, f"{statistics.median(got.reads):,.0f}",
                     f"{reads:.2f}x{within}", f"{statistics.median(got.writes):,.0f}",
                     f"{writes:.2f}x", f"{got.committed:,} ({got.answered:,})", seen,
                     str(got.errors), f"{got.connections} (≤ {limit}) "
                     f"{mark(got.connections <= limit)}"]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    return lines


async def statement_costs(pooler: PgBouncer, template: str, settings: Settings, count: int):
    """µs a statement through a pool of one connection: its prepared statement cached, or
    unnamed and parsed at each execution, directly and through PgBouncer."""
    costs = []
    async with fresh_database(settings.data_dir, "postgresql", template=template, server=PG_URL,
                              prefix="cpl_bench") as direct:  # fmt: skip
        cases = [("direct", direct, "none"), ("direct", direct, "transaction"),
                 ("PgBouncer", pooler.url(direct), "transaction")]  # fmt: skip
        for where, url, setting in cases:
            own = replace(settings, database_url=url, database_pooler=setting)
            engine = pooled_engine(own, pool_size=1, max_overflow=0)
            try:
                async with engine.connect() as connection:
                    for _ in range(100):  # warm: the connection, its codecs, the cache
                        await connection.execute(STATEMENT)
                    started = time.perf_counter()
                    for _ in range(count):
                        await connection.execute(STATEMENT)
                    elapsed = time.perf_counter() - started
            finally:
                await engine.dispose()
            statements = "prepared, cached" if setting == "none" else "unnamed, parsed each time"
            costs.append(f"| {where} | `{setting}` | {statements} | {elapsed / count * 1e6:,.0f} |")
    return costs


async def run(args: argparse.Namespace) -> str | None:
    version = await postgres_version()
    if version is None or (reason := missing()) is not None:
        print(f"note: the pooler benchmark needs PostgreSQL and PgBouncer: {reason or 'no server'}")
        return None
    results: dict[int, dict[str, Measured]] = {}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cpl-pooler-") as tmp:
        folder = Path(tmp)
        settings = own_settings(
            folder, PG_URL, issuer="cpl-pathways-bench", environment="development"
        )
        template = await create_database(folder, "postgresql", server=PG_URL, prefix="cpl_bench")
        try:
            await seed_demo_database(template)
            async with pgbouncer(PG_URL, args.pool, folder / "pgbouncer.log") as pooler:
                for processes in PROCESSES:
                    results[processes] = await measure(settings, pooler, template, processes, args)
                    print(processes, results[processes], flush=True)
                costs = await statement_costs(pooler, template, settings, args.statements)
        finally:
            await drop_databases([template], PG_URL)
    return report(results, costs, args, version, settings, load)


def report(results, costs: list[str], args, version: str, settings: Settings, load) -> str:
    return (
        f"Measured on a {os.cpu_count()}-core {platform.machine()} machine (load average "
        f"{load:.1f} as it began: other work shared the cores), Python "
        f"{platform.python_version()}, PostgreSQL {version} and Debian's PgBouncer in "
        f"transaction mode (`default_pool_size = {args.pool}`), all on loopback with wrk and "
        f"the servers sharing the cores; {args.seconds:g} s a load, {args.rounds} round(s), "
        "rates the median of the rounds, delays of the samples, connections the most of any. "
        "Servers "
        f"with `CPL_DB_POOL_SIZE={settings.db_pool_size}`, `CPL_DB_MAX_OVERFLOW="
        f"{settings.db_max_overflow}`, the response cache off. Target: uncached reads through "
        f"the pooler within {WITHIN:.0%} of direct; connections at most the pooler's pool "
        "plus two a process.\n\n"
        "| processes | pool to | uncached reads req/s | vs direct | writes/s | vs direct | "
        "writes committed (wrk counted) | write seen by another process, ms (median of "
        f"{args.samples}) | errors | most server connections (bound) |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        + "\n".join(rows(results, args.pool, settings))
        + f"\n\nA statement through the pool (`{STATEMENT.text}`, {args.statements:,} times "
        "on one connection):\n\n"
        "| PostgreSQL reached | `CPL_DATABASE_POOLER` | statement | µs a statement |\n"
        "| --- | --- | --- | --- |\n" + "\n".join(costs)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pooler", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=3, help="each load (reads, writes)")
    parser.add_argument("--samples", type=int, default=20, help="writes timed to another process")
    parser.add_argument("--rounds", type=int, default=5, help="turns of every load, a mode each")
    parser.add_argument("--pool", type=int, default=10, help="PgBouncer's default_pool_size")
    parser.add_argument("--statements", type=int, default=2_000, help="statements timed a case")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args(argv)
    text_ = asyncio.run(run(args))
    if text_ is not None:
        print(text_)
    if text_ is not None and not args.no_readme:
        write_readme(text_, (START, END), "Behind a pooler")


if __name__ == "__main__":
    main()
