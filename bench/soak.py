"""``make soak``: a server under mixed traffic for ten minutes, with hostile requests among it
and the database restarted halfway, and what its benign callers saw.

Outside ``make test`` (it runs for minutes and restarts a database). One ``cpl-pathways
serve`` on PostgreSQL (the demo CPL), ``--clients`` (200) loopback clients, each a Party of its
own, each sending about ``--rate`` (1) requests a second until ``--seconds`` (600) have passed:

- benign, 95 %: the typical Supplier page (75 %; ``first``/``after`` drawn, so many miss the
  response cache), ``{ viewer { partyId } }`` (15 %), a small ``fleetPlan`` (8 %), and a
  Manufacturer's ``addFirmware`` with a version of its own (2 %: each write moves the data
  revision, so every cached answer and the snapshot go; every write answered as a success is
  looked for in the database at the end);
- hostile, 5 % (the bounds issue's rows): the 40-level fragment bomb, the 18-level forking
  chain, JSON nested 5,000 deep, a 2 MB body without a token, a bad token, a 1 MB unique
  variable, a restricted filter through a variable's default;
- twenty subscribers on ``cplChanges`` all along.

Halfway, the database goes away for ``--outage`` (10) seconds: ``pg_ctlcluster restart`` where
the cluster is this machine's (``--restart cluster``), else (the default) the database is
closed to connections and its backends terminated, then opened again, which a failover does
to the server alike.

Reported: p50/p99 of the benign requests outside the outage, in all and by kind (the target:
``{ viewer { partyId } }``'s p99 <= 100 ms), the server's RSS after the first quarter and at
the end (flat within 10 %, at most 500 MB), answers by status (no 500), tracebacks in the
server's log (none), writes acknowledged but missing (none), events the subscribers got.
Written between the soak markers of ``bench/README.md`` unless ``--no-readme``. Only loopback
traffic; every loop ends by the clock.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from websockets.asyncio.client import connect

from bench.read_scenarios import PUBLIC
from bench.readme import write_readme
from bench.servers import bench_database, server
from bench.stats import Stats
from models.database import create_engine
from tests.harness import PG_URL, dev_tokens, own_settings, seed_demo_database
from tests.test_attacks import forking_chain, fragment_bomb

START, END = "<!-- soak:start -->", "<!-- soak:end -->"
TARGET_P99 = 0.100
TARGET_RSS_KIB = 500 * 1024
SUBSCRIBERS = 20
PAGED = PUBLIC.replace("devices(first: 50)", "devices(first: $first, after: $after)")
PAGED = "query Page($first: Int, $after: String) " + PAGED
ADD = """mutation Add($input: AddFirmwareInput!) { addFirmware(input: $input) {
  __typename ... on AddFirmwareSuccess { firmware { id } } } }"""
PLAN = """{ fleetPlan(items: [{deviceId: "device:1", firmwareVersion: "7F000000", meterCount: 40},
  {deviceId: "device:3", firmwareVersion: "7F020000", meterCount: 9}]) { summary { meters } } }"""
DEFAULT_FILTER = (
    'query($f: DeviceFilter = {zigbeeChipsetVendor: "Lumen Silicon"}) '
    "{ devices(filter: $f) { totalCount } }"
)


@dataclass
class Tally:
    benign: Stats = field(default_factory=Stats)
    by_kind: dict[str, Stats] = field(default_factory=lambda: collections.defaultdict(Stats))
    statuses: collections.Counter[tuple[str, int]] = field(default_factory=collections.Counter)
    written: list[int] = field(default_factory=list)  # firmware ids answered as added
    events: int = 0
    outage: tuple[float, float] = (0.0, 0.0)  # when the database was away (and 5 s after)

    def in_outage(self, moment: float) -> bool:
        return self.outage[0] <= moment <= self.outage[1] + 5


def _hostile(rng: random.Random, token: str) -> tuple[str, dict, bytes | None]:
    """(kind, headers, body) of one hostile request."""
    bearer = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    kind = rng.choice(
        ["bomb", "forking", "deep", "unauthenticated", "bad token", "large variable", "default"]
    )
    if kind == "bomb":
        body = {"query": fragment_bomb(40)}
    elif kind == "forking":
        body = {"query": forking_chain(18)}
    elif kind == "deep":
        nested = "[" * 5000 + "]" * 5000
        return (
            kind,
            bearer,
            f'{{"query": "{{ __typename }}", "variables": {{"x": {nested}}}}}'.encode(),
        )
    elif kind == "unauthenticated":
        return kind, {"Content-Type": "application/json"}, b" " * 2_000_000
    elif kind == "bad token":
        return kind, {**bearer, "Authorization": "Bearer x.y.z"}, b'{"query": "{ __typename }"}'
    elif kind == "large variable":
        body = {"query": "{ __typename }", "variables": {"pad": f"{rng.random()}" * 60_000}}
    else:
        body = {"query": DEFAULT_FILTER}
    return kind, bearer, json.dumps(body).encode()


async def _client(
    n: int, base: str, tokens, deadline: float, tally: Tally, hostile_share: float, rate: float
) -> None:
    """One Party's front-end: a request about every 1/`rate` seconds (jittered), as users
    paging through it would send them, not as fast as the server answers."""
    rng = random.Random(n)
    due = time.monotonic() + rng.random() / rate
    supplier = tokens("LARGE_SUPPLIER", party_id=f"SOAK-S-{n}")
    maker = tokens("MANUFACTURER", party_id=f"SOAK-M-{n}")
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        sequence = 0
        while time.monotonic() < deadline:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due += rng.uniform(0.5, 1.5) / rate
            started = time.monotonic()
            if rng.random() < hostile_share:
                kind, headers, body = _hostile(rng, supplier)
                with contextlib.suppress(httpx.TransportError):  # a refused body may reset
                    response = await client.post("/graphql", content=body, headers=headers)
                    tally.statuses[(f"hostile: {kind}", response.status_code)] += 1
                continue
            roll = rng.random()
            headers = {"Authorization": f"Bearer {supplier}"}
            if roll < 0.75:
                kind = "page"
                after = rng.choice([None, "MA==", "MTA=", "Mw=="])
                body = {"query": PAGED, "variables": {"first": rng.randint(1, 50), "after": after}}
            elif roll < 0.90:
                kind, body = "viewer", {"query": "query Who { viewer { partyId } }"}
            elif roll < 0.98:
                kind, body = "fleet plan", {"query": PLAN}
            else:
                sequence += 1
                kind, headers = "write", {"Authorization": f"Bearer {maker}"}
                version = f"{(n * 4096 + sequence) % 0xFFFFFFFF:08X}"
                body = {
                    "query": ADD,
                    "variables": {"input": {"deviceId": "device:2", "version": version}},
                }
            try:
                response = await client.post("/graphql", json=body, headers=headers)
            except httpx.TransportError:
                tally.statuses[(kind, 0)] += 1
                continue
            tally.statuses[(kind, response.status_code)] += 1
            if not tally.in_outage(started):
                tally.benign.values.append(time.monotonic() - started)
                tally.by_kind[kind].values.append(time.monotonic() - started)
            if kind == "write" and response.status_code == 200:
                added = (response.json().get("data") or {}).get("addFirmware") or {}
                if added.get("__typename") == "AddFirmwareSuccess":
                    tally.written.append(int(added["firmware"]["id"].split(":")[1]))


async def _subscriber(base: str, token: str, deadline: float, tally: Tally) -> None:
    query = "subscription { cplChanges { eventId kind } }"
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # the server may close it in the outage: again
            async with connect(
                f"{base.replace('http', 'ws')}/graphql", subprotocols=["graphql-transport-ws"]
            ) as ws:
                await ws.send(
                    json.dumps(
                        {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
                    )
                )
                await ws.recv()
                await ws.send(
                    json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}})
                )
                while time.monotonic() < deadline:
                    message = await asyncio.wait_for(
                        ws.recv(), max(0.1, deadline - time.monotonic())
                    )
                    if json.loads(message).get("type") == "next":
                        tally.events += 1
        await asyncio.sleep(0.5)


async def _cluster(action: str) -> None:
    """`pg_ctlcluster ACTION` on this machine's (Debian's) PostgreSQL cluster."""
    versions = await asyncio.to_thread(os.listdir, "/etc/postgresql")
    command = shutil.which("pg_ctlcluster") or "pg_ctlcluster"
    process = await asyncio.create_subprocess_exec(
        command, "--skip-systemctl-redirect", max(versions), "main", action
    )
    if await process.wait():
        raise RuntimeError(f"pg_ctlcluster {action} failed")


async def _outage(url: str, restart: str, seconds: float, tally: Tally) -> None:
    name = make_url(url).database
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    started = time.monotonic()
    try:
        if restart == "cluster" and shutil.which("pg_ctlcluster"):
            await _cluster("stop")
            await asyncio.sleep(seconds)
            await _cluster("start")
        else:
            async with admin.connect() as connection:
                await connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                await connection.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "  # noqa: S608
                    f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                ))  # fmt: skip
            await asyncio.sleep(seconds)
            async with admin.connect() as connection:
                await connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
    finally:
        tally.outage = (started, time.monotonic())
        await admin.dispose()


def _tracebacks(log: str) -> list[str]:
    """The last line of each traceback in a server's log: what was raised."""
    found, lines = [], log.splitlines()
    for number, line in enumerate(lines):
        if line.startswith("Traceback"):
            after = lines[number + 1 :]
            found.append(next((x for x in after if x and not x.startswith(" ")), "?")[:200])
    return found


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def soak(
    seconds: float, clients: int, hostile: float, outage: float, restart: str, rate: float
):
    tally = Tally()
    rss: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with bench_database("postgresql", Path(tmp)) as url:
            await seed_demo_database(url)
            settings = own_settings(Path(tmp), url)
            tokens = dev_tokens(settings)
            log = Path(tmp) / "server.log"
            # The rate limit as production has it (the suite's servers run without it).
            async with server(settings, log, CPL_RATE_LIMIT_PER_SECOND="50") as running:
                deadline = time.monotonic() + seconds
                pid = running.process.pid

                async def sample() -> None:
                    while time.monotonic() < deadline:
                        rss.append(_rss_kib(pid))
                        await asyncio.sleep(1)

                async def halfway() -> None:
                    await asyncio.sleep(seconds / 2)
                    await _outage(url, restart, outage, tally)

                await asyncio.gather(
                    sample(),
                    halfway(),
                    *(
                        _subscriber(
                            running.base,
                            tokens("SMALL_SUPPLIER", party_id=f"SOAK-W-{n}"),
                            deadline,
                            tally,
                        )
                        for n in range(SUBSCRIBERS)
                    ),
                    *(
                        _client(n, running.base, tokens, deadline, tally, hostile, rate)
                        for n in range(clients)
                    ),
                )
                tracebacks = _tracebacks(running.log.read_text())
            engine = create_engine(url)
            async with engine.connect() as connection:
                found = set()
                for start in range(0, len(tally.written), 500):
                    chunk = tally.written[start : start + 500] or [-1]
                    rows = await connection.execute(
                        text(f"SELECT id FROM firmware WHERE id IN ({','.join(map(str, chunk))})")  # noqa: S608
                    )
                    found |= {row[0] for row in rows}
            await engine.dispose()
    lost = len(set(tally.written) - found)
    return tally, rss, tracebacks, lost


