"""What an SSC read and a denied read cost beside a Supplier's: instructions an answer, counted
by callgrind in the serving process (``make bench``).

Why instructions: on this 2-core machine the CPU time of one scenario's runs varies by up to
60 % from one run to the next (the machine's neighbours, its frequency), so neither req/s nor
CPU time an answer (``bench.read``) settles a 5 % difference. Instructions do not drift: the
same requests count the same whatever else the machine is doing.

For each backend, on the demo CPL and the real-scale synthetic one, warm (response cache on)
and uncached:

1. ``cpl-pathways serve`` runs under ``valgrind --tool=callgrind``, as ``make run`` serves
   otherwise (about 50 times slower; the backends are measured at once, a server each). Garbage
   collection is left out of the count (``gc_collect_main``, inclusive, from
   ``callgrind_annotate``): a collection runs every hundred requests or so, and which block it
   falls in is chance (one in a block of 30 uncached answers added 8 % to it).
2. Each of the three scenarios of ``bench.read`` (the typical query as a Supplier, as an SSC
   analyst with the two SSC-only fields, and as a Supplier asking for them: denied) is asked
   ``--answers`` times in a row, one request at a time (four times as many warm, a third as
   many uncached at real scale), in ``--rounds`` rounds whose order rotates; once what a block
   left to do is done, callgrind dumps its count. The server's own
   timers (the change listener's check, the webhook poll) run by the clock, not by request, so
   an idle block is counted too, and their share of each block's time taken out.
3. Reported: instructions an answer (all blocks of a scenario), and ``ssc`` and ``denied``
   against ``supplier``, with the 5 % target.

One request at a time, each SSC answer commits its own access-log entry before it is sent
(``permissions.ssc_access``: entries share a transaction only when requests overlap), so the
``ssc`` rows count that transaction too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx

from bench.generate import load_synthetic_cpl
from bench.read import CPLS, rotated
from bench.read_scenarios import SCENARIOS
from bench.read_servers import CACHE_BYTES
from bench.read_tables import SAME_AS_SUPPLIER, mark
from bench.readme import write_readme
from bench.servers import bench_database, server
from config.settings import Settings
from tests.harness import dev_tokens, own_settings, seed_demo_database
from tests.live import ServerProcess

START, END = "<!-- read-cost:start -->", "<!-- read-cost:end -->"
CALLGRIND = ("--tool=callgrind", "--dump-line=no")
READY_SECONDS = 600  # start-up under callgrind: about 90 s here
# After a block, long enough for what it left to do to be counted with it, not with the next.
SETTLE_SECONDS = 1.0
IDLE_SECONDS = 30.0  # the idle block: its timers at their own pace (the webhook poll's is 5 s)
# A warm answer costs a fifth of an uncached one: its blocks are longer, so that the lumps of
# the timers (a webhook poll is as much as a warm answer or two) weigh as little.
WARM_BLOCKS = 4
# An uncached answer at real scale (500 devices, 50 a page) costs about eight times one on the
# demo CPL: a third as many answers a block. A warm one costs the same: as many.
SCALE_BLOCKS = {"demo": 1, "real": 3}
TOTALS = re.compile(r"^(?:totals|summary): (\d+)", re.M)
# A garbage collection's instructions, inclusive: its function, parts of which callgrind names
# by the header they were inlined from (object.h:gc_collect_main), not a recursion's ("'2").
COLLECTING = re.compile(r"^\s*([\d,]+) \([^)]*\)\s+\S+:gc_collect_main(?:\s|$)", re.M)


class Counter:
    """The instructions a process under callgrind has run since the last `take`."""

    def __init__(self, pid: int, directory: Path) -> None:
        self.pid = pid
        self.directory = directory
        self.dumps = 0

    async def take(self) -> int:
        """In a thread: a dump takes a second or two, and the other backend's server is being
        asked meanwhile, by this event loop."""
        return await asyncio.to_thread(self._take)

    def _take(self) -> int:
        self.dumps += 1
        subprocess.run(  # noqa: S603 - valgrind's own tool, on our own process
            [shutil.which("callgrind_control") or "callgrind_control", "--dump", str(self.pid)],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        dump = self.directory / f"callgrind.{self.pid}.{self.dumps}"
        total = int(TOTALS.search(dump.read_text(errors="replace")).group(1))  # type: ignore[union-attr]
        annotated = subprocess.run(  # noqa: S603 - valgrind's own tool, on its own file
            [shutil.which("callgrind_annotate") or "callgrind_annotate", "--inclusive=yes",
             "--threshold=100", str(dump)],
            check=True, capture_output=True, text=True, timeout=120,
        ).stdout  # fmt: skip
        dump.unlink()
        return total - sum(int(n.replace(",", "")) for n in COLLECTING.findall(annotated))


def counted_server(
    settings: Settings, directory: Path
) -> contextlib.AbstractAsyncContextManager[ServerProcess]:
    """The server under callgrind, its dumps in `directory`."""
    valgrind = [
        shutil.which("valgrind") or "valgrind",
        *CALLGRIND,
        f"--callgrind-out-file={directory}/callgrind.%p",
        sys.executable, "-m", "server.cli",
    ]  # fmt: skip
    return server(
        settings,
        directory / "server.log",
        command=valgrind,
        ready_seconds=READY_SECONDS,
    )


async def count_blocks(
    running: ServerProcess,
    counter: Counter,
    tokens: dict[str, str],
    settle: dict[str, float],
    answers: int,
    args: argparse.Namespace,
) -> dict[str, float]:
    """Instructions an answer for each scenario, the idle timers' share taken out; a block is
    counted `settle[scenario]` seconds after its last answer."""
    bodies = {name: json.dumps({"query": query}) for name, (_, query) in SCENARIOS.items()}
    spent = {name: 0.0 for name in SCENARIOS}
    seconds = {name: 0.0 for name in SCENARIOS}
    async with httpx.AsyncClient(base_url=running.base, timeout=120) as client:

        async def ask(name: str) -> None:
            category, _ = SCENARIOS[name]
            response = await client.post(
                "/graphql",
                content=bodies[name],
                headers={"Authorization": f"Bearer {tokens[category]}",
                         "Content-Type": "application/json"},
            )  # fmt: skip
            assert response.status_code == 200 and "data" in response.json(), response.text

        for name in SCENARIOS:  # warm-up: caches, the parser, the pools
            for _ in range(3):
                await ask(name)
        await asyncio.sleep(max(settle.values()))
        await counter.take()
        for turn in range(args.rounds):
            for name in rotated(list(SCENARIOS), turn):
                started = time.monotonic()
                for _ in range(answers):
                    await ask(name)
                await asyncio.sleep(settle[name])  # what the block left to do after it
                seconds[name] += time.monotonic() - started
                spent[name] += await counter.take()
        idle_started = time.monotonic()
        await asyncio.sleep(IDLE_SECONDS)
        idle_seconds = time.monotonic() - idle_started  # as a block's: the dump not in it
        idle_rate = await counter.take() / idle_seconds
    counted = args.rounds * answers
    return {name: (spent[name] - idle_rate * seconds[name]) / counted for name in SCENARIOS}


@contextlib.asynccontextmanager
async def cpl_database(backend: str, cpl: str) -> AsyncIterator[Settings]:
    """A fresh database with the CPL of `bench.read` named `cpl`, and a server's settings."""
    with tempfile.TemporaryDirectory(prefix="cpl-read-cost-") as tmp:
        async with bench_database(backend, Path(tmp)) as url:
            if CPLS[cpl]:
                await load_synthetic_cpl(url, devices=CPLS[cpl])
            else:
                await seed_demo_database(url)
            yield own_settings(
                Path(tmp), url, issuer="cpl-pathways-bench", environment="development"
            )


