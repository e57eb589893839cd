"""A Supplier's digest: the committed changes since a time that touched its own stored fleet,
with their impact summed.

A change is in a Party's digest when the change's own transaction stored a fleet impact row for
that Party (`resolvers.planning.impact`): the changes touching the Party's fleet as it was
then, whatever it is now. Other changes, and other Parties' rows, are never read: the query is
kept to the caller's scope (`permissions.row_scopes`, the policy's `OWN_FLEET` rule) by its
`WHERE`, so a digest holds nothing derived from another Party's fleet.

The changes are the oldest first (by time, then event id), at most `MAX_DIGEST_CHANGES` of
them; `since` is inclusive, so a caller that got a full page asks again from the last one's
time (and skips the events it already has, by id). No clock is read: the answer depends on
`since` and the data only, so it can be cached with the data revision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from models.database import RequestSession
from models.notice import FleetImpact
from models.tables import AuditEvent
from permissions.row_scopes import Scope
from resolvers.planning.impact import Meters

__all__ = ["MAX_DIGEST_CHANGES", "Digest", "load_digest"]

MAX_DIGEST_CHANGES = 500
# A digest's sums are GraphQL Ints, as every FleetImpact's counts are: 500 changes to a fleet of
# millions can add up past 2**31 - 1, so a sum stops there ("at least this many").
MAX_SUM = 2**31 - 1


@dataclass(slots=True)
class Digest:
    """The changes (audit events, oldest first) and the Party's meters summed over them; `impact`
    is None when there are no changes."""

    since: datetime
    changes: list[AuditEvent]
    impact: Meters | None


def _statement(scope: Scope, since: datetime) -> Any:
    return (
        select(AuditEvent, FleetImpact)
        .join(FleetImpact, col(FleetImpact.event_id) == col(AuditEvent.id))
        .where(*scope.where(col(FleetImpact.party_id)), col(AuditEvent.occurred_at) >= since)
        .order_by(col(AuditEvent.occurred_at), col(AuditEvent.id))
        .limit(MAX_DIGEST_CHANGES)
    )


def summed(since: datetime, rows: Sequence[tuple[AuditEvent, FleetImpact]]) -> Digest:
    if not rows:
        return Digest(since, [], None)
    return Digest(since, [event for event, _ in rows], summed_impact([i for _, i in rows]))


def summed_impact(impacts: Sequence[FleetImpact]) -> Meters:
    """The impacts added up, each count at most `MAX_SUM` (the query's and the webhook's)."""
    return Meters(
        affected=min(MAX_SUM, sum(i.affected_meters for i in impacts)),
        newly_blocked=min(MAX_SUM, sum(i.newly_blocked_meters for i in impacts)),
        newly_upgradable=min(MAX_SUM, sum(i.newly_upgradable_meters for i in impacts)),
    )


async def load_digest(db: RequestSession, scope: Scope, since: datetime) -> Digest:
    """The caller's digest since `since` (inclusive), in a request's session."""
    rows = await db.fetch(_statement(scope, since))
    return summed(since, [(event, impact) for event, impact in rows])