def report(tally: Tally, rss: list[int], tracebacks: list[str], lost: int, args) -> str:
    benign = tally.benign
    # After the first quarter: the caches (answers, documents, decisions) fill to their
    # budgets while the run warms up; what must stay flat is the rest.
    first, last = (rss[len(rss) // 4], rss[-1]) if rss else (0, 0)
    flat = last <= first * 1.10
    errors = sum(
        count for (_, status), count in tally.statuses.items() if status >= 500 and status != 503
    )
    lines = [
        f"`python -m bench.soak --seconds {args.seconds:g} --clients {args.clients} --rate "
        f"{args.rate:g}`: PostgreSQL, "
        f"demo CPL, {args.hostile:.0%} hostile, the database away {args.outage:g} s halfway "
        f"({args.restart}).",
        "",
        "| measure | value | target |",
        "| --- | --- | --- |",
        f"| benign requests (outside the outage) | {len(benign.values):,} | |",
        f"| benign p50 / p99 | {benign.median * 1000:.1f} / {benign.p99 * 1000:.1f} ms | |",
        *(
            f"| {kind}: p50 / p99 | {stats.median * 1000:.1f} / {stats.p99 * 1000:.1f} ms | "
            + (
                f"p99 <= 100 ms {'✅' if stats.p99 <= TARGET_P99 else '❌'} |"
                if kind == "viewer"
                else "|"
            )
            for kind, stats in sorted(tally.by_kind.items())
        ),
        f"| server RSS, after a quarter of the run / last "
        f"| {first / 1024:.0f} / {last / 1024:.0f} MB "
        f"| flat within 10 % {'✅' if flat else '❌'}, <= 500 MB "
        f"{'✅' if max(rss or [0]) <= TARGET_RSS_KIB else '❌'} |",
        f"| answers 500 (503 in the outage is expected) | {errors} | 0 {'✅' if not errors else '❌'} |",  # noqa: E501
        f"| tracebacks in the server's log "
        f"| {len(tracebacks)} {'; '.join(sorted(set(tracebacks)))} "
        f"| 0 {'✅' if not tracebacks else '❌'} |",
        f"| writes acknowledged, then missing | {lost} of {len(tally.written)} | 0 {'✅' if not lost else '❌'} |",  # noqa: E501
        f"| events the {SUBSCRIBERS} subscribers got | {tally.events:,} | |",
        "",
        "| request | status | count |",
        "| --- | --- | --- |",
        *(
            f"| {kind} | {status} | {count:,} |"
            for (kind, status), count in sorted(tally.statuses.items())
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--hostile", type=float, default=0.05)
    parser.add_argument("--rate", type=float, default=1.0, help="requests a second a client")
    parser.add_argument("--outage", type=float, default=10)
    parser.add_argument("--restart", choices=["database", "cluster"], default="database")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    result = report(
        *asyncio.run(
            soak(args.seconds, args.clients, args.hostile, args.outage, args.restart, args.rate)
        ),
        args,
    )
    print(result)
    if not args.no_readme:
        write_readme(result, (START, END), "Soak: mixed traffic, hostile requests, an outage")


if __name__ == "__main__":
    main()
