"""Importing a CPL file (a row per firmware, device columns repeated): what it would change.

The whole file is checked against the database as it is (read in a few statements, inside the
import's transaction) before anything is written. A row adds what is not there yet, withdraws
firmware the file marks WITHDRAWN and sets Zigbee information that differs; an empty cell
leaves the stored value (a CPL entry's facts, MP231's previous entries and the manufacturers'
contacts: `resolvers.files.import_entries`). What no mutation can change (a device's name or
type, a firmware's image hash or date, a manufacturer's name, making withdrawn firmware ACTIVE)
is refused rather than changed behind the history's back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.database import chunks, insert_rows
from models.tables import (
    Device,
    DeviceType,
    Firmware,
    FirmwareStatus,
    Manufacturer,
    PredecessorStatement,
    ZigbeeBand,
)
from resolvers.files import import_entries
from resolvers.files.cpl_files import Row
from resolvers.files.import_entries import EntryPlan
from resolvers.files.import_pathways import FirmwareRef
from resolvers.files.import_problems import Problems, choice
from resolvers.files.import_state import entry_state, stand_in, stored_devices, stored_firmware
from resolvers.writes import events
from resolvers.writes import mutations as writes
from resolvers.writes import validation as v
from resolvers.writes import write_rules as rules
from resolvers.writes.change_log import Change
from resolvers.writes.entry_rules import NO_FACTS, EntryFacts
from resolvers.writes.unit_of_work import Work

DeviceKey = tuple[str, str, str]
_MANUFACTURER: sa.Table = Manufacturer.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
_DEVICE: sa.Table = Device.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
_FIRMWARE: sa.Table = Firmware.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ in its metaclass
ZIGBEE = (
    ("zigbeeBand", "zigbee_band"),
    ("zigbeeStackVersion", "zigbee_stack_version"),
    ("zigbeeChipsetVendor", "zigbee_chipset_vendor"),
)
DEVICE_COLUMNS: tuple[str, ...] = (
    "model_name",
    "device_type",
    "zigbee_band",
    "zigbee_stack_version",
)
DEVICE_COLUMNS += ("zigbee_chipset_vendor",)
COUNTED = (
    "manufacturers added",
    "devices added",
    "firmware added",
    "firmware withdrawn",
    "devices with Zigbee information set",
    *import_entries.COUNTED,
)


@dataclass
class _NewFirmware:
    key: DeviceKey
    version: str
    image_hash: str | None
    added_on: date
    withdrawn: bool
    facts: EntryFacts = NO_FACTS
    statement: PredecessorStatement = PredecessorStatement.NOT_SUPPLIED


@dataclass
class _Group:
    """One device's rows: the first row naming it and the first value given for each column."""

    first_row: int
    values: dict[str, tuple[int, Any]] = field(default_factory=dict)


