"""Fictional demo data: every shape of pathway graph a newcomer should see on the first run.

All names are invented. The four special devices are the ones domain.md asks for: a branching
graph, a withdrawn firmware in the middle of a route, a withdrawn pathway, and a device whose
oldest firmware has no route to its latest (its second firmware's submission said "N/A"). Firmware
versions are deliberately not in hex order, because a version's order on the CPL is not its
numeric value. Each firmware is a CPL entry with an id and facts, and its submission listed the
earlier versions its pathways start from, or said "N/A" for the first; but the last device's
latest firmware was submitted without that list (NOT_SUPPLIED), and no pathway reaches it yet:
its plans are blocked by PATHWAYS_NOT_SUPPLIED, with Kestrel's contact. Brightwater has given no
contact. Two prerequisites (`PREREQUISITES`) make premises plans worth reading: a meter whose
latest firmware needs its Comms Hub's newest, and one no premises can meet.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import (
    AuditEvent,
    ChangeKind,
    Device,
    DeviceType,
    Firmware,
    FirmwareStatus,
    Manufacturer,
    PathwayStatus,
    PredecessorStatement,
    Prerequisite,
    UpgradePathway,
    ZigbeeBand,
)

SEED_ACTOR = "cpl-pathways-seed"

MANUFACTURERS = [
    ("0A1B", "Northwind Metering Ltd"),
    ("0C2D", "Brightwater Instruments"),
    ("0E3F", "Kestrel Grid Devices"),
]
CONTACTS = {
    "0A1B": "firmware@northwind-metering.example",
    "0E3F": "Kestrel CPL desk, cpl@kestrel-grid.example, 0113 496 0000",
}
VENDORS = ["Lumen Silicon", "Corvid Semiconductors", "Tideway Radio"]
STACKS = ["ZB-PRO 2017 r22", "ZB-PRO 2023 r23", "ZB-SUBGHZ 1.4"]
BANDS = [ZigbeeBand.BAND_2_4_GHZ, ZigbeeBand.BAND_868_MHZ, ZigbeeBand.DUAL_BAND]
TYPES = [DeviceType.ESME, DeviceType.GSME, DeviceType.CHF, DeviceType.PPMID]


# (manufacturer, model, version of the firmware that has it, device type it requires, the
# firmware that meet it as (manufacturer, model, version)).
PREREQUISITES: tuple[tuple[str, str, str, DeviceType, tuple[tuple[str, str, str], ...]], ...] = (
    # Kestrel's ESME reaches its latest only once its Comms Hub runs the hub's newest firmware:
    # the DCC's two steps first.
    ("0E3F", "1AAA", "5B0A0402", DeviceType.CHF, (("0E3F", "1888", "6D080202"),)),
    # Brightwater's ESME asks for a Northwind hub on firmware the DCC has since moved on from:
    # no premises can meet it.
    ("0C2D", "1777", "5B070401", DeviceType.CHF, (("0A1B", "1222", "76020100"),)),
)


@dataclass(frozen=True)
class DemoDevice:
    manufacturer: str
    model_identifier: str
    model_name: str
    device_type: DeviceType
    band: ZigbeeBand
    stack: str
    vendor: str
    # (version, added to the CPL, withdrawn)
    firmware: tuple[tuple[str, date, bool], ...]
    # (from version, to version, withdrawn)
    pathways: tuple[tuple[str, str, bool], ...]
    # By version, those whose own stack differs from the device's (SSC only, as the device's).
    firmware_stacks: dict[str, str]
    not_supplied: frozenset[str] = frozenset()  # versions submitted without predecessors


def _chain(versions: list[str]) -> tuple[tuple[str, str, bool], ...]:
    return tuple((a, b, False) for a, b in itertools.pairwise(versions))


def _dates(count: int, year: int) -> list[date]:
    return [date(year + i // 2, 3 + 6 * (i % 2), 1) for i in range(count)]


def demo_devices(
    vendors: Sequence[str] = VENDORS, stacks: Sequence[str] = STACKS
) -> list[DemoDevice]:
    """Twelve devices: four special graphs first, then plain chains of three to five versions.
    Other `vendors` and `stacks` (three each) give a CPL that differs from the demo in its
    SSC-only values only, for the noninterference test."""
    devices: list[DemoDevice] = []
    names = ["Aurora", "Beacon", "Cinder", "Delta"]
    for m_index, (identifier, _name) in enumerate(MANUFACTURERS):
        for d_index in range(4):
            n = m_index * 4 + d_index
            count = 3 + (n + 1) % 3
            versions = [
                f"{(0x7F - 9 * i) & 0xFF:02X}{n:02X}{i:02X}0{m_index}" for i in range(count)
            ]
            firmware = tuple(
                (v, d, False) for v, d in zip(versions, _dates(count, 2019), strict=True)
            )
            pathways = _chain(versions)
            if n == 0:  # branching: A→B→D and A→C→D
                a, b, c, d = versions[:4]
                pathways = ((a, b, False), (b, d, False), (a, c, False), (c, d, False))
            elif n == 1:  # B is withdrawn in the middle of A→B→C; A→C goes around it
                a, b, c = versions[:3]
                firmware = tuple((v, dt, v == b) for v, dt, _ in firmware)
                pathways = (*pathways, (a, c, False))
            elif n == 2:  # A→C was published and later withdrawn; A→B→C remains
                a, _, c = versions[:3]
                pathways = (*pathways, (a, c, True))
            elif n == 3:  # the oldest firmware has no route onward
                pathways = pathways[1:]
            not_supplied: frozenset[str] = frozenset()
            if n == 11:  # the latest firmware came without its predecessors: none known yet
                pathways = pathways[:-1]
                not_supplied = frozenset(versions[-1:])
            device_type = TYPES[(d_index + m_index) % len(TYPES)]
            devices.append(
                DemoDevice(
                    manufacturer=identifier,
                    model_identifier=f"{0x1000 + 0x111 * n:04X}",
                    model_name=f"{names[d_index]} {device_type.value} Mk{m_index + 1}",
                    device_type=device_type,
                    band=BANDS[n % 3],
                    stack=stacks[n % 3],
                    vendor=vendors[(n + m_index) % 3],
                    firmware=firmware,
                    pathways=pathways,
                    # A stack fix comes with a firmware release: every third device's latest.
                    firmware_stacks={versions[-1]: f"{stacks[n % 3]} p1"} if n % 3 == 0 else {},
                    not_supplied=not_supplied,
                )
            )
    return devices


def entry_id(device_number: int, index: int) -> str:
    """The demo's CPL entry ids: the device's number and the firmware's, in order of addition."""
    return f"CPL-{device_number:04d}-{index + 1:02d}"


