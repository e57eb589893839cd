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
import contextlib
import cProfile
import datetime
import json
import math
import os
import platform
import pstats
import random
import resource
import sqlite3
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bench.generate import SyntheticCpl, SyntheticDevice, load_synthetic_cpl
from config.settings import Settings
from models.database import RequestSession, create_engine, is_sqlite
from models.tables import Device, Firmware, FirmwareStatus, Manufacturer, PathwayStatus
from models.tables import UpgradePathway as Pathway
from permissions.principal import Principal
from resolvers.planning.fleet_items import FleetItem
from resolvers.planning.fleet_plan import plan_fleet
from schema.build import build_schema
from schema.context import Context, Services
from server.app import create_services
from tests.harness import dev_tokens, fresh_database, own_settings
from tests.live import ServerProcess, cli_env, cli_server

ROOT = Path(__file__).resolve().parent.parent
README = Path(__file__).with_name("README.md")
START, END = "<!-- results:start -->", "<!-- results:end -->"
PG_URL = os.environ.get("CPL_BENCH_DATABASE_URL", "postgresql+asyncpg://127.0.0.1:5432/test")

SCALES = {"real": 500, "10x": 5_000}  # devices; 10 firmware and 20 pathways each
FLEET_SIZES = (10_000, 50_000)
HTTP_P99_TARGET_MS = 20.0
FLEET_TARGET_S = {10_000: 2.0, 50_000: 8.0}
SEED = 2024
LIBRARIES = (
    *("strawberry-graphql", "graphql-core", "starlette", "uvicorn", "SQLAlchemy"),
    *("aiosqlite", "asyncpg", "httpx", "uvloop", "httptools"),
)

UPGRADE_PATH = """
query Plan($deviceId: ID!, $from: String!) {
  upgradePath(deviceId: $deviceId, fromVersion: $from) {
    reachable
    reason
    from { version }
    target { version }
    steps { id from { version } to { version } }
  }
}
"""

FLEET_PLAN = """
query Fleet($items: [FleetItemInput!]!) {
  fleetPlan(items: $items) {
    summary {
      meters upToDate upgradable blocked
      metersByStepCount { steps meters }
    }
    entries { index problem plan { reachable steps { id } } }
  }
}
"""

Outcome = tuple[bool, tuple[int, ...]] | None
"""A plan as both sides see it: (reachable, pathway ids of the steps), or None for a problem."""


# --- statistics --------------------------------------------------------------------------------


@dataclass
class Stats:
    """Seconds per call; percentiles by nearest rank."""

    values: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.values)
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] if ordered else math.nan

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values) if self.values else math.nan

    @property
    def median(self) -> float:
        return self.p50


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def sec(seconds: float) -> str:
    return f"{seconds:.2f}"


@dataclass
class FleetTiming:
    items: int
    devices: int
    statements: int = 0
    cold: float = math.nan
    warm: Stats = field(default_factory=Stats)
    baseline: Stats = field(default_factory=Stats)
    request_bytes: int = 0
    response_bytes: int = 0


@dataclass
class RunResult:
    backend: str
    scale: str
    cpl: SyntheticCpl
    load_seconds: float
    api: Stats = field(default_factory=Stats)
    baseline: Stats = field(default_factory=Stats)
    http: Stats = field(default_factory=Stats)
    fleet: dict[int, FleetTiming] = field(default_factory=dict)
    server_peak_kib: int = 0
    bench_peak_kib: int = 0
    checked_pairs: int = 0
    checked_items: int = 0


# --- databases ---------------------------------------------------------------------------------


async def postgres_version() -> str | None:
    """The server's version, or None when PostgreSQL cannot be reached."""
    engine = create_async_engine(PG_URL, connect_args={"timeout": 5})
    try:
        async with engine.connect() as connection:
            return str((await connection.execute(text("SHOW server_version"))).scalar())
    except Exception as error:  # any failure to connect means "skip PostgreSQL"
        print(f"note: PostgreSQL at {PG_URL} unreachable ({type(error).__name__}: {error})")
        return None
    finally:
        await engine.dispose()


def bench_database(backend: str, directory: Path) -> contextlib.AbstractAsyncContextManager[str]:
    """A new, empty database on the benchmark's PostgreSQL (dropped after) or in ``directory``."""
    return fresh_database(directory, backend, server=PG_URL, prefix="cpl_bench")


async def execute_sql(url: str, *statements: str) -> None:
    engine = create_engine(url, **({} if is_sqlite(url) else {"isolation_level": "AUTOCOMMIT"}))
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
            await connection.commit()
    finally:
        await engine.dispose()