@dataclass
class CplPlan:
    """What importing the file would do; `apply` does it inside the caller's transaction."""

    source: str
    problems: Problems = field(default_factory=Problems)
    changes: list[str] = field(default_factory=list)
    manufacturers: dict[str, str] = field(default_factory=dict)  # new: identifier → name
    devices: list[tuple[DeviceKey, dict[str, Any]]] = field(default_factory=list)
    firmware: list[_NewFirmware] = field(default_factory=list)
    withdrawals: list[_Withdrawal] = field(default_factory=list)
    zigbee: dict[int, dict[str, Any]] = field(default_factory=dict)  # device id → wanted
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTED, 0))
    entries: EntryPlan = field(default_factory=EntryPlan)

    def note(self, kind: str, line: str) -> None:
        self.changes.append(line)
        self.counts[kind] = self.counts.get(kind, 0) + 1

    async def apply(self, work: Work) -> None:
        """Write the plan: rows and their changes with a few Core inserts, whatever their
        number, each change built by the mutations' own builders."""
        session = work.session
        reason = f"CPL import of {self.source}"
        manufacturer_ids = cast(  # ids read from the table: never None
            dict[str, int],
            dict((await session.exec(select(Manufacturer.identifier, Manufacturer.id))).all()),
        )
        made = [{"identifier": i, "name": n} for i, n in self.manufacturers.items()]
        made_ids = await insert_rows(session, _MANUFACTURER, made)
        manufacturer_ids.update(zip(self.manufacturers, made_ids, strict=True))

        device_ids = await _device_ids(session)
        rows = [rules.device_row(manufacturer_ids[key[0]], f) for key, f in self.devices]
        recorded: list[Change] = []
        device_pks = await insert_rows(session, _DEVICE, rows)
        for (key, fields), pk in zip(self.devices, device_pks, strict=True):
            device_ids[key] = pk
            recorded.append(events.device_added(pk, key[0], fields))

        rows = [
            rules.firmware_row(
                device_ids[new.key],
                new.version,
                new.image_hash,
                new.added_on,
                new.facts,
                new.statement,
            )
            for new in self.firmware
        ]
        withdrawn: list[_Withdrawal] = []
        ids = await insert_rows(session, _FIRMWARE, rows)
        stand_ins = {stand_in(index): pk for index, pk in enumerate(ids)}
        for new, row, pk in zip(self.firmware, rows, ids, strict=True):
            recorded.append(events.firmware_added(pk, row))
            if new.withdrawn:
                withdrawn.append(_Withdrawal(pk, row["device_id"], row["status"], None))
        withdrawn += self.withdrawals
        recorded += [writes.withdraw(firmware, reason) for firmware in withdrawn]
        if withdrawn:
            await session.exec(
                sa.update(_FIRMWARE)
                .where(_FIRMWARE.c.id == sa.bindparam("pk"))
                .values(status=sa.bindparam("new_status"), withdrawn_on=sa.bindparam("day")),
                params=[
                    {"pk": w.id, "new_status": w.status, "day": w.withdrawn_on} for w in withdrawn
                ],
            )

        for chunk in chunks(sorted(self.zigbee)):
            for device in (
                await session.exec(select(Device).where(col(Device.id).in_(chunk)))
            ).all():
                recorded.append(
                    writes.set_zigbee(device, self.zigbee[cast(int, device.id)], reason)
                )
        recorded += await self.entries.apply(work, device_ids, stand_ins, reason)
        await session.flush()
        work.log.extend(recorded)


@dataclass
class _Withdrawal:
    """What `writes.withdraw` reads and sets of a firmware."""

    id: int
    device_id: int
    status: FirmwareStatus
    withdrawn_on: date | None


async def _device_ids(session: AsyncSession) -> dict[DeviceKey, int]:
    rows = await session.exec(
        select(
            Manufacturer.identifier, Device.model_identifier, Device.hardware_version, Device.id
        ).join(Manufacturer, col(Manufacturer.id) == col(Device.manufacturer_id))
    )
    ids = {(m, model, hardware): pk for m, model, hardware, pk in rows.all()}
    return cast(dict[DeviceKey, int], ids)  # ids read from the table: never None


def _key_text(key: DeviceKey) -> str:
    return " ".join(key)


