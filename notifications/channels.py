"""The change log's consumers, registered in one place.

A new notification channel is one class with `in_transaction` and `after_commit`
(`resolvers.writes.change_log.ChangeConsumer`) and one line in `consumers`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from notifications import outbox
from notifications.bus import ChangeBus
from resolvers.planning.impact import store_impacts
from resolvers.writes.change_log import ChangeConsumer, Recorded


class FleetImpacts:
    """Each change's impact on every stored fleet it touches, a row per owner, committed with
    the change (`resolvers.planning.impact`); the other channels read it for that owner only."""

    async def in_transaction(self, session: AsyncSession, recorded: Sequence[Recorded]) -> None:
        await store_impacts(session, recorded)

    def after_commit(self, recorded: Sequence[Recorded]) -> None:
        """Nothing to announce: the outbox and the bus carry the changes."""


class WebhookOutbox:
    """A pending delivery per interested webhook, committed with the change; the dispatcher
    (where this process runs one) is woken once they are committed."""

    def __init__(self, wake: Callable[[], None] | None = None) -> None:
        self._wake = wake

    async def in_transaction(self, session: AsyncSession, recorded: Sequence[Recorded]) -> None:
        await outbox.enqueue_many(session, recorded)

    def after_commit(self, recorded: Sequence[Recorded]) -> None:
        if self._wake is not None:
            self._wake()


class Subscribers:
    """The change bus: NOTIFY inside the transaction on PostgreSQL, an in-process fan-out after
    the commit on SQLite; either way every subscription hears each committed change once."""

    def __init__(self, bus: ChangeBus) -> None:
        self._bus = bus

    async def in_transaction(self, session: AsyncSession, recorded: Sequence[Recorded]) -> None:
        await self._bus.in_transaction_many(session, [change.id for change in recorded])

    def after_commit(self, recorded: Sequence[Recorded]) -> None:
        self._bus.after_commit([change.id for change in recorded])


def consumers(
    bus: ChangeBus, wake_dispatcher: Callable[[], None] | None = None
) -> list[ChangeConsumer]:
    """Every channel a committed change goes to, in the order they are told."""
    return [
        FleetImpacts(),
        WebhookOutbox(wake_dispatcher),
        Subscribers(bus),
    ]
