"""The CPL's rules on writes, as plain functions of values already loaded.

A mutation checks one device, firmware or pathway; the file import checks fifty thousand at
once from rows it read in a few statements. Both call these functions, so the rules (formats,
uniqueness, the pathway graph's shape) are written once. Failures are `MutationFailure`s that
name the input field and never echo a value that might be SSC-only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any, NamedTuple, Protocol

from models.tables import (
    DeviceType,
    FirmwareStatus,
    PathwayStatus,
    PredecessorStatement,
    ZigbeeBand,
    utcnow,
)
from resolvers.planning.graph_search import fewest_step_routes
from resolvers.writes import validation as v
from resolvers.writes.entry_rules import NO_FACTS, EntryFacts


class FirmwareLike(Protocol):
    """What the pathway rules read of a firmware: an ORM row or a plain record."""

    id: int | None
    version: str
    status: FirmwareStatus


def zigbee_fields(
    band: ZigbeeBand | None, stack_version: str | None, chipset_vendor: str | None
) -> dict[str, Any]:
    return {
        "zigbeeBand": band,
        "zigbeeStackVersion": v.text(stack_version, "zigbeeStackVersion", v.MAX_ZIGBEE_TEXT),
        "zigbeeChipsetVendor": v.text(chipset_vendor, "zigbeeChipsetVendor", v.MAX_ZIGBEE_TEXT),
    }


def device_fields(
    *,
    model_identifier: str,
    model_name: str | None,
    hardware_version: str,
    device_type: DeviceType,
    zigbee_band: ZigbeeBand | None,
    zigbee_stack_version: str | None,
    zigbee_chipset_vendor: str | None,
) -> dict[str, Any]:
    """A new device's fields, validated and normalised, keyed as its audit event names them."""
    return {
        "modelIdentifier": v.identifier(model_identifier, "modelIdentifier"),
        "modelName": v.text(model_name, "modelName", v.MAX_NAME, required=True),
        "hardwareVersion": v.identifier(hardware_version, "hardwareVersion"),
        "deviceType": device_type,
        **zigbee_fields(zigbee_band, zigbee_stack_version, zigbee_chipset_vendor),
    }


def device_row(manufacturer_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    """The column values of a new device, from `device_fields`."""
    now = utcnow()
    return {
        "manufacturer_id": manufacturer_id,
        "device_type": fields["deviceType"],
        "model_identifier": fields["modelIdentifier"],
        "model_name": fields["modelName"],
        "hardware_version": fields["hardwareVersion"],
        "zigbee_band": fields["zigbeeBand"],
        "zigbee_stack_version": fields["zigbeeStackVersion"],
        "zigbee_chipset_vendor": fields["zigbeeChipsetVendor"],
        "created_at": now,
        "updated_at": now,
    }


def duplicate_device() -> v.MutationFailure:
    return v.conflict(
        "modelIdentifier",
        "This manufacturer already has a device with that model identifier and hardware version.",
    )


def firmware_fields(
    version: str, image_hash: str | None, added_to_cpl_on: date | None
) -> tuple[str, str | None, date]:
    """A new firmware's version, image hash and date of addition (today when not given)."""
    version = v.firmware_version(version, "version")
    digest = v.image_hash(image_hash)
    today = datetime.now(UTC).date()
    if added_to_cpl_on is not None and added_to_cpl_on > today:
        raise v.invalid("addedToCplOn", "addedToCplOn must not be in the future.")
    return version, digest, added_to_cpl_on or today


def firmware_row(
    device_id: int,
    version: str,
    image_hash: str | None,
    added_on: date,
    facts: EntryFacts = NO_FACTS,
    predecessors: PredecessorStatement = PredecessorStatement.NOT_SUPPLIED,
) -> dict[str, Any]:
    """The column values of a new firmware, from `firmware_fields` and its CPL entry's facts
    and statement (`resolvers.writes.entry_rules`): ACTIVE until withdrawn."""
    return {
        "device_id": device_id,
        "version": version,
        "status": FirmwareStatus.ACTIVE,
        "image_hash": image_hash,
        "added_to_cpl_on": added_on,
        "withdrawn_on": None,
        "created_at": utcnow(),
        **facts.columns(),
        "predecessors": predecessors,
    }


def duplicate_firmware(version: str) -> v.MutationFailure:
    return v.conflict("version", f"Device already has firmware {version}.")


def pathway_row(
    device_id: int, start_id: int, end_id: int, notes: str | None, published_by: str
) -> dict[str, Any]:
    """The column values of a new pathway between two checked ends (`pathway_ends`)."""
    now = utcnow()
    return {
        "device_id": device_id,
        "from_firmware_id": start_id,
        "to_firmware_id": end_id,
        "status": PathwayStatus.PUBLISHED,
        "notes": notes,
        "revision": 1,
        "published_at": now,
        "published_by": published_by,
        "updated_at": now,
    }


class _Link(NamedTuple):
    """A step of the cycle check: all it needs of a published pathway is where it leads."""

    to_id: int


def pathway_ends(
    firmware: Mapping[str, FirmwareLike],
    published: Iterable[tuple[int | None, int, int]],
    from_version: str,
    to_version: str,
    *,
    ignoring: int | None = None,
) -> tuple[FirmwareLike, FirmwareLike]:
    """The two ends of a new pathway once it satisfies every rule of the pathway graph.

    `firmware` is the device's firmware by version; `published` its PUBLISHED pathways as
    (id, from firmware id, to firmware id), the one with id `ignoring` left out (a correction
    replaces it)."""
    from_version = v.firmware_version(from_version, "fromVersion")
    to_version = v.firmware_version(to_version, "toVersion")
    start, end = firmware.get(from_version), firmware.get(to_version)
    if start is None:
        raise v.not_found("fromVersion", f"Device has no firmware {from_version}.")
    if end is None:
        raise v.not_found("toVersion", f"Device has no firmware {to_version}.")
    if start.id == end.id:
        raise v.invalid("toVersion", "A pathway cannot lead from a version to itself.")
    if end.status is not FirmwareStatus.ACTIVE:
        raise v.invalid(
            "toVersion", f"Firmware {to_version} is withdrawn; nothing may upgrade to it."
        )
    links: dict[int, list[_Link]] = defaultdict(list)
    for pathway_id, from_id, to_id in published:
        if ignoring is not None and pathway_id == ignoring:
            continue
        if (from_id, to_id) == (start.id, end.id):
            raise v.conflict(
                "toVersion", f"A published pathway {from_version} → {to_version} already exists."
            )
        links[from_id].append(_Link(to_id))
    # Each firmware's links in id order, so that the same graph always names the same cycle (the
    # shortest, and of those the smallest by firmware ids), whatever order its rows came in.
    for steps in links.values():
        steps.sort()
    route = fewest_step_routes(end.id, links).get(start.id)  # type: ignore[arg-type]  # firmware read from the table: ids set
    if route is not None:
        versions = {f.id: f.version for f in firmware.values()}
        ids = [end.id, *(link.to_id for link in route), end.id]
        cycle = " → ".join(versions[i] for i in ids)
        raise v.conflict("toVersion", f"This pathway would close a cycle: {cycle}.")
    return start, end