def _parse(problems: Problems, number: int, row: Row, entries: EntryPlan) -> dict[str, Any] | None:
    """One row's cells, checked by the mutations' rules; None if it names no device."""
    check = problems.check
    key = (
        check(number, v.identifier, row["manufacturer_identifier"] or "", "manufacturerIdentifier"),
        check(number, v.identifier, row["model_identifier"] or "", "modelIdentifier"),
        check(number, v.identifier, row["hardware_version"] or "", "hardwareVersion"),
    )
    values: dict[str, Any] = {
        "manufacturer_name": check(
            number, v.text, row["manufacturer_name"], "manufacturer_name", v.MAX_NAME
        ),
        "model_name": check(number, v.text, row["model_name"], "modelName", v.MAX_NAME),
        "device_type": choice(problems, number, DeviceType, row["device_type"], "device_type"),
    }
    band = choice(problems, number, ZigbeeBand, row["zigbee_band"], "zigbee_band")
    zigbee = check(
        number,
        rules.zigbee_fields,
        band,
        row["zigbee_stack_version"],
        row["zigbee_chipset_vendor"],
    )
    for name, column in ZIGBEE:
        values[column] = zigbee[name] if zigbee else None
    status = choice(problems, number, FirmwareStatus, row["firmware_status"], "firmware_status")
    added_on = None
    if row["added_to_cpl_on"] is not None:
        try:
            added_on = date.fromisoformat(row["added_to_cpl_on"])
        except ValueError:
            problems.add(number, "added_to_cpl_on must be a date as YYYY-MM-DD.")
    values["firmware"] = None
    if row["firmware_version"] is not None:
        found = check(
            number, rules.firmware_fields, row["firmware_version"], row["image_hash"], added_on
        )
        if found is not None:
            version, digest, day = found
            values["firmware"] = (version, digest, day, added_on, status)
    elif any(row[c] for c in ("firmware_status", "image_hash", "added_to_cpl_on")):
        problems.add(number, "firmware_version is required when other firmware columns are given.")
    values["entry"] = entries.parse(problems, number, row)
    if None in key:
        return None
    values["key"] = key
    return values


async def plan_cpl(session: AsyncSession, rows: list[tuple[int, Row]], source: str) -> CplPlan:
    """Check every row and work out the changes, reading the database in a few statements."""
    plan = CplPlan(source)
    problems = plan.problems
    manufacturers = dict(
        (await session.exec(select(Manufacturer.identifier, Manufacturer.name))).all()
    )
    stored = await stored_devices(session)
    firmware = await stored_firmware(session)
    groups: dict[DeviceKey, _Group] = {}
    names: dict[str, tuple[int, str]] = {}
    seen_firmware: dict[tuple[DeviceKey, str], int] = {}

    for number, row in rows:
        parsed = _parse(problems, number, row, plan.entries)
        if parsed is None:
            continue
        key: DeviceKey = parsed["key"]
        cells = parsed["entry"]
        if cells is not None:
            plan.entries.contact(problems, number, key[0], cells)
        group = groups.setdefault(key, _Group(number))
        name = parsed["manufacturer_name"]
        if name is not None:
            first = names.setdefault(key[0], (number, name))
            if first[1] != name:
                problems.add(number, f"manufacturer_name differs from row {first[0]}'s.")
        for column in DEVICE_COLUMNS:
            value = parsed[column]
            if value is not None:
                first = group.values.setdefault(column, (number, value))
                if first[1] != value:
                    problems.add(number, f"{column} differs from row {first[0]}'s for this device.")
        if parsed["firmware"] is not None:
            version, digest, day, added_on, status = parsed["firmware"]
            earlier = seen_firmware.setdefault((key, version), number)
            if earlier != number:
                problems.add(number, f"firmware_version repeats row {earlier}'s for this device.")
                continue
            device = stored.get(key)
            known = firmware.get((device["id"], version)) if device else None
            if known is None:
                statement = EntryPlan.statement(cells)
                facts = cells.facts if cells is not None else NO_FACTS
                withdrawn = status is FirmwareStatus.WITHDRAWN
                new = _NewFirmware(key, version, digest, day, withdrawn, facts, statement)
                plan.firmware.append(new)
                if cells is not None:
                    status = FirmwareStatus.WITHDRAWN if withdrawn else FirmwareStatus.ACTIVE
                    target = FirmwareRef(stand_in(len(plan.firmware) - 1), version, status)
                    plan.entries.new_firmware(problems, number, key, target, cells)
                plan.note("firmware added", f"add firmware {version} of {_key_text(key)}")
                if status is FirmwareStatus.WITHDRAWN:
                    plan.note("firmware withdrawn", f"withdraw firmware {version}")
            else:
                _compare_firmware(plan, number, key, version, known, digest, added_on, status)
                if cells is not None:
                    target = FirmwareRef(known["id"], version, known["status"])
                    line = plan.entries.known_firmware(problems, number, key, known, target, cells)
                    if line is not None:
                        plan.note("firmware details set", line)

    for key, group in groups.items():
        _plan_device(plan, key, group, stored.get(key), manufacturers, names)
    state = entry_state(
        stored,
        firmware,
        {w.id for w in plan.withdrawals},
        [(f.key, f.version, f.withdrawn) for f in plan.firmware],
    )
    await plan.entries.resolve(session, problems, plan, *state)
    return plan


