"""The SSC's vulnerability search: which firmware of which devices runs a Zigbee stack.

A stack changes with a firmware release, so a firmware may state its own stack version; one
that does not runs its device's. The search reads the caller's view of the snapshot
(`resolvers.reads.snapshot.CplSnapshot.view`): only the SSC's holds stack versions, and only
the SSC may run it (the policy table's `Query.firmwareByZigbeeStack`).
"""

from __future__ import annotations

from typing import Any

from permissions.device_filter import TextMatch
from resolvers.reads.devices import text_matches
from resolvers.reads.snapshot import CplSnapshot


def firmware_by_stack(snapshot: CplSnapshot, stack_version: str, match: TextMatch) -> list[Any]:
    """The firmware whose stack version (its own, else its device's) matches, case ignored,
    by device id and then in order of addition to the CPL."""
    wanted = stack_version.strip().casefold()
    found: list[Any] = []
    for device_id in snapshot.device_ids:
        device_stack = snapshot.devices[device_id].zigbee_stack_version
        for firmware in snapshot.firmware_of_device.get(device_id, ()):
            stack = firmware.zigbee_stack_version or device_stack
            if text_matches(stack, wanted, match):
                found.append(firmware)
    return found
