"""What observing a request costs: the request log (request id, access line, metrics) and the
operation record, measured on the smallest GraphQL request, beside a baseline of the same app
without them, in the same run (calls interleaved, so load drifts hit both alike).

Run by ``make bench`` after ``bench.run``; alone: ``.venv/bin/python -m bench.observability``.
The access lines go, as JSON, to /dev/null: formatting them is part of the cost.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from bench.stats import Stats
from config.logs import JsonFormatter, RequestIdFilter
from schema.operation_record import OperationRecord
from server.app import create_app, create_services
from server.requests import RequestLog
from tests.harness import asgi_client, dev_tokens, own_settings, seed_demo_database

QUERY = {"query": "query Who { viewer { partyId } }"}
APPS = 4


def _app(settings, services, *, observed: bool):
    app = create_app(settings, services)
    if not observed:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not RequestLog]
        graphql = next(r.endpoint for r in app.routes if r.path == "/graphql")
        graphql.schema.extensions = [
            e for e in graphql.schema.extensions if e is not OperationRecord
        ]
    return app


def _quiet_json_log() -> None:
    sink = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115  (lives as long as the run)
    sink.setFormatter(JsonFormatter())
    sink.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers = [sink]
    root.setLevel(logging.INFO)


def _summary(samples: list[float]) -> str:
    taken = Stats(samples)
    return f"median {taken.median * 1e6:7.0f} µs   p99 {taken.p99 * 1e6:7.0f} µs"


async def measure(samples: int, warmup: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = own_settings(Path(tmp), f"sqlite+aiosqlite:///{tmp}/bench.db")
        await seed_demo_database(settings.database_url)  # every request reads the data revision
        headers = {"Authorization": f"Bearer {dev_tokens(settings)('SSC')}"}
        _quiet_json_log()
        services = create_services(settings)
        # Apps that are built alike still differ by ~10 % from one another (measured), so each
        # kind is several apps, their samples pooled, and the calls shuffled every round.
        clients = [
            (name, asgi_client(_app(settings, services, observed=name == "observed")))
            for name in ("observed", "baseline")
            for _ in range(APPS)
        ]
        times: dict[str, list[float]] = {"observed": [], "baseline": []}
        shuffle = random.Random(13).shuffle  # an order, not a secret
        try:
            for round_ in range(warmup + samples):
                shuffle(clients)
                for name, client in clients:
                    started = time.perf_counter()
                    response = await client.post("/graphql", json=QUERY, headers=headers)
                    elapsed = time.perf_counter() - started
                    assert response.json() == {"data": {"viewer": {"partyId": "DEV-SSC"}}}
                    if round_ >= warmup:
                        times[name].append(elapsed)
        finally:
            for _, client in clients:
                await client.aclose()
            await services.engine.dispose()
    print(f"smallest GraphQL request, in process, {samples} rounds of {APPS} apps of each kind:")
    for name, taken in times.items():
        print(f"  {name:<9} {_summary(taken)}")
    extra = statistics.median(times["observed"]) - statistics.median(times["baseline"])
    print(f"  the request log, metrics and operation record add {extra * 1e6:.0f} µs (median)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=1000, help="rounds")
    parser.add_argument("--warmup", type=int, default=100, help="rounds not measured")
    args = parser.parse_args()
    asyncio.run(measure(args.samples, args.warmup))


if __name__ == "__main__":
    main()