BUMP_REVISION = "UPDATE data_revision SET revision = revision + 1 WHERE id = 1"


# --- the baseline: one statement, then a plain breadth-first search ----------------------------

_F: sa.Table = Firmware.__table__  # type: ignore[attr-defined]
_P: sa.Table = Pathway.__table__  # type: ignore[attr-defined]
_D: sa.Table = Device.__table__  # type: ignore[attr-defined]
_M: sa.Table = Manufacturer.__table__  # type: ignore[attr-defined]
# Every firmware of the device, each with its outgoing PUBLISHED pathways (one row per pathway,
# or one row with NULLs when there is none): the whole graph in one statement.
_GRAPH = _F.outerjoin(
    _P, sa.and_(_P.c.from_firmware_id == _F.c.id, _P.c.status == PathwayStatus.PUBLISHED)
)
_COLUMNS = (_F.c.id, _F.c.version, _F.c.status, _F.c.added_to_cpl_on, _P.c.id, _P.c.to_firmware_id)
BASELINE_BY_ID = (
    sa.select(*_COLUMNS).select_from(_GRAPH).where(_F.c.device_id == sa.bindparam("device_id"))
)
BASELINE_BY_KEY = (
    sa.select(*_COLUMNS)
    .select_from(
        _GRAPH.join(_D, _D.c.id == _F.c.device_id).join(_M, _M.c.id == _D.c.manufacturer_id)
    )
    .where(
        _M.c.identifier == sa.bindparam("manufacturer"),
        _D.c.model_identifier == sa.bindparam("model"),
        _D.c.hardware_version == sa.bindparam("hardware"),
    )
)


def bfs(rows: Sequence[Any], from_version: str) -> Outcome:
    """Fewest steps to the latest ACTIVE firmware over PUBLISHED pathways into ACTIVE firmware.

    Outgoing pathways are expanded in ascending id order, which is the API's documented
    tie-break (lowest pathway ids among equally short routes). None: the version is unknown.
    """
    firmware: dict[int, tuple[str, bool, Any]] = {}
    edges: dict[int, list[tuple[int, int]]] = {}
    for firmware_id, version, status, added_on, pathway_id, to_id in rows:
        firmware[firmware_id] = (version, status is FirmwareStatus.ACTIVE, added_on)
        if pathway_id is not None:
            edges.setdefault(firmware_id, []).append((pathway_id, to_id))
    wanted = from_version.strip().upper()
    start = next((fid for fid, (v, _, _) in firmware.items() if v.upper() == wanted), None)
    if start is None:
        return None
    active = [fid for fid, (_, is_active, _) in firmware.items() if is_active]
    if not active:
        return (False, ())
    target = max(active, key=lambda fid: (firmware[fid][2], fid))
    parent: dict[int, tuple[int, int] | None] = {start: None}
    queue = deque([start])
    while queue and target not in parent:
        node = queue.popleft()
        for pathway_id, to_id in sorted(edges.get(node, ())):
            if to_id not in parent and to_id in firmware and firmware[to_id][1]:
                parent[to_id] = (node, pathway_id)
                queue.append(to_id)
    if target not in parent:
        return (False, ())
    steps: list[int] = []
    node = target
    while (link := parent[node]) is not None:
        node, pathway_id = link
        steps.append(pathway_id)
    return (True, tuple(reversed(steps)))


async def baseline_path(engine: AsyncEngine, device_id: int, version: str) -> Outcome:
    async with engine.connect() as connection:
        rows = (await connection.execute(BASELINE_BY_ID, {"device_id": device_id})).all()
    return bfs(rows, version)


@dataclass
class BaselineFleet:
    outcomes: list[Outcome]
    summary: dict[str, Any]
    statements: int


