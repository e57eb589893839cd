"""Webhook bodies: what a delivery says about an event, and the bytes that are signed.

A body is the `CplChange` a subscriber could select, sent to whoever registered the webhook, so
it may carry only what every Party may read. Its fields are declared once (`BODY`), each with
the GraphQL field it mirrors and the column it reads, and the policy table decides which of
them a body has (`readable_by_every_party`): a field the policy does not make public is left
out of the body and is not even selected, so a restricted value cannot end up in a body because
it is never read. A free-text field (the reason) is sent only where `reason_readable` says every
Party may read it, since it could repeat a restricted value the event changed.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.database import chunks
from models.notice import FleetImpact
from models.tables import AuditEvent, Device, Firmware, Manufacturer, UpgradePathway, Webhook
from permissions.policy import (
    ALLOWED,
    Audience,
    Rule,
    change_subject,
    readable_by_every_party,
    reason_readable,
)

Mirror = tuple[str, str]
"""A GraphQL type and field whose value a body field carries: ("Device", "zigbeeBand")."""


def global_id(kind: str, pk: int) -> str:
    """A GraphQL id (`device:12`), written here so notifications do not import the schema."""
    return f"{kind}:{pk}"


def _as_is(value: Any) -> Any:
    return value


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _enum(value: enum.Enum) -> Any:
    return value.value


def _ids(kind: str) -> Callable[[int], str]:
    return lambda pk: global_id(kind, pk)


@dataclass(frozen=True, eq=False)  # eq on SQL columns would build SQL, not compare
class Field:
    """One value of a body. It is public only if every field on its GraphQL path is (the
    manufacturer's identifier is reached through `Device.manufacturer`, say)."""

    key: str
    column: Any  # the SQL column or aliased column it reads
    path: tuple[Mirror, ...]
    encode: Callable[[Any], Any] = _as_is
    free_text: bool = False  # may repeat any value the event changed: see `reason_readable`


@dataclass(frozen=True, eq=False)
class Section:
    """An object of a body (`device`, `firmware`, `pathway`): null when the event names none,
    which its `present` column, a column of the event, says."""

    key: str
    present: Any
    path: tuple[Mirror, ...]
    fields: tuple[Field, ...]


_FROM, _TO = aliased(Firmware), aliased(Firmware)
_CHANGE = "CplChange"

BODY: tuple[Field | Section, ...] = (
    Field("eventId", AuditEvent.id, ((_CHANGE, "eventId"),), _ids("event")),
    Field("kind", AuditEvent.action, ((_CHANGE, "kind"),)),
    Field("occurredAt", AuditEvent.occurred_at, ((_CHANGE, "occurredAt"),), _iso),
    Field("reason", AuditEvent.reason, ((_CHANGE, "reason"),), free_text=True),
    Section(
        "device",
        AuditEvent.device_id,
        ((_CHANGE, "device"),),
        (
            Field("id", Device.id, (("Device", "id"),), _ids("device")),
            Field(
                "manufacturerIdentifier",
                Manufacturer.identifier,
                (("Device", "manufacturer"), ("Manufacturer", "manufacturerIdentifier")),
            ),
            Field("modelIdentifier", Device.model_identifier, (("Device", "modelIdentifier"),)),
            Field("hardwareVersion", Device.hardware_version, (("Device", "hardwareVersion"),)),
            Field("deviceType", Device.device_type, (("Device", "deviceType"),), _enum),
            Field("zigbeeBand", Device.zigbee_band, (("Device", "zigbeeBand"),), _enum),
        ),
    ),
    Section(
        "firmware",
        AuditEvent.firmware_id,
        ((_CHANGE, "firmware"),),
        (
            Field("id", Firmware.id, (("Firmware", "id"),), _ids("firmware")),
            Field("version", Firmware.version, (("Firmware", "version"),)),
            Field("status", Firmware.status, (("Firmware", "status"),), _enum),
        ),
    ),
    Section(
        "pathway",
        AuditEvent.pathway_id,
        ((_CHANGE, "pathway"),),
        (
            Field("id", UpgradePathway.id, (("UpgradePathway", "id"),), _ids("pathway")),
            Field(
                "fromVersion", _FROM.version, (("UpgradePathway", "from"), ("Firmware", "version"))
            ),
            Field("toVersion", _TO.version, (("UpgradePathway", "to"), ("Firmware", "version"))),
            Field("status", UpgradePathway.status, (("UpgradePathway", "status"),), _enum),
            Field("revision", UpgradePathway.revision, (("UpgradePathway", "revision"),)),
        ),
    ),
)


def _public(path: tuple[Mirror, ...]) -> bool:
    return all(readable_by_every_party(type_name, field) for type_name, field in path)


def public_body(body: tuple[Field | Section, ...]) -> tuple[Field | Section, ...]:
    """`body` with only what every Party may read, as the policy table says now."""
    kept: list[Field | Section] = []
    for part in body:
        if not _public(part.path):
            continue
        if isinstance(part, Section):
            part = replace(part, fields=tuple(f for f in part.fields if _public(f.path)))
        kept.append(part)
    return tuple(kept)


def _fields(body: tuple[Field | Section, ...]) -> Iterator[Field]:
    for part in body:
        yield from part.fields if isinstance(part, Section) else (part,)


def _encoded(field: Field, raw: Any, shown: bool) -> Any:
    """The JSON value of a field; `shown` is whether free text may be sent for this event."""
    if raw is None or (field.free_text and not shown):
        return None
    return field.encode(raw)


async def event_payloads(session: AsyncSession, event_ids: Collection[int]) -> dict[int, dict]:
    """The delivery body of each event, keyed by event id, in one statement however many.

    Device, firmware and pathway are shown as they are now; the pathway's `revision` lets a
    receiver order what it sees.
    """
    ids = sorted(set(event_ids))
    if not ids:
        return {}
    body = public_body(BODY)
    fields = list(_fields(body))
    sections = [part for part in body if isinstance(part, Section)]
    # What the event itself says (which objects it names, what it changed) comes first.
    context = [
        AuditEvent.id,
        AuditEvent.firmware_id,
        AuditEvent.pathway_id,
        AuditEvent.prerequisite_id,
        AuditEvent.changes,
    ]
    columns = [*context, *(s.present for s in sections), *(f.column for f in fields)]
    statement = (
        select(*(column.label(f"c{n}") for n, column in enumerate(columns)))
        .select_from(AuditEvent)
        .join(Device, Device.id == AuditEvent.device_id)
        .join(Manufacturer, Manufacturer.id == Device.manufacturer_id)
        .outerjoin(Firmware, Firmware.id == AuditEvent.firmware_id)
        .outerjoin(UpgradePathway, UpgradePathway.id == AuditEvent.pathway_id)
        .outerjoin(_FROM, _FROM.id == UpgradePathway.from_firmware_id)
        .outerjoin(_TO, _TO.id == UpgradePathway.to_firmware_id)
        .where(col(AuditEvent.id).in_(ids))
    )
    payloads: dict[int, dict] = {}
    for row in (await session.exec(statement)).all():
        event_id, firmware_id, pathway_id, prerequisite_id, changes = row[: len(context)]
        present = iter(row[len(context) : len(context) + len(sections)])
        values = iter(row[len(context) + len(sections) :])
        subject = change_subject(firmware_id, pathway_id, prerequisite_id)
        shown = reason_readable(Audience.EVERY_PARTY, subject, changes)
        payload: dict[str, Any] = {}
        for part in body:
            if isinstance(part, Field):
                payload[part.key] = _encoded(part, next(values), shown)
                continue
            section = {field.key: _encoded(field, next(values), shown) for field in part.fields}
            payload[part.key] = section if next(present) is not None else None
        payloads[event_id] = payload
    return payloads


def impact_body(row: Any) -> dict[str, int] | None:
    """A `FleetImpact` as a body and `CplChange.fleetImpact` show it (None: no impact)."""
    if row is None:
        return None
    return {
        "affectedMeters": row.affected_meters,
        "newlyBlockedMeters": row.newly_blocked_meters,
        "newlyUpgradableMeters": row.newly_upgradable_meters,
    }


def fleet_reader() -> Any:
    """A webhook's column of the Party whose fleet impact its bodies may carry: its own when the
    category that registered it may read a stored fleet (the policy's `OWN_FLEET` rule), else
    "" (no Party's), so a Party id used under another category never receives it."""
    readers = sorted(category.value for category in ALLOWED[Rule.OWN_FLEET])
    allowed = col(Webhook.party_category).in_(readers)
    return sa.case((allowed, col(Webhook.party_id)), else_=sa.literal("")).label("reader")


async def own_impacts(
    session: AsyncSession, wanted: Collection[tuple[int, str]]
) -> dict[tuple[int, str], dict[str, int]]:
    """The impact of each (event id, Party) on that Party's own fleet, where there is one: a
    delivery's body carries its receiver's, and nothing of anyone else's."""
    found: dict[tuple[int, str], dict[str, int]] = {}
    pairs = set(wanted)
    for chunk in chunks(sorted({event for event, _ in pairs})):
        rows = await session.exec(select(FleetImpact).where(col(FleetImpact.event_id).in_(chunk)))
        for row in rows.all():
            if (row.event_id, row.party_id) in pairs:
                found[(row.event_id, row.party_id)] = impact_body(row)  # type: ignore[assignment]  # a row: never None
    return found


async def delivery_payloads(
    session: AsyncSession, wanted: Collection[tuple[int, str]]
) -> dict[tuple[int, str], dict]:
    """The body of each (event id, receiving Party): the event's public body, and `fleetImpact`,
    the receiver's own (null when its fleet is untouched, or it has none)."""
    payloads = await event_payloads(session, {event for event, _ in wanted})
    impacts = await own_impacts(session, wanted)
    return {
        (event, party): payloads[event] | {"fleetImpact": impacts.get((event, party))}
        for event, party in wanted
        if event in payloads
    }


def encode_body(payload: dict) -> bytes:
    """Compact JSON: the bytes signed are exactly the bytes sent."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
