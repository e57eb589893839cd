"""`fleetDigest`: the changes since a time that touched the caller's own stored fleet, with
their impact on it summed (`resolvers.planning.digest`).

Like `myFleet`, the policy table's `OWN_FLEET` rule lets a Supplier in, scoped to its own Party,
and refuses every other category (`null` and one FORBIDDEN error) before anything here runs;
the response cache keys it on the caller's identity (`permissions.policy.CALLER_SCOPED`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from permissions.row_scopes import row_scope
from permissions.strawberry_adapter import policy_directives
from resolvers.planning.digest import load_digest
from schema.ids import BAD_USER_INPUT
from schema.notifications import CplChange, FleetImpact


@strawberry.type
class FleetDigest:
    since: datetime
    changes: list[CplChange]
    impact: FleetImpact | None


@strawberry.type
class DigestQueries:
    @strawberry.field(
        directives=policy_directives("Query", "fleetDigest"),
    )
    async def fleet_digest(self, info: Info, since: datetime) -> FleetDigest:
        if since.tzinfo is None:  # a time without an offset is UTC
            since = since.replace(tzinfo=UTC)
        try:  # 0001-01-01T00:00+14:00 is a valid DateTime that UTC cannot hold
            since = since.astimezone(UTC)
        except OverflowError:
            raise GraphQLError(
                "since is out of range: give a time between 0001-01-01 and 9999-12-31 UTC.",
                extensions={"code": BAD_USER_INPUT},
            ) from None
        scope = row_scope(info.context.principal, "Query", "fleetDigest")
        digest = await load_digest(info.context.db, scope, since)
        impact = None
        if digest.impact is not None:
            impact = FleetImpact(
                affected_meters=digest.impact.affected,
                newly_blocked_meters=digest.impact.newly_blocked,
                newly_upgradable_meters=digest.impact.newly_upgradable,
            )
        # An audit event has what CplChange reads (its fields resolve from the event itself).
        changes = cast(list[CplChange], digest.changes)
        return FleetDigest(since=since, changes=changes, impact=impact)
