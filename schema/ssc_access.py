"""`sscAccessLog`: who read what the SSC guards (SSC only), newest first."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from models.access import SscAccess as SscAccessRow
from permissions.strawberry_adapter import policy_directives
from resolvers.reads.paging import page_of
from schema.ids import decode_cursor, encode_id
from schema.query import page_size
from schema.types import connection_types


@strawberry.type(name="SscAccess")
class SscAccess:
    occurred_at: datetime
    actor_party_id: str
    actor_sub: str
    operation_name: str | None
    fields: list[str]

    @strawberry.field
    def device_ids(self, root: strawberry.Parent[SscAccessRow]) -> list[strawberry.ID]:
        return [strawberry.ID(encode_id("device", i)) for i in root.device_ids]


SscAccessEdge, SscAccessConnection = connection_types(SscAccess, "SscAccess")


@strawberry.type
class SscAccessQueries:
    @strawberry.field(directives=policy_directives("Query", "sscAccessLog"))
    async def ssc_access_log(
        self, info: Info, first: int | None = 50, after: str | None = None
    ) -> SscAccessConnection:  # type: ignore[valid-type]  # connection_types() makes the class at import
        db, size, point = info.context.db, page_size(first), decode_cursor(after)
        page = await page_of(db, SscAccessRow, [], size, point, newest_first=True)
        return SscAccessConnection(page=page)