async def baseline_fleet(engine: AsyncEngine, items: list[dict[str, Any]]) -> BaselineFleet:
    """The same items, planned the plain way: one statement per distinct device named."""
    graphs: dict[tuple[Any, ...], Sequence[Any]] = {}
    memo: dict[tuple[tuple[Any, ...], str], Outcome] = {}
    outcomes: list[Outcome] = []
    meters = up_to_date = upgradable = blocked = 0
    by_steps: dict[int, int] = {}
    async with engine.connect() as connection:
        for item in items:
            reference = _reference(item)
            count = item.get("meterCount", 1)
            outcome: Outcome = None
            if reference is not None and count >= 1:
                version = item["firmwareVersion"].strip().upper()
                key = (reference, version)
                if key in memo:
                    outcome = memo[key]
                else:
                    rows = graphs.get(reference)
                    if rows is None:
                        rows = graphs[reference] = await _graph_rows(connection, reference)
                    outcome = memo[key] = bfs(rows, version)
            outcomes.append(outcome)
            counted = max(count, 0)
            meters += counted
            if outcome is None or not outcome[0]:
                blocked += counted
            else:
                steps = len(outcome[1])
                by_steps[steps] = by_steps.get(steps, 0) + counted
                if steps:
                    upgradable += counted
                else:
                    up_to_date += counted
    summary = {
        "meters": meters,
        "upToDate": up_to_date,
        "upgradable": upgradable,
        "blocked": blocked,
        "metersByStepCount": [{"steps": s, "meters": m} for s, m in sorted(by_steps.items())],
    }
    return BaselineFleet(outcomes, summary, len(graphs))


def _reference(item: dict[str, Any]) -> tuple[Any, ...] | None:
    """("id", n) or ("key", manufacturer, model, hardware); None when the item names none."""
    names = ("manufacturerIdentifier", "modelIdentifier", "hardwareVersion")
    parts = [item.get(name) for name in names]
    if "deviceId" in item:
        prefix, _, number = item["deviceId"].partition(":")
        if prefix != "device" or not number.isdigit() or any(p is not None for p in parts):
            return None
        return ("id", int(number))
    if any(p is None for p in parts):
        return None
    return ("key", *(p.strip().upper() for p in parts))


async def _graph_rows(connection: AsyncConnection, reference: tuple[Any, ...]) -> Sequence[Any]:
    if reference[0] == "id":
        statement, parameters = BASELINE_BY_ID, {"device_id": reference[1]}
    else:
        _, manufacturer, model, hardware = reference
        statement = BASELINE_BY_KEY
        parameters = {"manufacturer": manufacturer, "model": model, "hardware": hardware}
    return (await connection.execute(statement, parameters)).all()


# --- workloads ---------------------------------------------------------------------------------


def sample_pairs(cpl: SyntheticCpl, count: int, rng: random.Random) -> list[tuple[int, str]]:
    """Random (device, firmware version it runs) pairs, withdrawn versions included."""
    pairs = []
    for _ in range(count):
        device = rng.choice(cpl.devices)
        pairs.append((device.device_id, rng.choice(device.firmware_versions)))
    return pairs


def fleet_items(cpl: SyntheticCpl, count: int, rng: random.Random) -> list[dict[str, Any]]:
    """A fleet as a Supplier sends it: 70% by deviceId, 30% by identifiers (some in lower case
    or padded), about 5% repeats of an earlier item and about 0.5% bad items of five kinds."""
    items: list[dict[str, Any]] = []
    bad = [
        {"deviceId": "device:999999999", "firmwareVersion": "0000000A"},  # unknown device
        {"deviceId": "firmware:1", "firmwareVersion": "0000000A"},  # not a device id
        {"deviceId": "device:1", "firmwareVersion": "not-hex"},  # malformed version
        {"deviceId": "device:1", "firmwareVersion": "0000000A", "meterCount": 0},
        {  # the identifiers of no device (a manufacturer the generator never makes is unlikely)
            "manufacturerIdentifier": "FFFF",
            "modelIdentifier": "FFFF",
            "hardwareVersion": "0F00",
            "firmwareVersion": "0000000A",
        },
    ]
    for _ in range(count):
        draw = rng.random()
        if items and draw < 0.05:
            items.append(dict(rng.choice(items)))
            continue
        if draw < 0.055:
            items.append(dict(rng.choice(bad)))
            continue
        device: SyntheticDevice = rng.choice(cpl.devices)
        version = rng.choice(device.firmware_versions)
        meters = rng.randint(1, 500)
        if rng.random() < 0.7:
            items.append(
                {"deviceId": f"device:{device.device_id}", "firmwareVersion": version}
                | {"meterCount": meters}
            )
        else:
            messy = rng.random() < 0.1
            items.append(
                {
                    "manufacturerIdentifier": device.manufacturer_identifier,
                    "modelIdentifier": device.model_identifier.lower()
                    if messy
                    else device.model_identifier,
                    "hardwareVersion": device.hardware_version,
                    "firmwareVersion": f" {version.lower()} " if messy else version,
                    "meterCount": meters,
                }
            )
    return items


