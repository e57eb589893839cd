"""What the SSC access log costs a read: `make bench-ssc-access`.

The SSC reads the Zigbee details of 500 devices (1,000 SSC-only values a request) in process,
through the real ASGI app on SQLite. The baseline is the same request with the log switched off
(nothing noted, nothing written), measured in the same run, interleaved in blocks so that drift
of the machine falls on both alike. Prints medians and p99 of both, and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bench.generate import load_synthetic_cpl
from bench.stats import Stats
from permissions.ssc_access import AccessLog, SscReads
from server.app import create_app, create_services
from tests.harness import asgi_client, dev_tokens, own_settings

QUERY = "{ devices(first: 500) { nodes { id zigbeeStackVersion zigbeeChipsetVendor } } }"


async def not_recorded(self: AccessLog, principal: object, reads: SscReads) -> bool:
    return False


@contextmanager
def log_switched_off():
    note, record = SscReads.note, AccessLog.record
    SscReads.note = lambda self, field_name, device_id=None: None  # type: ignore[method-assign]
    AccessLog.record = not_recorded  # type: ignore[method-assign]
    try:
        yield
    finally:
        SscReads.note, AccessLog.record = note, record  # type: ignore[method-assign]


def summary(name: str, samples: list[float]) -> str:
    taken = Stats(samples)
    return f"{name:<22} median {taken.median * 1000:7.2f} ms   p99 {taken.p99 * 1000:7.2f} ms"


async def main(samples: int, block: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = own_settings(
            Path(tmp), f"sqlite+aiosqlite:///{tmp}/bench.db", environment="bench"
        )
        await load_synthetic_cpl(settings.database_url, 500, seed=2024)
        services = create_services(settings)
        headers = {"Authorization": f"Bearer {dev_tokens(settings)('SSC')}"}
        logged: list[float] = []
        baseline: list[float] = []
        async with asgi_client(create_app(settings, services)) as client:

            async def timed(into: list[float] | None) -> None:
                start = time.perf_counter()
                response = await client.post("/graphql", json={"query": QUERY}, headers=headers)
                elapsed = time.perf_counter() - start
                assert response.status_code == 200 and "errors" not in response.json()
                if into is not None:
                    into.append(elapsed)

            for _ in range(block):  # warm-up: caches, pools, the parser
                await timed(None)
            while len(logged) < samples:
                for _ in range(block):
                    await timed(logged)
                with log_switched_off():
                    for _ in range(block):
                        await timed(baseline)
        await services.engine.dispose()
    print(f"{samples} requests each, 500 devices x 2 SSC-only fields, SQLite, in process")
    print(summary("with the access log", logged))
    print(summary("log switched off", baseline))
    ratio = statistics.median(logged) / statistics.median(baseline)
    print(f"median ratio {ratio:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--block", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.samples, args.block))
