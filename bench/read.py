"""The read benchmark behind ``make bench``: the typical Supplier query over HTTP, against the
hand-written endpoint of ``bench.baseline_read`` measured in the same run.

For each backend (SQLite, PostgreSQL) and CPL (the demo, the real-scale synthetic one):

1. Both servers start as separate processes (``python -m cli serve``, the baseline under
   uvicorn) on the same database; their answers are compared after parsing.
2. wrk (one thread, 8 connections) loads each for ``--seconds``: the API warm (response cache
   on) and uncached (``CPL_RESPONSE_CACHE_SIZE=0``), as a Supplier, as an SSC analyst asking
   for the two SSC-only fields, and as a Supplier asking for them (denied).
3. 200 concurrent connections for ``--burst`` seconds on the warm path: p50, p99, errors.
4. On PostgreSQL, two API processes (each behind half the connections) beside one.

Only loopback traffic; every loop is bounded in time. Results are printed and, unless
``--no-readme``, written between the read markers of ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from bench.generate import load_synthetic_cpl
from bench.run import ROOT, bench_database, server, write_readme
from settings import Settings
from tests.harness import dev_tokens, gql, own_settings, seed_demo_database
from tests.live import cli_env, free_port

START, END = "<!-- read:start -->", "<!-- read:end -->"
TYPICAL = (
    "{ devices(first: 50) { totalCount nodes { id modelName zigbeeBand manufacturer { name } "
    "latestFirmware { version } firmware { version status upgradesTo { to { version } status } }"
    "%s } } }"
)
PUBLIC = TYPICAL % ""
WITH_SSC = TYPICAL % " zigbeeStackVersion zigbeeChipsetVendor"
SCENARIOS = {  # name: (category, query)
    "supplier": ("SMALL_SUPPLIER", PUBLIC),
    "ssc": ("SSC", WITH_SSC),
    "denied": ("SMALL_SUPPLIER", WITH_SSC),
}
CPLS = {"demo": 0, "real": 500}  # synthetic devices (0: the demo CPL)
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def wrk_command(url: str, script: Path, connections: int, seconds: float) -> list[str]:
    return [shutil.which("wrk") or "wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s",
            "--latency", "-s", str(script), url]  # fmt: skip


def wrk_script(directory: Path, token: str, query: str) -> Path:
    """wrk's Lua: one GraphQL body, posted with the caller's token."""
    body = json.dumps({"query": query})
    script = directory / f"post-{abs(hash((token, query)))}.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    )
    return script


def parse_wrk(out: str) -> Load:
    def latency(percent: str) -> float:
        found = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert found, out
        return float(found.group(1)) * UNITS[found.group(2)]

    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    errors += int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert rps, out
    return Load(float(rps.group(1)), latency("50"), latency("99"), errors)


def load(urls: list[str], script: Path, connections: int, seconds: float) -> Load:
    """wrk against each URL at once (one process each, the connections shared out); the
    request rates add up, the latencies and errors are the worst and the sum."""
    runs = [
        subprocess.Popen(  # noqa: S603 - wrk from Debian's package, loopback only
            wrk_command(url, script, max(1, connections // len(urls)), seconds),
            stdout=subprocess.PIPE,
            text=True,
        )
        for url in urls
    ]
    loads = [parse_wrk(run.communicate(timeout=seconds + 60)[0]) for run in runs]
    return Load(
        sum(x.rps for x in loads),
        max(x.p50_ms for x in loads),
        max(x.p99_ms for x in loads),
        sum(x.errors for x in loads),
    )


@contextlib.contextmanager
def baseline_process(settings: Settings, port: int, log: Path) -> Iterator[subprocess.Popen]:
    env = cli_env(settings.database_url, settings.data_dir, CPL_ISSUER=settings.issuer,
                  CPL_AUDIENCE=settings.audience)  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "bench.baseline_read", str(port)],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            yield process
        finally:
            process.terminate()
            process.wait(timeout=15)


async def baseline_ready(base: str, token: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for _ in range(300):
            with contextlib.suppress(httpx.TransportError):
                await gql(client, token, PUBLIC)
                return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing answers at {base}")


async def answer(base: str, token: str, query: str) -> dict:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        return await gql(client, token, query)


def row(mode: str, name: str, api: Load, baseline: Load | None) -> str:
    if baseline is None:
        return f"| {mode} | {name} | {api.rps:,.0f} | | | {api.p50_ms:.1f} | {api.p99_ms:.1f} |"
    return (
        f"| {mode} | {name} | {api.rps:,.0f} | {baseline.rps:,.0f} | "
        f"{api.rps / baseline.rps:.2f}x | {api.p50_ms:.1f} | {api.p99_ms:.1f} |"
    )


async def measure_cpl(
    settings: Settings, args: argparse.Namespace, log_dir: Path, processes: int
) -> list[str]:
    make = dev_tokens(settings)
    tokens = {c: make(c, ttl_seconds=6 * 3600) for c in ("SMALL_SUPPLIER", "SSC")}
    scripts = {name: wrk_script(log_dir, tokens[c], q) for name, (c, q) in SCENARIOS.items()}
    lines = []
    base_port = free_port()
    base = f"http://127.0.0.1:{base_port}"
    with baseline_process(settings, base_port, log_dir / "baseline.log"):
        await baseline_ready(base, tokens["SMALL_SUPPLIER"])
        base_url = [f"{base}/graphql"]
        baseline = {name: load(base_url, scripts[name], 8, args.seconds) for name in SCENARIOS}
        for mode, cache_bytes in (("warm", 64_000_000), ("uncached", 0)):
            api_settings = replace(settings, response_cache_bytes=cache_bytes)
            async with contextlib.AsyncExitStack() as stack:
                servers = [
                    await stack.enter_async_context(
                        server(api_settings, log_dir / f"api-{mode}-{index}.log")
                    )
                    for index in range(processes)
                ]
                urls = [f"{running.base}/graphql" for running in servers]
                for name, (category, query) in SCENARIOS.items():
                    ours = await answer(servers[0].base, tokens[category], query)
                    theirs = await answer(base, tokens[category], query)
                    assert ours == theirs, f"{name}: the API and the baseline answer differently"
                    measured = load(urls, scripts[name], 8, args.seconds)
                    lines.append(row(f"{mode}, {processes} process(es)", name, measured,
                                     baseline[name]))  # fmt: skip
                if mode == "warm":
                    burst = load(urls, scripts["supplier"], 200, args.burst)
                    lines.append(
                        row(f"warm, {processes} process(es), 200 clients", "supplier", burst, None)
                        + f" errors: {burst.errors}"
                    )
    return lines


async def run(args: argparse.Namespace) -> str:
    sections = [machine()]
    for backend in args.backends.split(","):
        for cpl in args.cpls.split(","):
            with tempfile.TemporaryDirectory(prefix="cpl-read-") as tmp:
                data_dir = Path(tmp)
                async with bench_database(backend, data_dir) as url:
                    if CPLS[cpl]:
                        await load_synthetic_cpl(url, devices=CPLS[cpl])
                    else:
                        await seed_demo_database(url)
                    settings = own_settings(
                        data_dir, url, issuer="cpl-pathways-bench", environment="development"
                    )
                    rows = []
                    for processes in (1, 2) if backend == "postgresql" else (1,):
                        rows += await measure_cpl(settings, args, data_dir, processes)
                sections.append(
                    f"\n**{backend}, {cpl} CPL** (req/s over HTTP; p50 and p99 in ms)\n\n"
                    "| API | query | API req/s | baseline req/s | ratio | p50 | p99 |\n"
                    "| --- | --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows)
                )
                print(sections[-1], flush=True)
    return "\n".join(sections)


def machine() -> str:
    return (
        f"Measured on a {os.cpu_count()}-core {platform.machine()} machine, Python "
        f"{platform.python_version()}; wrk (one thread a process, a separate process) shares "
        "the cores with the servers. The baseline is `bench/baseline_read.py`."
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.read", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--cpls", default="demo,real")
    parser.add_argument("--seconds", type=float, default=10, help="each wrk run")
    parser.add_argument("--burst", type=float, default=30, help="the 200-client run")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args(argv)
    text = asyncio.run(run(args))
    if not args.no_readme:
        write_readme(text, (START, END), "Reads")


if __name__ == "__main__":
    main()
