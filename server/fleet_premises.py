"""Fleets by premises in the fleet file (`server.fleet_file`): a `premises` column holds a
premises "shape", the devices of a premises and the firmware each runs, and `premises_count`
how many premises have it (default 1). Such a row is planned with the premises planner (the
one `premisesPlan` uses), each distinct shape of a batch once.

A shape is devices separated by `;`, each `<device>=<firmware_version>`, the device named by
its id (`device:9`) or by its identifiers (`0E3F/1888/0100`):
`device:9=7F080002; 0E3F/1AAA/0100=640A0302; device:10=6D090202`.

Its answer fills the usual columns: `problem` when the shape cannot be read or planned,
`reachable` true when no device is blocked, `reason` the first blocked device's, `step_count`
every step of the premises, and `path` the plan in order, `; ` between its parts: each step as
`<order> <DCC or SUPPLIER> <device> <from>><to>` with `after <orders>` when it waits for others,
then each blocked device with its reason and why, and each device not updated over the air.
"""

from __future__ import annotations

import re
from typing import Any

from resolvers.planning.fleet_premises import FleetPremises, PremisesEntry
from resolvers.planning.premises_plan import PremisesItem
from schema.ids import decode_id
from server.fleet_records import Columns
from server.fleet_summary import Tally

__all__ = ["BAD_PREMISES", "NEEDS_ITEM", "count_premises", "premises_answer", "premises_item"]

BAD_PREMISES = (
    "premises must list devices as <device>=<firmware_version> separated by ';', a device "
    "named by its id (device:9) or its identifiers (0E3F/1888/0100)"
)
BAD_PREMISES_COUNT = "premises_count must be a whole number"
NEEDS_ITEM = "give premises, or firmware_version and a device"
_PARTS = re.compile(r"[;\n]")


def premises_item(columns: Columns, cells: list[str]) -> FleetPremises | str | None:
    """The row's premises shape, or its problem; None when the row is a plain fleet item."""
    if columns.premises is None or not (shape := cells[columns.premises].strip()):
        return None if columns.version is not None else NEEDS_ITEM
    count = 1
    if columns.premises_count is not None and (given := cells[columns.premises_count].strip()):
        try:
            count = int(given)
        except ValueError:
            return BAD_PREMISES_COUNT
    devices = []
    for part in _PARTS.split(shape):
        if not part.strip():
            continue
        name, separator, version = (text.strip() for text in part.partition("="))
        keys = name.split("/")
        if not separator or len(keys) not in (1, 3):
            return BAD_PREMISES
        if len(keys) == 3:
            maker, model, hardware = (key.strip() for key in keys)
            item = PremisesItem(None, False, maker, model, hardware, version, 1)
        else:
            device_id = decode_id("device", name)
            item = PremisesItem(device_id, device_id is None, None, None, None, version, 1)
        devices.append(item)
    return FleetPremises(tuple(devices), count)


def _name(item: PremisesItem) -> str:
    if item.device_id is not None or item.bad_device_id:
        return f"device:{item.device_id}" if item.device_id is not None else "a bad device id"
    return f"{item.manufacturer_identifier}/{item.model_identifier}/{item.hardware_version}"


def premises_answer(entry: PremisesEntry, shape: FleetPremises, firmware: Any) -> list[str]:
    """`problem,reachable,reason,target_version,step_count,path` of a planned shape;
    `firmware` is the snapshot's firmware by id (the versions of the steps)."""
    plan = entry.plan
    if plan is None:
        return [entry.problem or "", "", "", "", "", ""]
    names = [_name(item) for item in shape.devices]
    parts = []
    for step in plan.steps:
        edge = step.pathway
        said = (
            f"{step.order} {step.carried_out_by} {names[step.index]} "
            f"{firmware[edge.from_id].version}>{firmware[edge.to_id].version}"
        )
        if step.waits_for:
            said += f" after {','.join(str(order) for order in step.waits_for)}"
        parts.append(said)
    for block in plan.blocked:
        parts.append(f"{names[block.index]} blocked {block.reason.value}: {block.detail}")
    for device in plan.not_updatable:
        parts.append(f"{names[device.index]} not updated over the air")
    reason = plan.blocked[0].reason.value if plan.blocked else ""
    reachable = "false" if plan.blocked else "true"
    return ["", reachable, reason, "", str(len(plan.steps)), "; ".join(parts)]


def count_premises(
    tally: Tally, refs: list[int], shapes: list[tuple[int, FleetPremises]], found: list[Any]
) -> None:
    """A batch's premises rows into the file's summary (`refs`: each row's item, `shapes` the
    premises among them by item, `found` their entries)."""
    outcomes = {index: _outcomes(e, s) for (index, s), e in zip(shapes, found, strict=True)}
    for ref in refs:
        for outcome, meters in outcomes.get(ref, ()):
            tally.count(outcome, meters)


def _outcomes(entry: PremisesEntry, shape: FleetPremises) -> list[tuple[str, int]]:
    """A premises row's part of the file's summary (`server.fleet_summary`): each device
    updated over the air, its outcome and the premises' count as its meters."""
    plan = entry.plan
    if plan is None:
        return [("problem", 0)]
    steps = {step.index for step in plan.steps}
    blocked = {block.index: block.reason.value for block in plan.blocked}
    quiet = {device.index for device in plan.not_updatable}
    found = []
    for index in range(len(shape.devices)):
        if index in blocked:
            found.append((f"blocked:{blocked[index]}", shape.count))
        elif index not in quiet:
            found.append(("upgradable" if index in steps else "up_to_date", shape.count))
    return found