def _statement(spec: DemoDevice, version: str) -> PredecessorStatement:
    if version in spec.not_supplied:
        return PredecessorStatement.NOT_SUPPLIED
    if any(to == version for _, to, _ in spec.pathways):
        return PredecessorStatement.LISTED
    return PredecessorStatement.NONE_EARLIER  # the first; and the dead end's second: "N/A"


def _entry(spec: DemoDevice, number: int, version: str, index: int) -> dict[str, Any]:
    """The entry facts of a demo firmware: GBCS 4.1 but for the first (3.2), SMETS2 or CHTS,
    and a CPA certificate for meters and hubs (MP209), renewed every year."""
    hub = spec.device_type in (DeviceType.CHF, DeviceType.GPF)
    certified = spec.device_type in (DeviceType.ESME, DeviceType.GSME, DeviceType.CHF)
    return {
        "cpl_entry_id": entry_id(number, index),
        "gbcs_version": "3.2" if index == 0 else "4.1",
        "smets_chts_version": "CHTS v4.0" if hub else "SMETS2 v5.1",
        "cpa_certificate_reference": f"CPA-{spec.model_identifier}-{index + 1}"
        if certified
        else None,
        "cpa_certificate_expires_on": date(2026 + index, 6, 30) if certified else None,
        "predecessors": _statement(spec, version),
        "zigbee_stack_version": spec.firmware_stacks.get(version),
    }


