"""The read benchmark behind ``make bench``: the typical Supplier query over HTTP, against the
hand-written endpoint of ``bench.baseline_read`` measured in the same run.

For each backend (SQLite, PostgreSQL) and CPL (the demo, the real-scale synthetic one):

1. The baseline (under uvicorn) and the API warm (response cache on) and uncached
   (``CPL_RESPONSE_CACHE_SIZE=0``, ``python -m server.cli serve``) start as separate processes on
   the same database, and all three keep serving; the API's answers are compared with the baseline's
   after parsing.
2. wrk (one thread, 8 connections) loads each in ``--rounds`` rounds of ``--seconds / rounds``
   a run, for three scenarios: a Supplier, an SSC analyst asking for the two SSC-only fields,
   and a Supplier asking for them (denied). A round runs every (server, scenario) once, in an
   order that rotates round by round, so that the machine's drift (5-15 % from one run to the
   next on 2 cores) falls on every side of a comparison alike instead of on its ratio.
3. Reported a scenario: the median req/s of its rounds, the API processes' CPU time an answer
   (``/proc/<pid>/stat``, the median of its rounds), p50 and p99 of all its requests (as
   ``bench.wrk`` pools them), its ratio to the baseline and, for ``ssc`` and ``denied``, to
   ``supplier`` in rate and in CPU an answer (each the median of the ratios within a round),
   with the targets to the baseline met or not. The CPU ratio leaves out wrk, which shares the
   two cores, but it drifts too: one scenario's runs were measured 60 % apart, so 5 rounds do
   not settle 5 %, and the 5 % target is judged on instructions instead (``bench.read_cost``).
4. 200 concurrent connections for ``--burst`` seconds on the warm path: p50, p99, errors.
5. On PostgreSQL, two API processes a mode (each behind half the connections) beside one.

Only loopback traffic; every loop is bounded in time. Results are printed and, unless
``--no-readme``, written between the read markers of ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx

from bench.generate import load_synthetic_cpl
from bench.readme import ROOT, write_readme
from bench.servers import bench_database, server
from bench.wrk import Load, Run, median_ratio, summary, wrk, wrk_script
from config.settings import Settings
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
CACHE_BYTES = {"warm": 64_000_000, "uncached": 0}  # the API's two modes: response cache size
LEAST_RATIO = {"warm": 0.8, "uncached": 0.33}  # the targets, as ratios to the baseline
SAME_AS_SUPPLIER = 0.05  # `ssc` and `denied` within 5 % of `supplier`
BURST_CLIENTS, BURST_P99_MS = 200, 250.0
Rounds = dict[tuple[str, str], list[list[Run]]]  # (server, scenario): each round's wrk runs
Cpu = dict[tuple[str, str], list[float]]  # (server, scenario): each round's server µs an answer


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


def rotated(items: list[str], by: int) -> list[str]:
    by %= len(items)
    return items[by:] + items[:by]


def schedule(rounds: int) -> list[list[tuple[str, str]]]:
    """Each round's runs, (server, scenario): every pair once a round. A server's scenarios run
    back to back, so a ratio to `supplier` compares runs seconds apart; both orders rotate a
    step a round, so that no scenario is always first, last, or after the same neighbour."""
    servers = ["baseline", *LEAST_RATIO]
    return [
        [(where, name) for where in rotated(servers, r) for name in rotated(list(SCENARIOS), r)]
        for r in range(rounds)
    ]


def slot_seconds(args: argparse.Namespace) -> int:
    """A run's share of ``--seconds`` (wrk takes whole seconds), so the rounds take as long as
    one run of each did."""
    return max(1, round(args.seconds / args.rounds))


def cpu_seconds(pids: list[int]) -> float:
    """The CPU time the processes have used, all their threads (utime + stime)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def measure_rounds(
    urls: dict[str, list[str]],
    pids: dict[str, list[int]],
    scripts: dict[str, Path],
    args: argparse.Namespace,
) -> tuple[Rounds, Cpu]:
    """Every (server, scenario)'s runs, one a round, in the order of ``schedule``, and the
    server's CPU time an answer in each: what the server pays, without wrk's own share of the
    cores in it."""
    runs: Rounds = {}
    cpu: Cpu = {}
    for order in schedule(args.rounds):
        for where, name in order:
            before = cpu_seconds(pids[where])
            done = wrk(urls[where], scripts[name], 8, slot_seconds(args))
            answers = sum(run.requests for run in done) or 1
            cpu.setdefault((where, name), []).append(
                (cpu_seconds(pids[where]) - before) / answers * 1e6
            )
            runs.setdefault((where, name), []).append(done)
    return runs, cpu


def mark(met: bool) -> str:
    return "✅" if met else "❌"


def against_supplier(ratio: float) -> str:
    """Shown, not judged: rates and CPU time drift more than 5 % here from run to run, so the
    target is judged on instructions (`bench.read_cost`)."""
    return f"{ratio - 1:+.1%}"