def distinct_devices(cpl: SyntheticCpl, items: list[dict[str, Any]]) -> int:
    """How many devices the items name, by id or by identifiers (normalised)."""
    by_key = {
        (d.manufacturer_identifier, d.model_identifier, d.hardware_version): d.device_id
        for d in cpl.devices
    }
    ids = {d.device_id for d in cpl.devices}
    named: set[int] = set()
    for item in items:
        reference = _reference(item)
        if reference is None:
            continue
        device_id = reference[1] if reference[0] == "id" else by_key.get(reference[1:])
        if device_id in ids:
            named.add(device_id)
    return len(named)


def every_device(cpl: SyntheticCpl) -> list[dict[str, Any]]:
    """One item per device: a fleetPlan of it loads the whole graph cache (a warm server)."""
    return [
        {"deviceId": f"device:{d.device_id}", "firmwareVersion": d.firmware_versions[0]}
        for d in cpl.devices
    ]


def api_outcome(plan: dict[str, Any] | None) -> Outcome:
    if plan is None:
        return None
    steps = tuple(int(step["id"].partition(":")[2]) for step in plan["steps"])
    return (plan["reachable"], steps)


def check_fleet(data: dict[str, Any], expected: BaselineFleet) -> int:
    """The API's entries and summary must equal the baseline's; returns the items checked."""
    entries = data["fleetPlan"]["entries"]
    assert len(entries) == len(expected.outcomes), "fleetPlan: wrong number of entries"
    for position, (entry, outcome) in enumerate(zip(entries, expected.outcomes, strict=True)):
        where = f"fleetPlan entry {position}"
        assert entry["index"] == position, f"{where} has index {entry['index']}"
        got = api_outcome(entry["plan"])
        assert (entry["problem"] is None) == (got is not None), f"{where}: not plan xor problem"
        assert got == outcome, f"{where}: API {got} != baseline {outcome}"
    summary = data["fleetPlan"]["summary"]
    assert summary == expected.summary, f"fleetPlan summary: API {summary} != {expected.summary}"
    return len(entries)


# --- the API, in process and over HTTP ---------------------------------------------------------


