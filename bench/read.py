"""The read benchmark behind ``make bench``: the typical Supplier query over HTTP, against the
hand-written endpoint of ``bench.baseline_read`` and, on PostgreSQL, PostGraphile (the peer,
``bench.peer``), measured in the same run.

For each backend (SQLite, PostgreSQL) and CPL (the demo, the real-scale synthetic one):

1. The API warm (response cache on) and uncached (``CPL_RESPONSE_CACHE_SIZE=0``, ``python -m
   server.cli serve``), the baseline and, on PostgreSQL, the peer start as separate processes
   on the same database, and all keep serving; each API process's answers are compared with
   the baseline's after parsing (every scenario's; `distinct`'s for the first page, the empty
   one after the last device and the first bodies of its table), each peer process's with the
   API's by ``bench.peer.check_equal`` (`supplier`, and the same `distinct` pages). The peer
   is skipped, with a printed note, on SQLite or when ``peer_missing()`` says why.
2. wrk (one thread, 8 connections) loads each in ``--rounds`` rounds of ``--seconds / rounds``
   a run, for the scenarios of ``bench.read_scenarios``: a Supplier, an SSC analyst asking for
   the two SSC-only fields, a Supplier asking for them (denied) and, on the warm API, the
   baseline and the peer, `distinct`: a page drawn per request, as a paging front-end asks, its
   table posted in turn from where the server's last run of it stopped (the peer's the same
   draws as (first, offset) pages); before each such run on the warm API a write (a new data
   revision), so that its response cache holds nothing asked before, and the hit rate read
   from the API's /metrics before and after every run. The peer answers `supplier` and
   `distinct` only. A round runs every (server, scenario) once, in an order that rotates round
   by round, so that the machine's drift (5-15 % from one run to the next on 2 cores) falls on
   every side of a comparison alike instead of on its ratio.
3. Reported a scenario: the median req/s of its rounds, the server processes' CPU time an
   answer (``/proc/<pid>/stat``, the median of its rounds; not the peer's, whose work is mostly
   in PostgreSQL), p50 and p99 of all its requests (as ``bench.wrk`` pools them), the response
   cache's hit rate, its ratios to the baseline and to the peer and, for ``ssc`` and
   ``denied``, to ``supplier`` in rate and in CPU an answer (each the median of the ratios
   within a round), with the targets of ``bench.read_tables`` met or not. The CPU ratio leaves
   out wrk, which shares the two cores, but it drifts too: one scenario's runs were measured
   60 % apart, so 5 rounds do not settle 5 %, and the 5 % target is judged on instructions
   instead (``bench.read_cost``).
4. 200 concurrent connections for ``--burst`` seconds on the warm API, `supplier` (the cache
   hit) and `distinct` (missed), and on the peer, `distinct`: p50, p99, the slowest request,
   errors, the hit rate; the API's `distinct` beside the peer's.
5. On PostgreSQL, two API processes a mode (each behind half the connections) beside one, and
   as many peer processes as the API's.

A server of another kind joins the rounds as one more ``bench.read_servers.Server`` in
``measure_cpl``'s list, as the peer does: its rows follow. Only loopback traffic; every loop is
bounded in time. Results are printed and, unless ``--no-readme``, written between the read
markers of ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
from pathlib import Path

from bench.generate import load_synthetic_cpl
from bench.peer import peer_missing
from bench.read_scenarios import (
    DISTINCT,
    api_requests,
    device_cursors,
    distinct_draws,
    edge_draws,
    offsets,
    paged,
    peer_page,
    peer_requests,
)
from bench.read_servers import (
    MODE_SCENARIOS,
    Server,
    api_server,
    baseline_server,
    cache_lookups,
    new_revision,
    peer_server,
    same_answers,
    same_as_peer,
)
from bench.read_tables import BASELINE, BURST_CLIENTS, Measured, machine, server_rows, table
from bench.readme import write_readme
from bench.servers import bench_database
from bench.wrk import Run, bodies_script, summary, wrk
from config.settings import Settings
from tests.harness import dev_tokens, own_settings, seed_demo_database

START, END = "<!-- read:start -->", "<!-- read:end -->"
CPLS = {"demo": 0, "real": 500}  # synthetic devices (0: the demo CPL)
CHECKED = 20  # `distinct` bodies compared between the API and the baseline, beside the edges


def rotated(items: list, by: int) -> list:
    by %= len(items)
    return items[by:] + items[:by]


def schedule(servers: list[Server], rounds: int) -> list[list[tuple[Server, str]]]:
    """Each round's runs, (server, scenario): every pair once a round. A server's scenarios run
    back to back, so a ratio to `supplier` compares runs seconds apart; both orders rotate a
    step a round, so that no scenario is always first, last, or after the same neighbour."""
    return [
        [(one, name) for one in rotated(servers, r) for name in rotated(list(one.scenarios), r)]
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


class Rounds:
    """The runs of every server, each scenario's requests posted in turn from where its last
    run stopped (so a run asks what no earlier one did while its table lasts)."""

    def __init__(self, servers: list[Server], settings: Settings, log_dir: Path) -> None:
        self.servers = servers
        self.settings = settings
        self.log_dir = log_dir
        self.measured = Measured()
        self.turns: dict[tuple[str, str], int] = {}

    async def load(
        self, one: Server, name: str, connections: int, seconds: int
    ) -> tuple[list[Run], float, tuple[int, int]]:
        """One run: wrk's reports, the server's CPU time an answer (µs; wrk's own share of the
        cores not in it) and the response cache's (hits, misses) meanwhile. A `distinct` run
        on a response cache comes after a write, so the cache holds nothing of earlier runs."""
        if name == DISTINCT and one.cached:
            await new_revision(self.settings, self.servers)
        requests = one.scenarios[name]
        script = bodies_script(self.log_dir, requests.headers, requests.bodies)
        turn = self.turns.get((one.name, name), 0)
        hits, misses = await cache_lookups(one)
        before = cpu_seconds(one.pids)
        done = wrk(one.urls, script, connections, seconds, [str(turn)])
        spent = cpu_seconds(one.pids) - before
        answers = sum(run.requests for run in done)
        self.turns[one.name, name] = turn + answers + connections
        hits_after, misses_after = await cache_lookups(one)
        lookups = (hits_after - hits, misses_after - misses)
        return done, spent / (answers or 1) * 1e6, lookups

    async def measure(self, args: argparse.Namespace) -> Measured:
        """Every (server, scenario) once a round, in the order of `schedule`; then the
        200-client runs."""
        measured = self.measured
        for order in schedule(self.servers, args.rounds):
            for one, name in order:
                done, cpu, lookups = await self.load(one, name, 8, slot_seconds(args))
                measured.runs.setdefault((one.name, name), []).append(done)
                measured.cpu.setdefault((one.name, name), []).append(cpu)
                measured.lookups.setdefault((one.name, name), []).append(lookups)
        for one in self.servers:
            for name in one.bursts:
                done, _, lookups = await self.load(one, name, BURST_CLIENTS, int(args.burst))
                measured.bursts[one.name, name] = (summary([done]), lookups)
        return measured


async def measure_cpl(
    settings: Settings, args: argparse.Namespace, log_dir: Path, processes: int, peer: bool
) -> list[str]:
    """The baseline, the API warm and uncached and, if `peer`, PostGraphile all serve at once,
    so that their runs can take turns in every round; each API process's answers are checked
    against the baseline's first (which also warms it), each peer process's against the API's."""
    make = dev_tokens(settings)
    tokens = {c: make(c, ttl_seconds=6 * 3600) for c in ("SMALL_SUPPLIER", "SSC")}
    async with contextlib.AsyncExitStack() as stack:
        apis = [
            await stack.enter_async_context(api_server(settings, mode, processes, log_dir))
            for mode in MODE_SCENARIOS
        ]
        cursors = await device_cursors(
            apis[0].urls[0].removesuffix("/graphql"), tokens["SMALL_SUPPLIER"]
        )
        draws = distinct_draws(cursors)
        checked = [*edge_draws(cursors), *draws[:CHECKED]]
        requests = api_requests(tokens, draws)
        baseline = await stack.enter_async_context(baseline_server(settings, log_dir, requests))
        checks = {name: one.bodies for name, one in requests.items() if name != DISTINCT}
        checks[DISTINCT] = [paged(draw) for draw in checked]
        for api in apis:
            api.scenarios = {name: requests[name] for name in MODE_SCENARIOS[api.name]}
            await same_answers(api, baseline, checks)
        servers = [baseline, *apis]
        if peer:
            skipped = offsets(cursors)
            theirs = peer_requests(requests["supplier"].headers, skipped, draws)
            servers.append(
                await stack.enter_async_context(peer_server(settings, processes, log_dir, theirs))
            )
            pages = {
                "supplier": [(requests["supplier"].bodies[0], theirs["supplier"].bodies[0])],
                DISTINCT: [(paged(draw), peer_page(draw, skipped)) for draw in checked],
            }
            await same_as_peer(apis[0], servers[-1], pages)
        measured = await Rounds(servers, settings, log_dir).measure(args)
    return [row for one in servers if one.name != BASELINE
            for row in server_rows(one.name, processes, measured)]  # fmt: skip


def peer_skipped(backend: str) -> str | None:
    """Why the peer sits out on `backend` (it reads PostgreSQL only), or None."""
    return "PostGraphile reads PostgreSQL only" if backend != "postgresql" else peer_missing()


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
                    if skipped := peer_skipped(backend):
                        print(f"note: the peer is skipped on {backend}: {skipped}", flush=True)
                    rows = []
                    for processes in (1, 2) if backend == "postgresql" else (1,):
                        rows += await measure_cpl(
                            settings, args, data_dir, processes, peer=not skipped
                        )
                title = f"{backend}, {cpl} CPL"
                sections.append(table(title, rows, args.rounds, slot_seconds(args)))
                print(sections[-1], flush=True)
    return "\n".join(sections)


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
    parser.add_argument("--burst", type=float, default=30, help="the 200-client runs")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args(argv)
    text = asyncio.run(run(args))
    if not args.no_readme:
        write_readme(text, (START, END), "Reads")


if __name__ == "__main__":
    main()