def scenario_row(label: str, name: str, mode: str, runs: Rounds, cpu: Cpu) -> str:
    """A scenario's line: its medians, its ratio to the baseline and, beside `supplier`, what
    asking for the SSC fields (allowed or denied) costs more, in rate and in the server's CPU
    an answer (each the median of the ratios within a round)."""
    ours, theirs = runs[mode, name], runs["baseline", name]
    api, baseline = summary(ours), summary(theirs)
    ratio = median_ratio(ours, theirs)
    rate_against = cpu_against = ""
    if name != "supplier":
        rate_against = against_supplier(median_ratio(ours, runs[mode, "supplier"]))
        pairs = zip(cpu[mode, name], cpu[mode, "supplier"], strict=True)
        cpu_against = against_supplier(statistics.median(a / b for a, b in pairs))
    cells = [label, name, f"{api.rps:,.0f}", f"{baseline.rps:,.0f}",
             f"{ratio:.2f}x {mark(ratio >= LEAST_RATIO[mode])}", rate_against,
             f"{statistics.median(cpu[mode, name]):,.0f}", cpu_against,
             f"{api.p50_ms:.1f}", f"{api.p99_ms:.1f}"]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def burst_row(label: str, burst: Load) -> str:
    met = burst.p99_ms <= BURST_P99_MS and burst.errors == 0
    return (
        f"| {label}, {BURST_CLIENTS} clients | supplier | {burst.rps:,.0f} | | | | | | "
        f"{burst.p50_ms:.1f} | {burst.p99_ms:.1f} | slowest {burst.slowest_ms:,.0f} ms, "
        f"errors: {burst.errors} {mark(met)}"
    )


async def same_answers(ours: str, theirs: str, tokens: dict[str, str]) -> None:
    """The API answers each scenario as the baseline does, after parsing (and, warm, has it
    cached before the first round)."""
    for name, (category, query) in SCENARIOS.items():
        api = await answer(ours, tokens[category], query)
        baseline = await answer(theirs, tokens[category], query)
        assert api == baseline, f"{name}: the API and the baseline answer differently"


async def measure_cpl(
    settings: Settings, args: argparse.Namespace, log_dir: Path, processes: int
) -> list[str]:
    """The baseline and the API warm and uncached all serve at once, so that their runs can
    take turns in every round; then the 200 clients on the warm path."""
    make = dev_tokens(settings)
    tokens = {c: make(c, ttl_seconds=6 * 3600) for c in ("SMALL_SUPPLIER", "SSC")}
    scripts = {name: wrk_script(log_dir, tokens[c], q) for name, (c, q) in SCENARIOS.items()}
    base_port = free_port()
    base = f"http://127.0.0.1:{base_port}"
    async with contextlib.AsyncExitStack() as stack:
        baseline = stack.enter_context(
            baseline_process(settings, base_port, log_dir / "baseline.log")
        )
        await baseline_ready(base, tokens["SMALL_SUPPLIER"])
        urls = {"baseline": [f"{base}/graphql"]}
        pids = {"baseline": [baseline.pid]}
        for mode, cache_bytes in CACHE_BYTES.items():
            api_settings = replace(settings, response_cache_bytes=cache_bytes)
            servers = [
                await stack.enter_async_context(
                    server(api_settings, log_dir / f"api-{mode}-{index}.log")
                )
                for index in range(processes)
            ]
            for running in servers:  # each answers alike, and is warm before the rounds
                await same_answers(running.base, base, tokens)
            urls[mode] = [f"{running.base}/graphql" for running in servers]
            pids[mode] = [running.process.pid for running in servers]
        runs, cpu = measure_rounds(urls, pids, scripts, args)
        burst = summary([wrk(urls["warm"], scripts["supplier"], BURST_CLIENTS, int(args.burst))])
    label = f"{{}}, {processes} process(es)"
    lines = [scenario_row(label.format("warm"), name, "warm", runs, cpu) for name in SCENARIOS]
    lines.append(burst_row(label.format("warm"), burst))
    lines += [
        scenario_row(label.format("uncached"), name, "uncached", runs, cpu) for name in SCENARIOS
    ]
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
                sections.append(table(f"{backend}, {cpl} CPL", rows, args))
                print(sections[-1], flush=True)
    return "\n".join(sections)


def table(title: str, rows: list[str], args: argparse.Namespace) -> str:
    return (
        f"\n**{title}** (over HTTP, {args.rounds} rounds of {slot_seconds(args)} s a run: "
        "req/s the median of the rounds; CPU, the API processes' CPU time an answer in µs, "
        "the median of the rounds; ratios the median of the rounds' ratios; p50 and p99 "
        "in ms, of every request of every round)\n\n"
        "| API | query | API req/s | baseline req/s | ratio | vs supplier | CPU | CPU vs "
        "supplier | p50 | p99 |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows)
    )


def machine() -> str:
    return (
        f"Measured on a {os.cpu_count()}-core {platform.machine()} machine, Python "
        f"{platform.python_version()}; wrk (one thread a process, a separate process) shares "
        "the cores with the servers. The baseline is `bench/baseline_read.py`. The baseline and "
        "the API (warm and uncached) serve at once and their runs take turns, in an order that "
        "rotates, in every round. Targets: ratio to the baseline "
        f"≥ {LEAST_RATIO['warm']}x warm and ≥ {LEAST_RATIO['uncached']}x "
        f"uncached; {BURST_CLIENTS} clients with p99 ≤ {BURST_P99_MS:.0f} ms and no errors. "
        "`vs supplier` is shown, not judged: `ssc` and `denied` within "
        f"{SAME_AS_SUPPLIER:.0%} of `supplier` is judged on instructions (`bench.read_cost`)."
    )


def positive(text: str) -> int:
    if (number := int(text)) < 1:
        raise argparse.ArgumentTypeError("at least 1")
    return number


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.read", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--cpls", default="demo,real")
    parser.add_argument(
        "--seconds", type=float, default=10, help="each (server, scenario), over all rounds"
    )
    parser.add_argument(
        "--rounds", type=positive, default=3, help="runs of everything in turn, --seconds shared"
    )
    parser.add_argument("--burst", type=float, default=30, help="the 200-client run")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args(argv)
    text = asyncio.run(run(args))
    if not args.no_readme:
        write_readme(text, (START, END), "Reads")


if __name__ == "__main__":
    main()
