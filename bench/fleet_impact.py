"""How long a change touching 1,000 Suppliers' stored fleets takes to fan out: its impact on
each fleet worked out and stored in the change's own transaction (`resolvers.planning.impact`).

    .venv/bin/python -m bench.fleet_impact --backends sqlite,postgresql --suppliers 1000

The demo CPL is loaded, then `--suppliers` fleets, each with `--groups` groups on the demo's
devices (every fleet on device 1, the one the change touches, on each of its versions). Each
run withdraws a pathway of device 1 that the fleets' meters use (and publishes it again as a
new one for the next run, untimed) through the unit of work with every consumer, and reports
the withdrawal's time and the rows of `fleet_impact` it wrote. A benchmark, not a test: nothing
fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from bench.servers import bench_database
from models.database import create_engine, migrate, session_factory
from models.demo import seed_demo
from models.fleets import FleetGroup, StoredFleet
from models.notice import FleetImpact
from models.tables import utcnow
from notifications.bus import ChangeBus
from notifications.channels import consumers
from permissions.principal import PartyCategory, Principal
from permissions.row_scopes import Scope
from resolvers.writes import mutations
from resolvers.writes.unit_of_work import UnitOfWork, Work

VERSIONS = ["7F000000", "76000100", "6D000200", "64000300"]  # device 1's, in the demo


async def load(url: str, suppliers: int, groups: int) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine)
        async with session_factory(engine)() as session:
            await seed_demo(session)
            fleets = [{"id": n + 1, "party_id": f"P-{n:05d}", "replaced_at": utcnow()}
                      for n in range(suppliers)]  # fmt: skip
            await session.exec(sa.insert(StoredFleet.__table__), params=fleets)  # type: ignore[attr-defined,call-overload]  # SQLModel sets __table__; exec() types only select()
            rows = [
                {
                    "fleet_id": n + 1,
                    "device_id": 1 + g // len(VERSIONS),
                    "firmware_version": VERSIONS[g % len(VERSIONS)],
                    "meter_count": 100 + n + g,
                }
                for n in range(suppliers)
                for g in range(groups)
            ]
            await session.exec(sa.insert(FleetGroup.__table__), params=rows)  # type: ignore[attr-defined,call-overload]  # as above
            await session.commit()
    finally:
        await engine.dispose()


async def measure(url: str, runs: int) -> list[tuple[float, int]]:
    engine = create_engine(url)
    writes = UnitOfWork(session_factory(engine), consumers(ChangeBus()))
    secas = Principal("bench", "P-SECAS", PartyCategory.SECAS)
    every = Scope(every_row=True)
    found: list[tuple[float, int]] = []
    pathway = 2  # B→D, on the route of every fleet's meters on A and B
    try:
        for _ in range(runs):
            async with session_factory(engine)() as session:
                before = (await session.exec(sa.select(sa.func.count(FleetImpact.id)))).one()[0]  # type: ignore[call-overload, arg-type]  # exec() types only select()

            async def withdraw(work: Work, pathway: int = pathway) -> object:
                return await mutations.withdraw_pathway(work, pathway_id=pathway, reason="bench")

            async def publish(work: Work) -> object:
                return await mutations.publish_pathway(
                    work, device_id=1, from_version=VERSIONS[1], to_version=VERSIONS[3], notes=None
                )

            started = time.perf_counter()
            await writes.run(secas, every, withdraw)
            elapsed = time.perf_counter() - started
            async with session_factory(engine)() as session:
                after = (await session.exec(sa.select(sa.func.count(FleetImpact.id)))).one()[0]  # type: ignore[call-overload, arg-type]  # as above
            pathway = (await writes.run(secas, every, publish)).id  # type: ignore[attr-defined]  # an UpgradePathway
            found.append((elapsed, after - before))
    finally:
        await engine.dispose()
    return found


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--suppliers", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    for backend in options.backends.split(","):
        with tempfile.TemporaryDirectory() as directory:
            async with bench_database(backend, Path(directory)) as url:
                await load(url, options.suppliers, options.groups)
                results = await measure(url, options.runs)
        times = [elapsed for elapsed, _ in results]
        print(
            f"{backend}: {options.suppliers:,} fleets x {options.groups} groups; a withdrawal "
            f"touching every fleet: median {statistics.median(times) * 1000:.0f} ms, "
            f"max {max(times) * 1000:.0f} ms, {results[0][1]:,} impact rows a change"
        )


if __name__ == "__main__":
    asyncio.run(main())
