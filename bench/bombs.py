"""How long a server takes to refuse the documents that once pinned it, and to answer the next
request: the 40-level fragment bomb and the fragment chain that forks through two aliases a
level (18 levels), with the response cache on and off (``make bench``).

The suite counts the work of refusing them (``tests/test_attacks.py``: the policy pass never
runs on them, and is linear in a document's levels); this measures the time, which a test
must not assert. Target: each refused in under 50 ms, and ``{ viewer { partyId } }`` right
after answered in under 50 ms too.

Alone: ``.venv/bin/python -m bench.bombs [--repeats 100] [--no-readme]``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx

from bench.readme import write_readme
from bench.servers import server
from bench.stats import Stats
from tests.harness import dev_tokens, own_settings, seed_demo_database
from tests.test_attacks import forking_chain, fragment_bomb

START, END = "<!-- bombs:start -->", "<!-- bombs:end -->"
TARGET_SECONDS = 0.050
DOCUMENTS = {
    "fragment bomb, 40 levels": fragment_bomb(40),
    "forking chain, 18 levels": forking_chain(18),
}
NEXT = {"query": "{ viewer { partyId } }"}


async def _timed(client: httpx.AsyncClient, body: dict) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = await client.post("/graphql", json=body)
    return time.perf_counter() - started, response


async def measure(repeats: int) -> list[tuple[str, str, Stats, Stats]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = own_settings(Path(tmp), f"sqlite+aiosqlite:///{tmp}/bench.db")
        await seed_demo_database(settings.database_url)
        headers = {"Authorization": f"Bearer {dev_tokens(settings)('LARGE_SUPPLIER')}"}
        for cache, size in (("cache on", 64_000_000), ("cache off", 0)):
            log = Path(tmp) / f"server-{size}.log"
            async with (
                server(replace(settings, response_cache_bytes=size), log) as running,
                httpx.AsyncClient(base_url=running.base, headers=headers, timeout=60) as client,
            ):
                for name, document in DOCUMENTS.items():
                    refused, following = Stats(), Stats()
                    for _ in range(repeats):
                        seconds, response = await _timed(client, {"query": document})
                        codes = [e["extensions"]["code"] for e in response.json()["errors"]]
                        assert codes == ["GRAPHQL_VALIDATION_FAILED"], response.text
                        refused.values.append(seconds)
                        seconds, response = await _timed(client, NEXT)
                        assert response.json()["data"]["viewer"]["partyId"]
                        following.values.append(seconds)
                    rows.append((cache, name, refused, following))
    return rows


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _met(stats: Stats) -> str:
    return "✅" if stats.p99 < TARGET_SECONDS else "❌"


def table(rows: list[tuple[str, str, Stats, Stats]], repeats: int) -> str:
    lines = [
        f"Over HTTP to `cpl-pathways serve` (SQLite, demo CPL), {repeats} times each, as a "
        "Supplier; ms, median and p99. Target: both under 50 ms.",
        "",
        "| cache | document | refused, median | refused, p99 | next request, median "
        "| next request, p99 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for cache, name, refused, following in rows:
        lines.append(
            f"| {cache} | {name} | {_ms(refused.median)} | {_ms(refused.p99)} {_met(refused)} "
            f"| {_ms(following.median)} | {_ms(following.p99)} {_met(following)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    result = table(asyncio.run(measure(args.repeats)), args.repeats)
    print(result)
    if not args.no_readme:
        write_readme(result, (START, END), "Documents that once pinned the server")


if __name__ == "__main__":
    main()