def _compare_firmware(
    plan: CplPlan,
    number: int,
    key: DeviceKey,
    version: str,
    known: dict[str, Any],
    digest: str | None,
    added_on: date | None,
    status: FirmwareStatus | None,
) -> None:
    if digest is not None and digest != known["image_hash"]:
        plan.problems.add(number, "image_hash differs from the CPL's; import does not change it.")
    if added_on is not None and added_on != known["added_to_cpl_on"]:
        plan.problems.add(
            number, "added_to_cpl_on differs from the CPL's; import does not change it."
        )
    if status is FirmwareStatus.WITHDRAWN and known["status"] is FirmwareStatus.ACTIVE:
        plan.withdrawals.append(_Withdrawal(known["id"], known["device_id"], known["status"], None))
        plan.note("firmware withdrawn", f"withdraw firmware {version} of {_key_text(key)}")
    elif status is FirmwareStatus.ACTIVE and known["status"] is FirmwareStatus.WITHDRAWN:
        plan.problems.add(number, "firmware_status: withdrawn firmware cannot be made ACTIVE.")


def _plan_device(
    plan: CplPlan,
    key: DeviceKey,
    group: _Group,
    device: dict[str, Any] | None,
    manufacturers: dict[str, str],
    names: dict[str, tuple[int, str]],
) -> None:
    problems = plan.problems
    given = {column: value for column, (_, value) in group.values.items()}
    row_of = {column: number for column, (number, _) in group.values.items()}
    manufacturer = key[0]
    if manufacturer in manufacturers:
        if manufacturer in names and names[manufacturer][1] != manufacturers[manufacturer]:
            problems.add(
                names[manufacturer][0],
                "manufacturer_name differs from the CPL's; import does not rename manufacturers.",
            )
    elif manufacturer not in plan.manufacturers:
        if manufacturer not in names:
            problems.add(group.first_row, "manufacturer_name is required for a new manufacturer.")
        else:
            plan.manufacturers[manufacturer] = names[manufacturer][1]
            plan.note("manufacturers added", f"add manufacturer {manufacturer}")

    if device is None:
        if "device_type" not in given:
            problems.add(group.first_row, "device_type is required for a new device.")
            return
        fields = problems.check(
            group.first_row,
            rules.device_fields,
            model_identifier=key[1],
            model_name=given.get("model_name"),
            hardware_version=key[2],
            device_type=given["device_type"],
            zigbee_band=given.get("zigbee_band"),
            zigbee_stack_version=given.get("zigbee_stack_version"),
            zigbee_chipset_vendor=given.get("zigbee_chipset_vendor"),
        )
        if fields is not None:
            plan.devices.append((key, fields))
            plan.note("devices added", f"add device {_key_text(key)}")
        return
    for column in ("model_name", "device_type"):
        if column in given and given[column] != device[column]:
            problems.add(
                row_of[column], f"{column} differs from the CPL's; import does not change it."
            )
    wanted = {
        name: given[column]
        for name, column in ZIGBEE
        if column in given and given[column] != device[column]
    }
    if wanted:
        plan.zigbee[device["id"]] = wanted
        columns = ", ".join(column for name, column in ZIGBEE if name in wanted)
        plan.note("devices with Zigbee information set", f"set {columns} of {_key_text(key)}")
