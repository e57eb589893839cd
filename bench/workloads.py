"""What the planning benchmark asks, drawn from a seeded generator: its documents, the
(device, version) pairs of ``upgradePath`` and the fleets of ``fleetPlan``."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from bench.generate import SyntheticCpl, SyntheticDevice
from bench.reference_planner import item_reference

SCALES = {"real": 500, "10x": 5_000}  # devices; 10 firmware and 20 pathways each
FLEET_SIZES = (10_000, 50_000)
SEED = 2024

UPGRADE_PATH = """
query Plan($deviceId: ID!, $from: String!) {
  upgradePath(deviceId: $deviceId, fromVersion: $from) {
    reachable
    reason
    from { version }
    target { version }
    steps { id from { version } to { version } }
  }
}
"""

FLEET_PLAN = """
query Fleet($items: [FleetItemInput!]!) {
  fleetPlan(items: $items) {
    summary {
      meters upToDate upgradable blocked
      metersByStepCount { steps meters }
    }
    entries { index problem plan { reachable steps { id } } }
  }
}
"""


def sample_pairs(cpl: SyntheticCpl, count: int, rng: random.Random) -> list[tuple[int, str]]:
    """Random (device, firmware version it runs) pairs, withdrawn versions included."""
    pairs = []
    for _ in range(count):
        device = rng.choice(cpl.devices)
        pairs.append((device.device_id, rng.choice(device.firmware_versions)))
    return pairs


def fleet_items(cpl: SyntheticCpl, count: int, rng: random.Random) -> list[dict[str, Any]]:
    """A fleet as a Supplier sends it: 70% by deviceId, 30% by identifiers (some in lower case
    or padded), about 5% repeats of an earlier item and about 0.5% bad items of five kinds."""
    items: list[dict[str, Any]] = []
    bad = [
        {"deviceId": "device:999999999", "firmwareVersion": "0000000A"},  # unknown device
        {"deviceId": "firmware:1", "firmwareVersion": "0000000A"},  # not a device id
        {"deviceId": "device:1", "firmwareVersion": "not-hex"},  # malformed version
        {"deviceId": "device:1", "firmwareVersion": "0000000A", "meterCount": 0},
        {  # the identifiers of no device (a manufacturer the generator never makes is unlikely)
            "manufacturerIdentifier": "FFFF",
            "modelIdentifier": "FFFF",
            "hardwareVersion": "0F00",
            "firmwareVersion": "0000000A",
        },
    ]
    for _ in range(count):
        draw = rng.random()
        if items and draw < 0.05:
            items.append(dict(rng.choice(items)))
            continue
        if draw < 0.055:
            items.append(dict(rng.choice(bad)))
            continue
        device: SyntheticDevice = rng.choice(cpl.devices)
        version = rng.choice(device.firmware_versions)
        meters = rng.randint(1, 500)
        if rng.random() < 0.7:
            items.append(
                {"deviceId": f"device:{device.device_id}", "firmwareVersion": version}
                | {"meterCount": meters}
            )
        else:
            messy = rng.random() < 0.1
            items.append(
                {
                    "manufacturerIdentifier": device.manufacturer_identifier,
                    "modelIdentifier": device.model_identifier.lower()
                    if messy
                    else device.model_identifier,
                    "hardwareVersion": device.hardware_version,
                    "firmwareVersion": f" {version.lower()} " if messy else version,
                    "meterCount": meters,
                }
            )
    return items


def distinct_devices(cpl: SyntheticCpl, items: list[dict[str, Any]]) -> int:
    """How many devices the items name, by id or by identifiers (normalised)."""
    by_key = {
        (d.manufacturer_identifier, d.model_identifier, d.hardware_version): d.device_id
        for d in cpl.devices
    }
    ids = {d.device_id for d in cpl.devices}
    named: set[int] = set()
    for item in items:
        reference = item_reference(item)
        if reference is None:
            continue
        device_id = reference[1] if reference[0] == "id" else by_key.get(reference[1:])
        if device_id in ids:
            named.add(device_id)
    return len(named)


def every_device(cpl: SyntheticCpl) -> list[dict[str, Any]]:
    """One item per device: a fleetPlan of it loads the whole graph cache (a warm server)."""
    return [
        {"deviceId": f"device:{d.device_id}", "firmwareVersion": d.firmware_versions[0]}
        for d in cpl.devices
    ]


def path_variables(device_id: int, version: str) -> dict[str, Any]:
    return {"deviceId": f"device:{device_id}", "from": version}


def encode(query: str, variables: dict[str, Any]) -> bytes:
    return json.dumps({"query": query, "variables": variables}).encode()


@dataclass
class Workload:
    """What both sides are asked, drawn once from the seeded generator."""

    token: str
    pairs: list[tuple[int, str]]
    warmup: list[tuple[int, str]]
    fleets: dict[int, list[dict[str, Any]]]