async def is_empty(session: AsyncSession) -> bool:
    return not (await session.execute(select(func.count()).select_from(Manufacturer))).scalar()


async def seed_demo(
    session: AsyncSession, vendors: Sequence[str] = VENDORS, stacks: Sequence[str] = STACKS
) -> None:
    """Insert the demo CPL with a DEVICE_ADDED history entry per device, in one transaction
    (`demo_devices` says what `vendors` and `stacks` are for)."""
    manufacturers = {
        ident: Manufacturer(identifier=ident, name=name, firmware_contact=CONTACTS.get(ident))
        for ident, name in MANUFACTURERS
    }
    session.add_all(manufacturers.values())
    await session.flush()
    by_key: dict[tuple[str, str, str], Firmware] = {}
    for number, spec in enumerate(demo_devices(vendors, stacks), start=1):
        manufacturer_id = manufacturers[spec.manufacturer].id
        assert manufacturer_id is not None  # flushed above
        device = Device(
            manufacturer_id=manufacturer_id,
            device_type=spec.device_type,
            model_identifier=spec.model_identifier,
            model_name=spec.model_name,
            hardware_version="0100",
            zigbee_band=spec.band,
            zigbee_stack_version=spec.stack,
            zigbee_chipset_vendor=spec.vendor,
        )
        session.add(device)
        await session.flush()
        assert device.id is not None
        session.add(_device_added(device, spec.manufacturer))
        firmware: dict[str, Firmware] = {}
        for index, (version, added_on, withdrawn) in enumerate(spec.firmware):
            firmware[version] = Firmware(
                device_id=device.id,
                version=version,
                status=FirmwareStatus.WITHDRAWN if withdrawn else FirmwareStatus.ACTIVE,
                added_to_cpl_on=added_on,
                withdrawn_on=date(2024, 1, 15) if withdrawn else None,
                image_hash=(version * 8),
                **_entry(spec, number, version, index),
            )
        session.add_all(firmware.values())
        await session.flush()
        by_key |= {(spec.manufacturer, spec.model_identifier, v): f for v, f in firmware.items()}
        for from_version, to_version, withdrawn in spec.pathways:
            from_id, to_id = firmware[from_version].id, firmware[to_version].id
            assert from_id is not None and to_id is not None  # flushed above
            session.add(
                UpgradePathway(
                    device_id=device.id,
                    from_firmware_id=from_id,
                    to_firmware_id=to_id,
                    status=PathwayStatus.WITHDRAWN if withdrawn else PathwayStatus.PUBLISHED,
                    revision=2 if withdrawn else 1,
                    notes="Bricks meters with a full event log; use the two-step route."
                    if withdrawn
                    else None,
                    published_by=spec.manufacturer,
                )
            )
    for manufacturer, model, version, wanted, meeting in PREREQUISITES:
        firmware_id = by_key[manufacturer, model, version].id
        assert firmware_id is not None  # flushed above
        session.add(
            Prerequisite(
                firmware_id=firmware_id,
                requires_device_type=wanted,
                requires_firmware_ids=sorted(cast(int, by_key[key].id) for key in meeting),
                declared_by=manufacturer,
            )
        )
    await session.flush()


def _device_added(device: Device, spec_manufacturer: str) -> AuditEvent:
    assert device.id is not None  # flushed by seed_demo
    fields = {
        "manufacturer": spec_manufacturer,
        "deviceType": device.device_type.value,
        "modelIdentifier": device.model_identifier,
        "modelName": device.model_name,
        "hardwareVersion": device.hardware_version,
        "zigbeeBand": device.zigbee_band.value if device.zigbee_band else None,
        "zigbeeStackVersion": device.zigbee_stack_version,
        "zigbeeChipsetVendor": device.zigbee_chipset_vendor,
    }
    return AuditEvent(
        action=ChangeKind.DEVICE_ADDED.value,
        reason="Demo data",
        actor_sub=SEED_ACTOR,
        actor_party_id=SEED_ACTOR,
        actor_party_category="SECAS",
        device_id=device.id,
        changes=[{"field": k, "before": None, "after": v} for k, v in fields.items()],
    )
