"""The benchmark behind ``make bench``: upgradePath and fleetPlan on a synthetic CPL, beside a
plain baseline measured in the same run.

For each backend (SQLite, PostgreSQL) and scale (the real CPL, ten times it) a fresh database is
filled by ``bench.generate`` and measured:

1. ``upgradePath`` in process (``schema.execute``, no HTTP), interleaved call by call with the
   baseline: one SQL statement fetching the device's firmware and published pathways, then a
   plain breadth-first search in Python. Every sampled plan is cross-checked against it.
2. ``upgradePath`` over HTTP against ``python -m server.cli serve`` run as a separate process on a
   free loopback port, sequential requests on one keep-alive connection.
3. ``fleetPlan`` of 10,000 and 50,000 items over HTTP: one cold call (right after a data
   revision bump, so the server's graph cache is empty) and the median of warm calls, beside
   the baseline planning the same items with one statement per distinct device. The API's
   entries and summary are cross-checked against the baseline's.
4. Peak memory: the benchmark process's ``ru_maxrss`` and the server's ``VmHWM``.

Sample loops are bounded in count (``--samples``) and in time (``--budget`` seconds a loop);
the only traffic is loopback. Results are printed and, unless ``--no-readme``, written between
the results markers of ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.generate import SyntheticCpl, load_synthetic_cpl
from bench.profiling import diagnose
from bench.readme import README, ROOT, machine, mark, write_readme
from bench.reference_planner import (
    BaselineFleet,
    api_outcome,
    baseline_fleet,
    baseline_path,
    check_fleet,
)
from bench.servers import (
    BUMP_REVISION,
    InProcess,
    bench_database,
    execute_sql,
    peak_kib,
    post,
    postgres_version,
    server,
)
from bench.stats import FleetTiming, RunResult, ms, say, sec
from bench.workloads import (
    FLEET_PLAN,
    FLEET_SIZES,
    SCALES,
    SEED,
    UPGRADE_PATH,
    Workload,
    distinct_devices,
    encode,
    every_device,
    fleet_items,
    path_variables,
    sample_pairs,
)
from config.settings import Settings
from schema.build import build_schema
from server.app import create_services
from tests.harness import dev_tokens, own_settings

HTTP_P99_TARGET_MS = 20.0
FLEET_TARGET_S = {10_000: 2.0, 50_000: 8.0}


@dataclass
class Options:
    samples: int
    warmup: int
    budget: float
    fleet_runs: int
    profile: bool


async def run_one(backend: str, scale: str, options: Options) -> RunResult:
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory(prefix="cpl-bench-") as temporary:
        directory = Path(temporary)
        async with bench_database(backend, directory) as url:
            started = time.perf_counter()
            cpl = await load_synthetic_cpl(url, SCALES[scale])
            if backend == "postgresql":
                await execute_sql(url, "ANALYZE")  # planner statistics, as a live database has
            result = RunResult(backend, scale, cpl, time.perf_counter() - started)
            say(
                f"[{backend} {scale}] loaded {len(cpl.devices):,} devices, {cpl.firmware:,} "
                f"firmware, {cpl.pathways:,} pathways in {result.load_seconds:.1f} s"
            )
            # The response cache off: this measures planning (bench.read measures the cache),
            # and each warm call would otherwise be a cache hit.
            settings = own_settings(
                directory / "data", url, environment="bench", response_cache_bytes=0
            )
            token = dev_tokens(settings)("SMALL_SUPPLIER", ttl_seconds=3 * 3600)
            pairs = sample_pairs(cpl, options.samples, rng)
            warmup = sample_pairs(cpl, options.warmup, rng)
            fleets = {size: fleet_items(cpl, size, rng) for size in FLEET_SIZES}
            work = Workload(token, pairs, warmup, fleets)
            baselines = await in_process(settings, cpl, work, result, options)
            await over_http(settings, cpl, work, baselines, result, options)
    result.bench_peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return result


async def in_process(
    settings: Settings,
    cpl: SyntheticCpl,
    work: Workload,
    result: RunResult,
    options: Options,
) -> dict[int, BaselineFleet]:
    services = create_services(settings)
    try:
        principal = await services.verifier.verify(work.token)
        api = InProcess(build_schema(settings), services, principal)
        await api.execute(FLEET_PLAN, {"items": every_device(cpl)})  # a warm graph cache
        for device_id, version in work.warmup:
            await api.execute(UPGRADE_PATH, path_variables(device_id, version))
            await baseline_path(services.engine, device_id, version)
        # Interleaved call by call, so drift (page cache, frequency, other load) hits both alike.
        deadline = time.perf_counter() + options.budget
        mismatches: list[str] = []
        for device_id, version in work.pairs:
            if time.perf_counter() > deadline:
                break
            variables = path_variables(device_id, version)
            started = time.perf_counter()
            data = await api.execute(UPGRADE_PATH, variables)
            middle = time.perf_counter()
            expected = await baseline_path(services.engine, device_id, version)
            result.api.values.append(middle - started)
            result.baseline.values.append(time.perf_counter() - middle)
            got = api_outcome(data["upgradePath"])
            if got != expected:
                mismatches.append(f"device {device_id} from {version}: API {got}, BFS {expected}")
        result.checked_pairs = len(result.api.values)
        if mismatches:
            raise AssertionError(
                f"{len(mismatches)} plans differ from the baseline: " + "; ".join(mismatches[:5])
            )
        say(
            f"[{result.backend} {result.scale}] upgradePath in process p50/p99 "
            f"{ms(result.api.p50)}/{ms(result.api.p99)} ms, baseline "
            f"{ms(result.baseline.p50)}/{ms(result.baseline.p99)} ms "
            f"({result.checked_pairs} plans, all equal to the baseline's)"
        )
        baselines: dict[int, BaselineFleet] = {}
        for size, items in work.fleets.items():
            timing = result.fleet[size] = FleetTiming(size, distinct_devices(cpl, items))
            for _ in range(options.fleet_runs):
                started = time.perf_counter()
                baselines[size] = await baseline_fleet(services.engine, items)
                timing.baseline.values.append(time.perf_counter() - started)
            timing.statements = baselines[size].statements
            say(
                f"[{result.backend} {result.scale}] baseline fleet of {size:,} items "
                f"({timing.devices:,} distinct devices, {timing.statements:,} statements): "
                f"median {sec(timing.baseline.median)} s"
            )
        if options.profile:
            await diagnose(api, work)
        return baselines
    finally:
        await services.engine.dispose()


async def over_http(
    settings: Settings,
    cpl: SyntheticCpl,
    work: Workload,
    baselines: dict[int, BaselineFleet],
    result: RunResult,
    options: Options,
) -> None:
    async with server(settings, settings.data_dir / "server.log") as running:
        async with httpx.AsyncClient(
            base_url=running.base,
            headers={"Authorization": f"Bearer {work.token}", "Content-Type": "application/json"},
            timeout=300,
            trust_env=False,  # loopback only: never through a proxy from the environment
        ) as client:
            await post(client, encode(FLEET_PLAN, {"items": every_device(cpl)}))
            for device_id, version in work.warmup:
                await post(client, encode(UPGRADE_PATH, path_variables(device_id, version)))
            deadline = time.perf_counter() + options.budget
            for device_id, version in work.pairs:
                if time.perf_counter() > deadline:
                    break
                body = encode(UPGRADE_PATH, path_variables(device_id, version))
                elapsed, _, _ = await post(client, body)
                result.http.values.append(elapsed)
            say(
                f"[{result.backend} {result.scale}] upgradePath over HTTP p50/p99 "
                f"{ms(result.http.p50)}/{ms(result.http.p99)} ms ({len(result.http.values)} calls)"
            )
            for size, items in work.fleets.items():
                timing = result.fleet[size]
                body = encode(FLEET_PLAN, {"items": items})
                timing.request_bytes = len(body)
                await execute_sql(settings.database_url, BUMP_REVISION)  # as any CPL write does
                timing.cold, data, timing.response_bytes = await post(client, body)
                result.checked_items += check_fleet(data, baselines[size])
                deadline = time.perf_counter() + options.budget
                for _ in range(options.fleet_runs):
                    if time.perf_counter() > deadline:
                        break
                    elapsed, data, _ = await post(client, body)
                    timing.warm.values.append(elapsed)
                check_fleet(data, baselines[size])
                say(
                    f"[{result.backend} {result.scale}] fleetPlan of {size:,} items over HTTP: "
                    f"cold {sec(timing.cold)} s, warm median {sec(timing.warm.median)} s "
                    f"(request {timing.request_bytes / 1e6:.1f} MB, "
                    f"response {timing.response_bytes / 1e6:.1f} MB)"
                )
        result.server_peak_kib = peak_kib(running.process.pid)


# --- the report -------------------------------------------------------------------------------


def report(results: list[RunResult], pg_version: str | None, command: str) -> str:
    lines = [
        f"Produced by `{command}`.",
        "",
        *machine(pg_version),
        "",
        "### Data",
        "",
        "| backend | scale | devices | firmware | pathways | load (s) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.scale} | {len(r.cpl.devices):,} | {r.cpl.firmware:,} "
            f"| {r.cpl.pathways:,} | {r.load_seconds:.1f} |"
        )
    lines += [
        "",
        "### upgradePath (ms a call, sequential, warm graph cache)",
        "",
        "| backend | scale | calls | in process p50 | p99 | mean | baseline p50 | p99 | mean "
        "| HTTP p50 | p99 | mean |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.scale} | {len(r.api.values):,} / {len(r.http.values):,} "
            f"| {ms(r.api.p50)} | {ms(r.api.p99)} | {ms(r.api.mean)} "
            f"| {ms(r.baseline.p50)} | {ms(r.baseline.p99)} | {ms(r.baseline.mean)} "
            f"| {ms(r.http.p50)} | {ms(r.http.p99)} | {ms(r.http.mean)} |"
        )
    lines += [
        "",
        "Calls: in process (each paired with a baseline call) / over HTTP.",
        "",
        "### fleetPlan (s a call)",
        "",
        "| backend | scale | items | devices | HTTP cold | HTTP warm median (runs) "
        "| baseline median (runs) | baseline statements | request MB | response MB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        for size, t in r.fleet.items():
            lines.append(
                f"| {r.backend} | {r.scale} | {size:,} | {t.devices:,} | {sec(t.cold)} "
                f"| {sec(t.warm.median)} ({len(t.warm.values)}) "
                f"| {sec(t.baseline.median)} ({len(t.baseline.values)}) | {t.statements:,} "
                f"| {t.request_bytes / 1e6:.1f} | {t.response_bytes / 1e6:.1f} |"
            )
    lines += [
        "",
        "### Peak memory (MiB)",
        "",
        "| backend | scale | server process (VmHWM) | benchmark process (ru_maxrss, so far) |",
        "| --- | --- | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.scale} | {r.server_peak_kib / 1024:.0f} "
            f"| {r.bench_peak_kib / 1024:.0f} |"
        )
    lines += [
        "",
        "### Targets",
        "",
        "| target | backend | scale | measured | result |",
        "| --- | --- | --- | ---: | --- |",
    ]
    for r in results:
        lines.append(
            f"| upgradePath over HTTP p99 ≤ {HTTP_P99_TARGET_MS:.0f} ms | {r.backend} | {r.scale} "
            f"| {ms(r.http.p99)} ms | {mark(r.http.p99 * 1000 <= HTTP_P99_TARGET_MS)} |"
        )
        for size, t in r.fleet.items():
            limit = FLEET_TARGET_S[size]
            lines.append(
                f"| fleetPlan {size:,} items ≤ {limit:.0f} s (warm median; cold) | {r.backend} "
                f"| {r.scale} | {sec(t.warm.median)} s; {sec(t.cold)} s "
                f"| {mark(t.warm.median <= limit)}; cold {mark(t.cold <= limit)} |"
            )
    checked = sum(r.checked_pairs for r in results)
    items = sum(r.checked_items for r in results)
    lines += [
        "",
        f"Cross-check: all {checked:,} sampled upgradePath plans and all {items:,} fleetPlan "
        "entries (with the summaries) equal the baseline's, pathway ids included.",
    ]
    return "\n".join(lines)


# --- entry point -------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--scales", default="real,10x", help="comma-separated: real, 10x")
    parser.add_argument("--backends", default="sqlite,postgresql", help="sqlite, postgresql")
    parser.add_argument("--samples", type=int, default=1000, help="upgradePath calls a mode")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured calls first")
    parser.add_argument("--fleet-runs", type=int, default=3, help="warm fleetPlan runs a size")
    parser.add_argument("--budget", type=float, default=120, help="max seconds a sample loop")
    parser.add_argument("--no-readme", action="store_true", help="print only, leave README alone")
    parser.add_argument(
        "--profile", action="store_true", help="also diagnose where time goes (in process)"
    )
    args = parser.parse_args(argv)
    args.scales = [s.strip() for s in args.scales.split(",") if s.strip()]
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for scale in args.scales:
        if scale not in SCALES:
            parser.error(f"unknown scale {scale!r}; choose from {', '.join(SCALES)}")
    for backend in args.backends:
        if backend not in ("sqlite", "postgresql"):
            parser.error(f"unknown backend {backend!r}; choose sqlite or postgresql")
    if args.samples < 1 or args.fleet_runs < 1 or args.warmup < 0 or args.budget <= 0:
        parser.error("--samples and --fleet-runs must be at least 1, --budget positive")
    return args


async def amain(args: argparse.Namespace, command: str) -> list[RunResult]:
    options = Options(args.samples, args.warmup, args.budget, args.fleet_runs, args.profile)
    pg_version = await postgres_version() if "postgresql" in args.backends else None
    backends = [b for b in args.backends if b != "postgresql" or pg_version]
    results = []
    for backend in backends:
        for scale in args.scales:
            results.append(await run_one(backend, scale, options))
    if not results:
        print("Nothing was measured.")
        return results
    section = report(results, pg_version, command)
    print()
    print(section)
    if not args.no_readme:
        write_readme(section)
        print(f"\nResults written to {README.relative_to(ROOT)}.")
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    given = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m bench.run", *given])
    started = time.perf_counter()
    asyncio.run(amain(args, command))
    print(f"Benchmark took {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