def block_answers(mode: str, cpl: str, args: argparse.Namespace) -> int:
    """A block's answers: `--answers` uncached on the demo CPL, more warm, fewer uncached at
    scale (short warm blocks at scale gave an SSC figure 6 % above the long ones')."""
    if mode == "warm":
        return args.answers * WARM_BLOCKS
    return max(1, args.answers // SCALE_BLOCKS[cpl])


async def measure(
    backend: str, cpl: str, settings: Settings, args: argparse.Namespace
) -> list[str]:
    make = dev_tokens(settings)
    tokens = {c: make(c, ttl_seconds=6 * 3600) for c in ("SMALL_SUPPLIER", "SSC")}
    rows = []
    for mode, cache_bytes in CACHE_BYTES.items():
        mode_settings = replace(settings, response_cache_bytes=cache_bytes)
        async with counted_server(mode_settings, settings.data_dir) as running:
            counter = Counter(running.process.pid, settings.data_dir)
            settle = {name: SETTLE_SECONDS for name in SCENARIOS}
            answers = block_answers(mode, cpl, args)
            costs = await count_blocks(running, counter, tokens, settle, answers, args)
        rows += [row(f"{backend} | {cpl} | {mode}", name, costs, answers) for name in SCENARIOS]
    return rows


def row(label: str, name: str, costs: dict[str, float], answers: int) -> str:
    against = ""
    if name != "supplier":
        ratio = costs[name] / costs["supplier"]
        against = f"{ratio - 1:+.1%} {mark(abs(ratio - 1) <= SAME_AS_SUPPLIER)}"
    return f"| {label} | {answers} | {name} | {costs[name] / 1e6:.2f} | {against} |"


async def run(args: argparse.Namespace) -> str:
    """The backends at once, their CPLs one after the other: a count does not change with the
    load beside it, and two servers under callgrind keep the two cores busy. (The databases are
    made one after the other first: Alembic's migration context is one per process.)"""
    backends, cpls = args.backends.split(","), args.cpls.split(",")
    async with contextlib.AsyncExitStack() as stack:
        databases = {
            (backend, cpl): await stack.enter_async_context(cpl_database(backend, cpl))
            for backend in backends
            for cpl in cpls
        }

        async def one_backend(backend: str) -> list[str]:
            rows = []
            for cpl in cpls:
                rows += await measure(backend, cpl, databases[backend, cpl], args)
            return rows

        measured = await asyncio.gather(*(one_backend(backend) for backend in backends))
    rows = [line for lines in measured for line in lines]
    return (
        "Instructions an answer in the serving process, counted by callgrind "
        f"({args.rounds} rounds of a block a scenario, one request at a time; garbage "
        "collection and the idle timers left out). Target: `ssc` and `denied` within "
        f"{SAME_AS_SUPPLIER:.0%} of `supplier`.\n\n"
        "| backend | CPL | API | answers a block | query | M instructions an answer | "
        "vs supplier |\n"
        "| --- | --- | --- | ---: | --- | ---: | --- |\n" + "\n".join(rows)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.read_cost", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--cpls", default="demo,real")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--answers", type=int, default=60, help="a block, uncached, on the demo CPL"
    )
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args(argv)
    text = asyncio.run(run(args))
    print(text)
    if not args.no_readme:
        write_readme(text, (START, END), "What an SSC read and a denied read cost")


if __name__ == "__main__":
    main()