@dataclass
class InProcess:
    schema: Any
    services: Services
    principal: Principal

    async def execute(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        context = Context(principal=self.principal, services=self.services)
        result = await self.schema.execute(query, variable_values=variables, context_value=context)
        if result.errors:
            raise RuntimeError(f"GraphQL errors: {[e.message for e in result.errors[:3]]}")
        assert result.data is not None
        return result.data


def server(
    settings: Settings,
    log: Path,
    command: list[str] | None = None,
    ready_seconds: float = 30.0,
    **variables: str,
) -> contextlib.AbstractAsyncContextManager[ServerProcess]:
    """``cpl-pathways serve`` with ``settings`` (and the environment ``variables``) on a free
    loopback port, the way ``make run`` serves, or run by ``command`` (``[python, -m, cli]``
    behind a profiler); ready when entered, stopped after."""
    env = cli_env(
        settings.database_url,
        settings.data_dir,
        CPL_ENV=settings.environment,
        CPL_ISSUER=settings.issuer,
        CPL_AUDIENCE=settings.audience,
        CPL_RESPONSE_CACHE_SIZE=str(settings.response_cache_bytes / 1_000_000),
        **variables,
    )
    return cli_server(env, log, command=command, ready_seconds=ready_seconds)


def peak_kib(pid: int) -> int:
    """A process's peak resident set (VmHWM) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def post(client: httpx.AsyncClient, body: bytes) -> tuple[float, dict[str, Any], int]:
    """One timed request: from sending the (already encoded) body to the whole response read."""
    started = time.perf_counter()
    response = await client.post("/graphql", content=body)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
    payload = response.json()
    if payload.get("errors"):
        raise RuntimeError(f"GraphQL errors: {payload['errors'][:3]}")
    return elapsed, payload["data"], len(response.content)


def encode(query: str, variables: dict[str, Any]) -> bytes:
    return json.dumps({"query": query, "variables": variables}).encode()


# --- one backend at one scale ------------------------------------------------------------------


@dataclass
class Workload:
    """What both sides are asked, drawn once from the seeded generator."""

    token: str
    pairs: list[tuple[int, str]]
    warmup: list[tuple[int, str]]
    fleets: dict[int, list[dict[str, Any]]]


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


def path_variables(device_id: int, version: str) -> dict[str, Any]:
    return {"deviceId": f"device:{device_id}", "from": version}


FLEET_SUMMARY_ONLY = """
query Fleet($items: [FleetItemInput!]!) {
  fleetPlan(items: $items) { summary { meters upToDate upgradable blocked } }
}
"""
FLEET_NO_STEPS = """
query Fleet($items: [FleetItemInput!]!) {
  fleetPlan(items: $items) {
    summary { meters upToDate upgradable blocked }
    entries { index problem plan { reachable } }
  }
}
"""


async def diagnose(api: InProcess, work: Workload) -> None:
    """``--profile``: where a warm in-process call spends its time, stage by stage, then a
    cProfile of the largest fleetPlan. Not part of the timed results."""
    try:  # strawberry's shared cache for ValidationCache(maxsize=256), as schema.extensions sets
        from strawberry.extensions.validation_cache import _get_validate_cache

        cache = _get_validate_cache(256)
    except ImportError:
        cache = None
    if cache is not None:
        before = cache.cache_info()
        for device_id, version in work.pairs[:50]:
            await api.execute(UPGRADE_PATH, path_variables(device_id, version))
        after = cache.cache_info()
        say(
            f"validation cache over 50 upgradePath calls of one document: "
            f"{after.hits - before.hits} hits, {after.misses - before.misses} misses"
        )
    items = work.fleets[max(work.fleets)]
    planned = [fleet_item(item) for item in items]

    async def resolver_only() -> None:
        db = RequestSession(api.services.db_sessions)
        try:
            await plan_fleet(db, await api.services.snapshots.current(), planned)
        finally:
            await db.close()

    async def run_full() -> None:
        await api.execute(FLEET_PLAN, {"items": items})

    stages = [
        ("plan_fleet() alone, no GraphQL", resolver_only),
        ("fleetPlan { summary }", lambda: api.execute(FLEET_SUMMARY_ONLY, {"items": items})),
        (
            "+ entries { index problem plan { reachable } }",
            lambda: api.execute(FLEET_NO_STEPS, {"items": items}),
        ),
        ("+ plan { steps { id } } (the benchmark's selection)", run_full),
    ]

    say(f"in process, warm, {len(items):,} items (best of 2):")
    for label, stage in stages:
        times = []
        for _ in range(2):
            started = time.perf_counter()
            await stage()
            times.append(time.perf_counter() - started)
        say(f"  {label}: {min(times):.2f} s")
    profiler = cProfile.Profile()
    profiler.enable()
    await run_full()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


def fleet_item(item: dict[str, Any]) -> FleetItem:
    """The resolver's input for one item, decoded as the schema layer does."""
    raw = item.get("deviceId")
    prefix, _, number = (raw or "").partition(":")
    device_id = int(number) if prefix == "device" and number.isdigit() else None
    return FleetItem(
        device_id=device_id,
        bad_device_id=raw is not None and device_id is None,
        manufacturer_identifier=item.get("manufacturerIdentifier"),
        model_identifier=item.get("modelIdentifier"),
        hardware_version=item.get("hardwareVersion"),
        firmware_version=item["firmwareVersion"],
        meter_count=item.get("meterCount", 1),
    )


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


def say(message: str) -> None:
    print(message, flush=True)


# --- the report --------------------------------------------------------------------------------


def machine(pg_version: str | None) -> list[str]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [
        line.split(":", 1)[1].strip()
        for line in cpuinfo.splitlines()
        if line.startswith("model name")
    ]
    memory = ""
    if Path("/proc/meminfo").exists():
        total = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        memory = f"{int(total) / 1024 / 1024:.1f} GiB"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    libraries = ", ".join(
        f"{name} {metadata.version(name)}" for name in LIBRARIES if _installed(name)
    )
    return [
        f"- Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"- CPU: {models[0] if models else platform.processor() or 'unknown'}, "
        f"{cpus} CPUs available (`nproc`)",
        f"- Memory: {memory}",
        f"- OS: {platform.platform()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"SQLite {sqlite3.sqlite_version}, "
        + (f"PostgreSQL {pg_version} (local, loopback TCP)" if pg_version else "no PostgreSQL"),
        f"- Libraries: {libraries}",
    ]


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def mark(ok: bool) -> str:
    return "✅ pass" if ok else "❌ FAIL"


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


def write_readme(
    section: str, markers: tuple[str, str] = (START, END), heading: str = "Results"
) -> None:
    """Replace what stands between a benchmark's markers in bench/README.md (or add it, under
    `heading`, the first time)."""
    start, end = markers
    readme = README.read_text(encoding="utf-8")
    if start in readme and end in readme:
        head, rest = readme.split(start, 1)
        _, tail = rest.split(end, 1)
        readme = f"{head}{start}\n{section}\n{end}{tail}"
    else:
        readme = f"{readme.rstrip()}\n\n## {heading}\n\n{start}\n{section}\n{end}\n"
    README.write_text(readme, encoding="utf-8")


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
