"""Premises plans from the CPL snapshot: the caller's devices looked up, the prerequisites read
into the pure planner's catalogue, and each premises planned by `resolvers.planning.premises`.

A premises names its devices as a fleet's items do (by id, or by manufacturer identifier, model
identifier and hardware version, with the firmware version each runs), so it reuses the fleet's
checks (`resolvers.planning.fleet_items`) and look-up by identifiers: one statement for every
premises of a call, whatever their number. Nothing here knows GraphQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from models.database import RequestSession
from models.tables import PathwayStatus
from resolvers.files.device_keys import DeviceKey, device_ids_by_key
from resolvers.planning.fleet_items import (
    UNKNOWN_DEVICE_ID,
    UNKNOWN_DEVICE_KEY,
    CheckedItems,
    FleetItem,
    check_items,
)
from resolvers.planning.premises import (
    Catalogue,
    PremisesDevice,
    PremisesPlan,
    Requirement,
    plan_premises,
)
from resolvers.planning.premises_rules import gbcs_key, gbcs_text, type_order
from resolvers.planning.slices import Sliced, in_slices
from resolvers.reads.snapshot import CplSnapshot

__all__ = ["MAX_PREMISES_DEVICES", "PremisesItem", "catalogue", "plan_premises_of"]

MAX_PREMISES_DEVICES = 32  # a premises has a handful; a call naming more is refused
PREMISES_SLICE = 200  # premises planned between two turns of the loop
PremisesItem = FleetItem  # a device of a premises: as a fleet's item, its meterCount 1


class _Gbcs(Mapping[int, str | None]):
    """Each firmware's GBCS version as the CPL lists it, read from the snapshot's rows."""

    def __init__(self, firmware: Mapping[int, Any]) -> None:
        self._firmware = firmware

    def __getitem__(self, firmware_id: int) -> str | None:
        return self._firmware[firmware_id].gbcs_version

    def __iter__(self) -> Iterator[int]:
        return iter(self._firmware)

    def __len__(self) -> int:
        return len(self._firmware)


def key_text(snapshot: CplSnapshot, device_id: int) -> str:
    """A device's identifiers as details name it: `0E3F/1888/0100`."""
    device = snapshot.devices[device_id]
    manufacturer = snapshot.manufacturers[device.manufacturer_id].identifier
    return f"{manufacturer}/{device.model_identifier}/{device.hardware_version}"


def label(snapshot: CplSnapshot, device_id: int) -> str:
    """How details name a device: `CHF 0E3F/1888/0100`."""
    return f"{snapshot.devices[device_id].device_type.value} {key_text(snapshot, device_id)}"


def _named(snapshot: CplSnapshot, device_type: str, firmware_ids: Sequence[int]) -> str:
    """`a CHF 0E3F/1888/0100 running 76080102 or 6D080202`, devices in the order first named."""
    versions: dict[int | None, list[str]] = {}
    for firmware_id in firmware_ids:
        row = snapshot.firmware.get(firmware_id)
        versions.setdefault(row.device_id if row else None, []).append(
            row.version if row else f"a firmware no longer on the CPL ({firmware_id})"
        )
    said = [
        f"a {device_type}"
        + (f" {key_text(snapshot, device_id)}" if device_id is not None else "")
        + f" running {' or '.join(found)}"
        for device_id, found in versions.items()
    ]
    return ", or ".join(said)


def catalogue(snapshot: CplSnapshot) -> Catalogue:
    """The planner's view of the CPL's PUBLISHED prerequisites, from the snapshot."""
    requirements: dict[int, list[Requirement]] = {}
    declared: set[tuple[str, str]] = set()
    for firmware_id, found in snapshot.prerequisites_of.items():
        for row in found:
            if row.status is not PathwayStatus.PUBLISHED:
                continue
            wanted = row.requires_device_type.value
            firmware = snapshot.firmware[firmware_id]
            declared.add((snapshot.devices[firmware.device_id].device_type.value, wanted))
            if row.requires_firmware_ids is not None:
                ids = frozenset(row.requires_firmware_ids)
                text = _named(snapshot, wanted, row.requires_firmware_ids)
                requirement = Requirement(row.id, wanted, ids, None, text)
            else:
                text = f"a {wanted} implementing {gbcs_text(row.requires_gbcs_version)} or later"
                gbcs = gbcs_key(row.requires_gbcs_version)
                requirement = Requirement(row.id, wanted, None, gbcs, text)
            requirements.setdefault(firmware_id, []).append(requirement)
    return Catalogue(
        {firmware_id: tuple(found) for firmware_id, found in requirements.items()},
        _Gbcs(snapshot.firmware),
        type_order(sorted(declared)),
    )


async def plan_premises_of(
    db: RequestSession, snapshot: CplSnapshot, premises: Sequence[Sequence[PremisesItem]]
) -> list[PremisesPlan]:
    """Each premises' plan, its devices looked up together with every other premises'. In
    slices (`resolvers.planning.slices`): a fleet's premises are thousands."""
    items = [item for devices in premises for item in devices]
    checked = await in_slices(check_items(items))
    ids_by_key = await device_ids_by_key(db, checked.wanted_keys) if checked.wanted_keys else {}
    return await in_slices(_plan_each(snapshot, premises, checked, ids_by_key))


def _plan_each(
    snapshot: CplSnapshot,
    premises: Sequence[Sequence[PremisesItem]],
    checked: CheckedItems,
    ids_by_key: Mapping[DeviceKey, int],
) -> Sliced[list[PremisesPlan]]:
    known = catalogue(snapshot)
    plans: list[PremisesPlan] = []
    at = 0
    for count, devices in enumerate(premises):
        if count % PREMISES_SLICE == PREMISES_SLICE - 1:
            yield
        planned: list[PremisesDevice] = []
        for index, item in enumerate(devices):
            version = checked.versions[at]
            problem = checked.problems[at]
            key = checked.keys[at]
            at += 1
            device_id = None
            if problem is None:
                device_id = ids_by_key.get(key) if key is not None else item.device_id
                if device_id is None:
                    problem = UNKNOWN_DEVICE_KEY
            graph = snapshot.graph(device_id) if device_id is not None else None
            if graph is None or device_id is None:
                problem = problem or UNKNOWN_DEVICE_ID
                unknown = PremisesDevice(
                    index, None, None, f"device {index}", None, version, problem
                )
                planned.append(unknown)
                continue
            device_type = snapshot.devices[device_id].device_type.value
            name = label(snapshot, device_id)
            planned.append(PremisesDevice(index, device_id, device_type, name, graph, version))
        plans.append(plan_premises(planned, known))
    return plans
