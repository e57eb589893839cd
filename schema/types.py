"""The Strawberry object types. Their sources are the table rows themselves (no copies).

Plain columns resolve by attribute with Strawberry's default resolver. Relations among the CPL's
rows resolve from the request's snapshot as plain values once it is held (no awaitable for
graphql-core to drive), else as an awaitable of the request's loaders; history is `async`.
Restricted fields get their directive from the policy table (`policy_directives`); the document
pass enforces it.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry
from strawberry.types import Info

from models import tables
from permissions.device_filter import TextMatch as TextMatchEnum
from permissions.policy import change_subject, is_ssc_only, may_read_change, reason_readable
from permissions.principal import PartyCategory as PartyCategoryEnum
from permissions.principal import Principal
from permissions.strawberry_adapter import policy_directives, policy_extensions
from resolvers.planning.planner import BlockReason
from resolvers.reads.paging import Page, row_point
from schema.ids import encode_cursor, encode_id
from schema.lean import view_only

if TYPE_CHECKING:
    from schema.prerequisites import Prerequisite

PartyCategory = PartyCategoryEnum
DeviceType = tables.DeviceType
ZigbeeBand = tables.ZigbeeBand
FirmwareStatus = tables.FirmwareStatus
PathwayStatus = tables.PathwayStatus
ChangeKind = tables.ChangeKind
PredecessorStatement = tables.PredecessorStatement
TextMatch = TextMatchEnum  # the GraphQL enum, registered where DeviceFilter names it (inputs)
# strawberry.enum marks each class in place as the GraphQL enum of its name, so the names above
# are the classes themselves: what a type checker reads as types.
for _enum in (PartyCategory, DeviceType, ZigbeeBand, FirmwareStatus, PathwayStatus, ChangeKind):
    strawberry.enum(_enum, name=_enum.__name__)
PlanBlockReason = BlockReason  # the planners' reasons (fleet and premises plans share them)
strawberry.enum(PlanBlockReason, name="PlanBlockReason")
strawberry.enum(PredecessorStatement, name="PredecessorStatement")


@strawberry.type
class Viewer:
    party_id: str
    party_category: PartyCategory
    manufacturer_identifier: str | None


@strawberry.type
class Manufacturer:
    name: str
    identifier: str = strawberry.field(name="manufacturerIdentifier")
    firmware_contact: str | None

    @strawberry.field
    @view_only
    def id(self, root: strawberry.Parent[tables.Manufacturer]) -> strawberry.ID:
        return strawberry.ID(encode_id("manufacturer", cast(int, root.id)))

    @strawberry.field
    @view_only
    def devices(self, root: strawberry.Parent[tables.Manufacturer], info: Info) -> list[Device]:
        loaders = info.context.loaders
        return loaders.related("devices_of_manufacturer", loaders.devices_of_manufacturer, root.id)


@strawberry.type
class Device:
    device_type: DeviceType
    model_identifier: str
    model_name: str
    hardware_version: str
    zigbee_band: ZigbeeBand | None
    zigbee_stack_version: str | None = strawberry.field(
        directives=policy_directives("Device", "zigbeeStackVersion"),
        extensions=policy_extensions("Device", "zigbeeStackVersion"),
    )
    zigbee_chipset_vendor: str | None = strawberry.field(
        directives=policy_directives("Device", "zigbeeChipsetVendor"),
        extensions=policy_extensions("Device", "zigbeeChipsetVendor"),
    )

    @strawberry.field
    @view_only
    def id(self, root: strawberry.Parent[tables.Device]) -> strawberry.ID:
        return strawberry.ID(encode_id("device", cast(int, root.id)))

    @strawberry.field
    @view_only
    def manufacturer(self, root: strawberry.Parent[tables.Device], info: Info) -> Manufacturer:
        loaders = info.context.loaders
        return loaders.one("manufacturers", loaders.manufacturer, root.manufacturer_id)

    @strawberry.field
    @view_only
    def firmware(self, root: strawberry.Parent[tables.Device], info: Info) -> list[Firmware]:
        loaders = info.context.loaders
        return loaders.related("firmware_of_device", loaders.firmware_of_device, root.id)

    @strawberry.field
    @view_only
    def latest_firmware(
        self, root: strawberry.Parent[tables.Device], info: Info
    ) -> Firmware | None:
        return info.context.loaders.latest_firmware(root.id)

    @strawberry.field
    async def history(self, root: strawberry.Parent[tables.Device], info: Info) -> list[AuditEvent]:
        return await info.context.loaders.history_of_device.load(root.id)


@strawberry.type
class CpaCertificate:
    reference: str
    expires_on: date | None


@strawberry.type
class Firmware:
    version: str
    status: FirmwareStatus
    image_hash: str | None
    added_to_cpl_on: date
    withdrawn_on: date | None
    cpl_entry_id: str | None
    gbcs_version: str | None
    smets_chts_version: str | None
    predecessors: PredecessorStatement

    @strawberry.field
    @view_only
    def cpa_certificate(self, root: strawberry.Parent[tables.Firmware]) -> CpaCertificate | None:
        if root.cpa_certificate_reference is None:
            return None
        return CpaCertificate(
            reference=root.cpa_certificate_reference, expires_on=root.cpa_certificate_expires_on
        )

    @strawberry.field(
        directives=policy_directives("Firmware", "zigbeeStackVersion"),
        extensions=policy_extensions("Firmware", "zigbeeStackVersion"),
    )
    @view_only
    def zigbee_stack_version(
        self, root: strawberry.Parent[tables.Firmware], info: Info
    ) -> str | None:
        return effective_stack(info.context.loaders, root)

    @strawberry.field
    @view_only
    def id(self, root: strawberry.Parent[tables.Firmware]) -> strawberry.ID:
        return strawberry.ID(encode_id("firmware", cast(int, root.id)))

    @strawberry.field
    @view_only
    def device(self, root: strawberry.Parent[tables.Firmware], info: Info) -> Device:
        loaders = info.context.loaders
        return loaders.one("devices", loaders.device, root.device_id)

    @strawberry.field
    @view_only
    def withdrawal_scheduled_on(
        self, root: strawberry.Parent[tables.Firmware], info: Info
    ) -> date | None:
        return info.context.loaders.withdrawal("firmware", root.id)

    @strawberry.field
    @view_only
    def upgrades_to(
        self, root: strawberry.Parent[tables.Firmware], info: Info
    ) -> list[UpgradePathway]:
        loaders = info.context.loaders
        return loaders.related("pathways_from", loaders.pathways_from, root.id)

    @strawberry.field
    @view_only
    def upgrades_from(
        self, root: strawberry.Parent[tables.Firmware], info: Info
    ) -> list[UpgradePathway]:
        loaders = info.context.loaders
        return loaders.related("pathways_to", loaders.pathways_to, root.id)

    @strawberry.field
    @view_only
    def prerequisites(
        self, root: strawberry.Parent[tables.Firmware], info: Info
    ) -> list[Annotated[Prerequisite, strawberry.lazy("schema.prerequisites")]]:
        loaders = info.context.loaders
        return loaders.related("prerequisites_of", loaders.prerequisites_of, root.id)

    @strawberry.field
    async def history(
        self, root: strawberry.Parent[tables.Firmware], info: Info
    ) -> list[AuditEvent]:
        return await info.context.loaders.history_of_firmware.load(root.id)


def effective_stack(loaders: Any, firmware: Any) -> Any:
    """A firmware's own stack version, else its device's (a value, or an awaitable of one while
    the request's snapshot is not yet held)."""
    if firmware.zigbee_stack_version is not None:
        return firmware.zigbee_stack_version
    device = loaders.one("devices", loaders.device, firmware.device_id)
    if inspect.isawaitable(device):
        return _stack_later(device)
    return device.zigbee_stack_version if device is not None else None


async def _stack_later(device: Awaitable[Any]) -> str | None:
    row = await device
    return row.zigbee_stack_version if row is not None else None


@strawberry.type
class UpgradePathway:
    status: PathwayStatus
    notes: str | None
    revision: int
    published_at: datetime
    published_by: str

    @strawberry.field
    @view_only
    def id(self, root: strawberry.Parent[tables.UpgradePathway]) -> strawberry.ID:
        return strawberry.ID(encode_id("pathway", cast(int, root.id)))

    @strawberry.field
    @view_only
    def device(self, root: strawberry.Parent[tables.UpgradePathway], info: Info) -> Device:
        loaders = info.context.loaders
        return loaders.one("devices", loaders.device, root.device_id)

    @strawberry.field
    @view_only
    def withdrawal_scheduled_on(
        self, root: strawberry.Parent[tables.UpgradePathway], info: Info
    ) -> date | None:
        return info.context.loaders.withdrawal("pathway", root.id)

    @strawberry.field(name="from")
    @view_only
    def from_(self, root: strawberry.Parent[tables.UpgradePathway], info: Info) -> Firmware:
        loaders = info.context.loaders
        return loaders.one("firmware", loaders.firmware, root.from_firmware_id)

    @strawberry.field
    @view_only
    def to(self, root: strawberry.Parent[tables.UpgradePathway], info: Info) -> Firmware:
        loaders = info.context.loaders
        return loaders.one("firmware", loaders.firmware, root.to_firmware_id)

    @strawberry.field
    async def history(
        self, root: strawberry.Parent[tables.UpgradePathway], info: Info
    ) -> list[AuditEvent]:
        return await info.context.loaders.history_of_pathway.load(root.id)


@strawberry.type
class FieldChange:
    field: str
    before: str | None
    after: str | None
    redacted: bool


def visible_reason(principal: Principal | None, event: tables.AuditEvent) -> str | None:
    """An event's reason, or None where the policy hides it from this caller (`reason_readable`)."""
    subject = change_subject(event.firmware_id, event.pathway_id, event.prerequisite_id)
    return event.reason if reason_readable(principal, subject, event.changes) else None


@strawberry.type
class AuditEvent:
    occurred_at: datetime
    action: str
    actor_party_id: str

    @strawberry.field
    def reason(self, root: strawberry.Parent[tables.AuditEvent], info: Info) -> str | None:
        return visible_reason(info.context.principal, root)

    @strawberry.field
    def id(self, root: strawberry.Parent[tables.AuditEvent]) -> strawberry.ID:
        return strawberry.ID(encode_id("event", cast(int, root.id)))

    @strawberry.field
    def actor_party_category(self, root: strawberry.Parent[tables.AuditEvent]) -> PartyCategory:
        return PartyCategoryEnum(root.actor_party_category)

    @strawberry.field
    def changes(self, root: strawberry.Parent[tables.AuditEvent], info: Info) -> list[FieldChange]:
        principal = info.context.principal
        subject = change_subject(root.firmware_id, root.pathway_id, root.prerequisite_id)
        out = []
        for change in root.changes:
            name = change["field"]
            if may_read_change(principal, subject, name):
                if is_ssc_only(subject, name):  # an SSC-only value, read through history
                    info.context.ssc_reads.note(f"{subject}.{name}", root.device_id)
                out.append(
                    FieldChange(
                        field=name, before=change["before"], after=change["after"], redacted=False
                    )
                )
            else:
                out.append(FieldChange(field=name, before=None, after=None, redacted=True))
        return out


@strawberry.type
class PageInfo:
    page: strawberry.Private[Page[Any]]

    @strawberry.field
    @view_only
    def has_next_page(self) -> bool:
        return self.page.has_next

    @strawberry.field
    async def has_previous_page(self) -> bool:
        return await self.page.has_previous()

    @strawberry.field
    @view_only
    def start_cursor(self) -> str | None:  # never null; nullable as Relay's spec has it
        rows = self.page.rows
        return encode_cursor(row_point(rows[0].id) if rows else self.page.position)

    @strawberry.field
    @view_only
    def end_cursor(self) -> str | None:  # never null; nullable as Relay's spec has it
        rows = self.page.rows
        return encode_cursor(row_point(rows[-1].id) if rows else self.page.position)


@strawberry.type
class Connection:
    """A Relay-style connection of one page. Its count and cursors are worked out only when
    selected: a COUNT is a statement of its own, and cursors are for `edges` readers."""

    page: strawberry.Private[Page[Any]]

    @strawberry.field
    async def total_count(self) -> int:
        count = self.page.count
        return count if isinstance(count, int) else await count()

    @strawberry.field
    @view_only
    def page_info(self) -> PageInfo:
        return PageInfo(page=self.page)


def connection_types(node: type, name: str, counted: bool = False) -> tuple[type, type]:
    """`<name>Edge` and `<name>Connection` of `node`: the same two fields on every list, so
    they are made here once rather than declared again for each. `counted`: its pages know
    their total (a search of the CPL's snapshot), so `totalCount` is a plain value and the
    connection is completed by a compiled completion; a table's page counts when asked."""
    edge = strawberry.type(
        type(f"{name}Edge", (), {"__annotations__": {"cursor": str, "node": node}})
    )

    @view_only
    def nodes(self: Connection) -> list[Any]:
        return self.page.rows

    @view_only
    def edges(self: Connection) -> list[Any]:
        return [edge(cursor=encode_cursor(row_point(row.id)), node=row) for row in self.page.rows]

    nodes.__annotations__ = {"return": list[node]}  # type: ignore[valid-type]  # connection_types() makes node at runtime
    edges.__annotations__ = {"return": list[edge]}  # type: ignore[valid-type]  # connection_types() makes edge at runtime

    def total_count(self: Connection) -> int:
        count = self.page.count
        assert isinstance(count, int), "a counted connection's page knows its total"
        return count

    namespace: dict[str, Any] = {
        "nodes": strawberry.field(resolver=nodes),
        "edges": strawberry.field(resolver=edges),
    }
    if counted:
        namespace["total_count"] = strawberry.field(resolver=total_count)
    return edge, strawberry.type(type(f"{name}Connection", (Connection,), namespace))


DeviceEdge, DeviceConnection = connection_types(Device, "Device", counted=True)
AuditEventEdge, AuditEventConnection = connection_types(AuditEvent, "AuditEvent")
