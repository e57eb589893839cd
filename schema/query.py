"""The root Query: reads for every Party, shaped by the field policy."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from models.codes import entry_id_code
from permissions.strawberry_adapter import policy_directives, refuse_restricted_input
from resolvers.reads.devices import search_devices
from resolvers.reads.history import search_audit_events
from resolvers.reads.paging import Window
from resolvers.reads.stacks import firmware_by_stack
from resolvers.writes.validation import CONTROL
from schema.ids import BAD_USER_INPUT, decode_cursor, decode_id
from schema.inputs import DeviceFilter
from schema.types import (
    AuditEventConnection,
    ChangeKind,
    Device,
    DeviceConnection,
    Firmware,
    Manufacturer,
    TextMatch,
    Viewer,
)

MAX_PAGE = 500
DEFAULT_PAGE = 50
NOT_FOUND = "NOT_FOUND"


def not_found(what: str) -> GraphQLError:
    return GraphQLError(f"No {what} with that id.", extensions={"code": NOT_FOUND})


def page_size(first: int | None, name: str = "first") -> int:
    """Pages are capped at 500 rows; null means the default 50; a negative size is refused."""
    if first is None:
        return DEFAULT_PAGE
    if first < 0:
        raise GraphQLError(f"`{name}` must not be negative.", extensions={"code": BAD_USER_INPUT})
    return min(first, MAX_PAGE)


def window(first: int | None, after: str | None, last: int | None, before: str | None) -> Window:
    """Relay's arguments as a `Window`: `first` or `last` (not both: which would the page be?),
    each at most 500, neither negative; the cursors checked."""
    if first is not None and last is not None:
        raise GraphQLError(
            "Give `first` (with `after`) or `last` (with `before`), not both.",
            extensions={"code": BAD_USER_INPUT},
        )
    return Window(
        first=page_size(first) if first is not None else None,
        after=decode_cursor(after),
        last=page_size(last, "last") if last is not None else None,
        before=decode_cursor(before),
    )


@strawberry.type
class Query:
    @strawberry.field
    def viewer(self, info: Info) -> Viewer:
        principal = info.context.principal
        return Viewer(
            party_id=principal.party_id,
            party_category=principal.party_category,
            manufacturer_identifier=principal.manufacturer_id,
        )

    @strawberry.field
    async def manufacturers(self, info: Info) -> list[Manufacturer]:
        snapshot = await info.context.loaders.snapshot()
        return sorted(snapshot.manufacturers.values(), key=lambda row: row.id)

    @strawberry.field
    async def devices(
        self,
        info: Info,
        filter: DeviceFilter | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> DeviceConnection:  # type: ignore[valid-type]  # connection_types() makes the class at import
        filter = filter or DeviceFilter()
        filter.check_text()
        values = filter.values()
        refuse_restricted_input(info.context, "DeviceFilter", values)
        page = search_devices(
            await info.context.loaders.snapshot(),
            values,
            window(first, after, last, before),
            DEFAULT_PAGE,
        )
        info.context.ssc_reads.note_filtered_devices(row.id for row in page.rows)
        return DeviceConnection(page=page)

    @strawberry.field
    async def device(self, info: Info, id: strawberry.ID) -> Device | None:
        pk = decode_id("device", id)
        row = await info.context.loaders.device.load(pk) if pk is not None else None
        if row is None:
            raise not_found("device")
        return row

    @strawberry.field
    async def firmware(self, info: Info, id: strawberry.ID) -> Firmware | None:
        pk = decode_id("firmware", id)
        row = await info.context.loaders.firmware.load(pk) if pk is not None else None
        if row is None:
            raise not_found("firmware")
        return row

    @strawberry.field
    async def cpl_entry(self, info: Info, id: str) -> Firmware | None:
        code = entry_id_code(id)
        snapshot = await info.context.loaders.snapshot()
        row = snapshot.firmware_by_entry.get(code) if code is not None else None
        if row is None:
            raise GraphQLError("No CPL entry with that id.", extensions={"code": NOT_FOUND})
        return row

    @strawberry.field(directives=policy_directives("Query", "firmwareByZigbeeStack"))
    async def firmware_by_zigbee_stack(
        self,
        info: Info,
        stack_version: str,
        match: TextMatch | None = TextMatch.EXACT_IGNORE_CASE,
    ) -> list[Firmware]:
        if not stack_version.strip() or CONTROL.search(stack_version):
            raise GraphQLError(
                "stackVersion must be text, not blank, without control characters.",
                extensions={"code": BAD_USER_INPUT},
            )
        snapshot = await info.context.loaders.snapshot()
        found = firmware_by_stack(snapshot, stack_version, match or TextMatch.EXACT_IGNORE_CASE)
        reads = info.context.ssc_reads
        reads.note_filter("Query.firmwareByZigbeeStack")
        reads.note_filtered_devices(row.device_id for row in found)
        return found

    @strawberry.field(directives=policy_directives("Query", "auditEvents"))
    async def audit_events(
        self,
        info: Info,
        first: int | None = 50,
        after: str | None = None,
        device_id: strawberry.ID | None = None,
        action: ChangeKind | None = None,
    ) -> AuditEventConnection:  # type: ignore[valid-type]  # connection_types() makes the class at import
        device_pk = decode_id("device", device_id) if device_id is not None else None
        if device_id is not None and device_pk is None:
            raise not_found("device")
        page = await search_audit_events(
            info.context.db,
            page_size(first),
            decode_cursor(after),
            device_pk,
            action.value if action is not None else None,
        )
        return AuditEventConnection(page=page)
