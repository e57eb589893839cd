"""The servers of the read benchmark, each as the rounds see it (`Server`): the baseline's
process, the API's processes in a mode, the peer's (PostGraphile, `bench.peer`), what the API's
metrics say of its response cache, and a new data revision, as a write makes one, before a run
that must find nothing cached.

A server of another kind joins the rounds as a `Server` of its own: a name, its URLs, its
processes and, for each scenario of `bench.read_scenarios` it answers, its own requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from bench.peer import check_equal, peer_jwt, peer_processes
from bench.read_scenarios import ALL, DISTINCT, SCENARIOS, Requests
from bench.read_tables import BASELINE, PEER
from bench.readme import ROOT
from bench.servers import BUMP_REVISION, execute_sql, server
from config.settings import Settings
from tests.live import cli_env, free_port

# The API's modes: its response cache's size; the scenarios measured; those measured with 200
# clients too (`distinct` on the uncached API would measure `supplier` again).
CACHE_BYTES = {"warm": 64_000_000, "uncached": 0}
MODE_SCENARIOS = {"warm": ALL, "uncached": tuple(SCENARIOS)}
MODE_BURSTS = {"warm": ("supplier", DISTINCT), "uncached": ()}
# GraphQL operations by how the response cache answered them (`config/metrics.py`).
OPERATIONS = re.compile(
    r'^cpl_graphql_operations_total\{[^}]*cache="(hit|miss)"[^}]*\} (\S+)$', re.M
)


@dataclass
class Server:
    """A server the rounds load: its name in the rows, each process's GraphQL URL (wrk's
    connections shared out among them), their pids (CPU time an answer) and, by scenario, what
    wrk posts. `api`: the API, whose /metrics count its response cache's hits and whose
    snapshot is built again after a write; `cached`: with a response cache, which must hold
    nothing a `distinct` run asks; `bursts`: scenarios also run with 200 clients."""

    name: str
    urls: list[str]
    pids: list[int]
    scenarios: dict[str, Requests]
    api: bool = False
    cached: bool = False
    bursts: tuple[str, ...] = field(default=())

    def metrics(self) -> list[str]:
        return [url.removesuffix("/graphql") + "/metrics" for url in self.urls] if self.api else []


async def post(url: str, requests: Requests, body: str) -> Any:
    async with httpx.AsyncClient(timeout=120) as client:
        headers = {**requests.headers, "Content-Type": "application/json"}
        response = await client.post(url, content=body, headers=headers)
        return response.json()


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


@contextlib.asynccontextmanager
async def baseline_server(
    settings: Settings, log_dir: Path, scenarios: dict[str, Requests]
) -> AsyncIterator[Server]:
    """`bench.baseline_read` on a free port, answering once entered."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/graphql"
    with baseline_process(settings, port, log_dir / "baseline.log") as process:
        supplier = scenarios["supplier"]
        for _ in range(300):
            with contextlib.suppress(httpx.TransportError):
                await post(url, supplier, supplier.bodies[0])
                break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"nothing answers at {url}")
        yield Server(BASELINE, [url], [process.pid], scenarios)


@contextlib.asynccontextmanager
async def api_server(
    settings: Settings, mode: str, processes: int, log_dir: Path
) -> AsyncIterator[Server]:
    """`processes` of ``cpl-pathways serve`` in `mode`, ready; their requests are set once the
    cursors are known (`bench.read_scenarios.api_requests`)."""
    mode_settings = replace(settings, response_cache_bytes=CACHE_BYTES[mode])
    async with contextlib.AsyncExitStack() as stack:
        running = [
            await stack.enter_async_context(server(mode_settings, log_dir / f"api-{mode}-{i}.log"))
            for i in range(processes)
        ]
        yield Server(
            mode,
            [f"{one.base}/graphql" for one in running],
            [one.process.pid for one in running],
            {},
            api=True,
            cached=CACHE_BYTES[mode] > 0,
            bursts=MODE_BURSTS[mode],
        )


@contextlib.asynccontextmanager
async def peer_server(
    settings: Settings, processes: int, log_dir: Path, scenarios: dict[str, Requests]
) -> AsyncIterator[Server]:
    """`processes` of PostGraphile on the API's database, ready, each verifying the API's ES256
    tokens (`bench.peer.peer_jwt`)."""
    jwt = peer_jwt(settings, log_dir)
    ports = [free_port() for _ in range(processes)]
    async with peer_processes(settings.database_url, ports, log_dir, jwt) as running:
        yield Server(
            PEER,
            [f"{one.base}/graphql" for one in running],
            [one.process.pid for one in running],
            scenarios,
            bursts=(DISTINCT,),
        )


async def same_as_peer(api: Server, peer: Server, pages: dict[str, list[tuple[str, str]]]) -> None:
    """Every process of the peer answers each of `pages`' (the API's body, the peer's) as the
    API does, by `bench.peer.check_equal` (which raises `PeerMismatch` at a difference)."""
    for name, pairs in pages.items():
        for ours, theirs in pairs:
            expected = await post(api.urls[0], api.scenarios[name], ours)
            for url in peer.urls:
                got = await post(url, peer.scenarios[name], theirs)
                what = f"{name}, variables {json.loads(theirs).get('variables')}"
                check_equal(expected, got, what)


async def same_answers(ours: Server, theirs: Server, checks: dict[str, list[str]]) -> None:
    """Every process of `ours` answers each of `checks`' bodies (both servers' requests) as
    `theirs` does, after parsing."""
    for name, bodies in checks.items():
        if name not in ours.scenarios or name not in theirs.scenarios:
            continue
        for body in bodies:
            expected = await post(theirs.urls[0], theirs.scenarios[name], body)
            for url in ours.urls:
                got = await post(url, ours.scenarios[name], body)
                assert got == expected, f"{name}: {ours.name} and {theirs.name} answer differently"


async def cache_lookups(server: Server) -> tuple[int, int]:
    """(hits, misses) of the response cache so far, all the server's processes (none: 0, 0)."""
    hits = misses = 0
    async with httpx.AsyncClient(timeout=30) as client:
        for url in server.metrics():
            for kind, value in OPERATIONS.findall((await client.get(url)).text):
                if kind == "hit":
                    hits += int(float(value))
                else:
                    misses += int(float(value))
    return hits, misses


async def new_revision(settings: Settings, servers: list[Server]) -> None:
    """A new data revision, as any CPL write makes (the response caches then miss whatever was
    asked before), seen by every API process once its revision is a `revision_max_age` old,
    each of which answers once so that its snapshot is built outside the next run."""
    await execute_sql(settings.database_url, BUMP_REVISION)
    await asyncio.sleep(settings.revision_max_age_seconds + 0.2)
    for one in servers:
        if one.api:
            supplier = one.scenarios["supplier"]
            for url in one.urls:
                await post(url, supplier, supplier.bodies[0])
