"""The `Prerequisite` type: what a firmware needs at the same premises before a device may step
onto it (`resolvers.writes.prerequisites` writes them, `resolvers.planning.premises` plans with
them). Public to every Party, field by field in the policy table."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry
from strawberry.types import Info

from models import tables
from schema.ids import encode_id
from schema.lean import view_only
from schema.types import AuditEvent, DeviceType, Firmware, PathwayStatus


@strawberry.type
class Prerequisite:
    requires_device_type: DeviceType
    requires_gbcs_version: str | None
    status: PathwayStatus
    declared_at: datetime
    declared_by: str

    @strawberry.field
    @view_only
    def id(self, root: strawberry.Parent[tables.Prerequisite]) -> strawberry.ID:
        return strawberry.ID(encode_id("prerequisite", cast(int, root.id)))

    @strawberry.field
    @view_only
    def firmware(self, root: strawberry.Parent[tables.Prerequisite], info: Info) -> Firmware:
        loaders = info.context.loaders
        return loaders.one("firmware", loaders.firmware, root.firmware_id)

    @strawberry.field
    async def requires_any_of_firmware(
        self, root: strawberry.Parent[tables.Prerequisite], info: Info
    ) -> list[Firmware]:
        ids = root.requires_firmware_ids or []
        return list(await info.context.loaders.firmware.load_many(ids))

    @strawberry.field
    async def history(
        self, root: strawberry.Parent[tables.Prerequisite], info: Info
    ) -> list[AuditEvent]:
        return await info.context.loaders.history_of_prerequisite.load(root.id)
