"""``python -m bench.run --profile``: where a warm in-process ``fleetPlan`` spends its time,
stage by stage, then a cProfile of the largest. Not part of the timed results."""

from __future__ import annotations

import cProfile
import pstats
import time
from typing import Any

from bench.servers import InProcess
from bench.stats import say
from bench.workloads import FLEET_PLAN, UPGRADE_PATH, Workload, path_variables
from models.database import RequestSession
from resolvers.planning.fleet_items import FleetItem
from resolvers.planning.fleet_plan import plan_fleet

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
