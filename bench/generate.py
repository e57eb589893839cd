"""A deterministic synthetic CPL at any scale, for benchmarks and scale tests.

The real CPL has about 500 devices, 5,000 firmware and 10,000 pathways; ten times that is the
scale the planner must stay fast at. The data is shaped like the real thing where it matters to
the planner: versions are random hex codes (so their order says nothing about the order of
addition), some firmware is WITHDRAWN, some firmware shares a date of addition (so "latest"
needs the id tie-break), and pathways are mostly forward chains with skips and branches, a few
downgrades and a few WITHDRAWN. Every firmware is a CPL entry (an id, GBCS and SMETS versions,
a CPA certificate for meters) whose submission listed its predecessors (its pathways), said
"N/A" (none reach it) or, for about one in seven, nothing: NOT_SUPPLIED, as MP231's
best-endeavours data for older entries will be; most manufacturers have a firmware contact.

Rows are written with Core ``insert`` in batches and explicit ids (pathways need the ids of the
firmware they join), so loading the ten-times scale takes seconds rather than minutes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import insert, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from models.database import create_engine, is_sqlite, migrate
from models.tables import (
    DataRevision,
    Device,
    DeviceType,
    Firmware,
    FirmwareStatus,
    Manufacturer,
    PathwayStatus,
    PredecessorStatement,
    UpgradePathway,
    utcnow,
)

BATCH = 5_000
FIRST_DAY = date(2019, 1, 1)
# Most firmware arrives weeks apart, but a zero step gives same-day ties now and then.
DAY_STEPS = (0, 7, 14, 30, 45, 60)


@dataclass(frozen=True)
class SyntheticDevice:
    """One device as a fleet item names it; versions in order of addition to the CPL."""

    device_id: int
    manufacturer_identifier: str
    model_identifier: str
    hardware_version: str
    firmware_versions: list[str]


@dataclass(frozen=True)
class SyntheticCpl:
    devices: list[SyntheticDevice]
    manufacturers: int
    firmware: int
    pathways: int


async def load_synthetic_cpl(
    url: str,
    devices: int,
    firmware_per_device: int = 10,
    pathways_per_device: int = 20,
    seed: int = 1,
) -> SyntheticCpl:
    """Migrate the empty database at ``url`` and fill it; the same arguments give the same CPL."""
    rng = random.Random(seed)
    now = utcnow()
    manufacturer_rows, device_rows, synthetic = _devices(rng, devices)
    firmware_rows: list[dict[str, Any]] = []
    pathway_rows: list[dict[str, Any]] = []
    for index, device in enumerate(synthetic):
        first_firmware_id = index * firmware_per_device + 1
        firmware_rows += _firmware(rng, device, first_firmware_id, firmware_per_device, now)
        pathway_rows += _pathways(
            rng,
            device.device_id,
            first_firmware_id,
            firmware_per_device,
            pathways_per_device,
            len(pathway_rows) + 1,
            now,
        )
    _entries(random.Random(seed + 1_000_003), manufacturer_rows, firmware_rows, pathway_rows)
    by_device: dict[int, list[str]] = {}
    for row in firmware_rows:
        by_device.setdefault(row["device_id"], []).append(row["version"])
    synthetic = [
        SyntheticDevice(
            d.device_id,
            d.manufacturer_identifier,
            d.model_identifier,
            d.hardware_version,
            by_device.get(d.device_id, []),
        )
        for d in synthetic
    ]

    engine = create_engine(url)
    try:
        await migrate(engine)
        async with engine.begin() as connection:
            await _insert(connection, Manufacturer, manufacturer_rows)
            await _insert(connection, Device, device_rows)
            await _insert(connection, Firmware, firmware_rows)
            await _insert(connection, UpgradePathway, pathway_rows)
            if not is_sqlite(url):
                # Explicit ids leave PostgreSQL's sequences behind; later inserts need them moved.
                for table in ("manufacturer", "device", "firmware", "upgrade_pathway"):
                    await connection.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                            f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
                        )
                    )
            # A bulk load is a committed write like any other: caches must see it.
            await connection.execute(
                update(DataRevision)
                .where(DataRevision.id == 1)  # type: ignore[arg-type]
                .values(revision=DataRevision.revision + 1)
            )
    finally:
        await engine.dispose()
    return SyntheticCpl(
        devices=synthetic,
        manufacturers=len(manufacturer_rows),
        firmware=len(firmware_rows),
        pathways=len(pathway_rows),
    )


def _entries(
    rng: random.Random,
    manufacturers: list[dict[str, Any]],
    firmware: list[dict[str, Any]],
    pathways: list[dict[str, Any]],
) -> None:
    """The entries' facts and statements, drawn from a generator of their own so that the rest
    of the CPL is what the same seed always made."""
    for row in manufacturers:
        given = rng.random() < 0.8
        row["firmware_contact"] = f"cpl@manufacturer-{row['id']}.example" if given else None
    listed = {p["to_firmware_id"] for p in pathways if p["status"] is PathwayStatus.PUBLISHED}
    for row in firmware:
        row["cpl_entry_id"] = f"SYN-{row['id']:07d}"
        row["gbcs_version"] = rng.choice(("3.2", "4.0", "4.1"))
        row["smets_chts_version"] = "SMETS2 v5.1"
        row["cpa_certificate_reference"] = f"CPA-SYN-{row['id']}"
        row["cpa_certificate_expires_on"] = row["added_to_cpl_on"] + timedelta(days=3 * 365)
        if rng.random() < 0.15:
            row["predecessors"] = PredecessorStatement.NOT_SUPPLIED
        elif row["id"] in listed:
            row["predecessors"] = PredecessorStatement.LISTED
        else:
            row["predecessors"] = PredecessorStatement.NONE_EARLIER


async def _insert(connection: AsyncConnection, model: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        await connection.execute(insert(model.__table__), rows[start : start + BATCH])


def _devices(
    rng: random.Random, devices: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[SyntheticDevice]]:
    """About fifty devices a manufacturer; pairs of devices share a model, differing in hardware."""
    now = utcnow()
    count = max(1, round(devices / 50))
    identifiers = [f"{value:04X}" for value in rng.sample(range(0x10000), count)]
    manufacturers = [
        {"id": m + 1, "identifier": identifiers[m], "name": f"Synthetic Manufacturer {m + 1}"}
        for m in range(count)
    ]
    per_manufacturer = -(-devices // count)
    models = {m: rng.sample(range(0x10000), -(-per_manufacturer // 2)) for m in range(count)}
    types = list(DeviceType)
    rows: list[dict[str, Any]] = []
    synthetic: list[SyntheticDevice] = []
    for index in range(devices):
        m, j = index % count, index // count
        model = f"{models[m][j // 2]:04X}"
        hardware = f"{j % 2 + 1:02X}00"
        device_id = index + 1
        rows.append(
            {
                "id": device_id,
                "manufacturer_id": m + 1,
                "device_type": types[index % len(types)],
                "model_identifier": model,
                "model_name": f"Synthetic {model}",
                "hardware_version": hardware,
                "created_at": now,
                "updated_at": now,
            }
        )
        synthetic.append(SyntheticDevice(device_id, identifiers[m], model, hardware, []))
    return manufacturers, rows, synthetic


def _firmware(
    rng: random.Random, device: SyntheticDevice, first_id: int, count: int, now: Any
) -> list[dict[str, Any]]:
    """Random distinct versions; ids follow the order of addition, dates never go backwards."""
    versions: list[str] = []
    seen: set[str] = set()
    while len(versions) < count:
        version = f"{rng.getrandbits(32):08X}"
        if version not in seen:
            seen.add(version)
            versions.append(version)
    day = FIRST_DAY + timedelta(days=rng.randrange(365))
    rows = []
    for offset, version in enumerate(versions):
        day += timedelta(days=rng.choice(DAY_STEPS))
        withdrawn = rng.random() < 0.1
        rows.append(
            {
                "id": first_id + offset,
                "device_id": device.device_id,
                "version": version,
                "status": FirmwareStatus.WITHDRAWN if withdrawn else FirmwareStatus.ACTIVE,
                "added_to_cpl_on": day,
                "withdrawn_on": day + timedelta(days=90) if withdrawn else None,
                "created_at": now,
            }
        )
    return rows


def _pathways(
    rng: random.Random,
    device_id: int,
    first_firmware_id: int,
    firmware: int,
    count: int,
    first_id: int,
    now: Any,
) -> list[dict[str, Any]]:
    """A forward chain, then skips and branches (a few downgrades); no self-loops, no repeats."""
    pairs: list[tuple[int, int]] = [(i, i + 1) for i in range(firmware - 1)][:count]
    possible = firmware * (firmware - 1)
    seen = set(pairs)
    while len(pairs) < min(count, possible):
        a, b = rng.sample(range(firmware), 2)
        if a > b and rng.random() > 0.05:
            a, b = b, a  # mostly forward
        if (a, b) not in seen:
            seen.add((a, b))
            pairs.append((a, b))
    rows = []
    for offset, (a, b) in enumerate(pairs):
        withdrawn = rng.random() < 0.05
        rows.append(
            {
                "id": first_id + offset,
                "device_id": device_id,
                "from_firmware_id": first_firmware_id + a,
                "to_firmware_id": first_firmware_id + b,
                "status": PathwayStatus.WITHDRAWN if withdrawn else PathwayStatus.PUBLISHED,
                "revision": 1,
                "published_at": now,
                "published_by": "synthetic",
                "updated_at": now,
            }
        )
    return rows
