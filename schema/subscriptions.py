"""What subscriptions may cost: how many a Party and a process hold, and the work of an event.

Budgets: a Party holds at most `max_subscriptions_per_party` subscriptions at once in this
process (all its sockets together), the process at most `max_subscriptions`; one more is
refused before it holds anything (`schema.extensions.SubscriptionSlots`), and a subscription
that ends, however it ends, gives its slot back.

Work: an event reaches every subscriber at once. Each used to read the event's row in its own
session and execute its own selection; 3,000 subscriptions made 3,000 reads and 3,000
executions of one event, and every other caller waited behind them. Here an event's row is read
once, and its selection executed once per group of subscribers that would get the same answer
(the document, operation, variables and visibility of `schema.response_cache.operation_key`),
in a context of the group's own. Each subscriber takes a copy: the field policy's denials are
then applied to it, and what the execution read of the SSC-only values is that subscriber's
read too, logged for it before its event is sent (`schema.extensions.OperationScope`).
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from copy import copy, deepcopy
from typing import Any, cast

from graphql import ExecutionResult
from graphql.execution.executor import CollectedErrors
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import ExecutionContext

from config.settings import Settings
from models.notice import FleetImpact
from models.tables import AuditEvent
from permissions.document_policy import decide
from permissions.ssc_access import SscReads
from schema.documents import valid_document
from schema.response_cache import operation_key, sha256

KEPT_RESULTS = 4_096  # an event's row or a group's result; the oldest events' go first
ROW = "row"  # the key of an event's row among its groups' results
IMPACTED = "impacted"  # the key of the Parties whose fleets an event touches


class SubscriptionBudget:
    """Slots held now, by Party and in all; refused past either budget."""

    def __init__(self, settings: Settings) -> None:
        self.per_party = settings.max_subscriptions_per_party
        self.most = settings.max_subscriptions
        self.held: Counter[str] = Counter()
        self.total = 0

    def take(self, party_id: str) -> str | None:
        """Hold a slot for `party_id`, or say why not (the slot is not held)."""
        if self.total >= self.most:
            return f"This server holds {self.most} subscriptions, its most; try again later."
        if self.held[party_id] >= self.per_party:
            return (
                f"Your Party holds {self.per_party} subscriptions here, its most; "
                "complete one before starting another."
            )
        self.held[party_id] += 1
        self.total += 1
        return None

    def give_back(self, party_id: str) -> None:
        self.held[party_id] -= 1
        if self.held[party_id] <= 0:
            del self.held[party_id]
        self.total -= 1


Shared = tuple[ExecutionResult, SscReads]


class SharedEvents:
    """Per event, its row and each group's result, worked out once in this process whoever
    asks first. The work runs as a task of its own: a subscriber that goes away meanwhile does
    not take the others' answer with it, nor leave a session in use behind it."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._events: OrderedDict[int, dict[Any, asyncio.Task[Any]]] = OrderedDict()
        self._kept = 0
        self._running: set[asyncio.Task[Any]] = set()

    async def row(self, event_id: int) -> AuditEvent | None:
        return await self._shared(event_id, ROW, lambda: self._read(event_id))

    async def impacted(self, event_id: int) -> frozenset[str]:
        """The Parties whose stored fleet the event touches (`onlyMyFleet`): read once, and
        asked of by each subscriber for its own Party only."""
        return await self._shared(event_id, IMPACTED, lambda: self._impacted(event_id))

    async def _impacted(self, event_id: int) -> frozenset[str]:
        async with self._sessions() as session:
            statement = select(FleetImpact.party_id).where(col(FleetImpact.event_id) == event_id)
            return frozenset((await session.exec(statement)).all())

    async def result(
        self, event_id: int, group: tuple[Any, ...], execute: Callable[[], Awaitable[Shared]]
    ) -> Shared:
        return await self._shared(event_id, group, execute)

    async def _read(self, event_id: int) -> AuditEvent | None:
        async with self._sessions() as session:
            return await session.get(AuditEvent, event_id)

    async def _shared(self, event_id: int, key: Any, work: Callable[[], Awaitable[Any]]) -> Any:
        works = self._events.get(event_id)
        if works is None:
            works = self._events[event_id] = {}
        task = works.get(key)
        if task is None:
            task = works[key] = asyncio.ensure_future(work())
            self._running.add(task)
            task.add_done_callback(self._done)
            self._kept += 1
            while self._kept > KEPT_RESULTS:
                self._kept -= len(self._events.popitem(last=False)[1])
        return await asyncio.shield(task)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        if not task.cancelled():
            task.exception()  # each waiter gets it; none left means nobody has to hear of it

    async def drain(self) -> None:
        """At shutdown: let the work under way end (and give its sessions back)."""
        await asyncio.gather(*self._running, return_exceptions=True)


def event_group(execution: ExecutionContext, context: Any) -> tuple[Any, ...] | None:
    """The subscribers with whom this subscription shares each event's execution: those whose
    answer would be the same (None: it shares with nobody)."""
    schema, principal = execution.schema._schema, context.principal
    max_tokens = context.services.settings.max_query_tokens
    document = valid_document(schema, execution.query or "", max_tokens)
    if document is None or principal is None:
        return None
    decision = decide(schema, document, execution.operation_name, principal.party_category)
    if decision is None:
        return None
    variables = execution.variables
    digest = sha256(execution.query or "")
    return operation_key(digest, execution.operation_name, variables, principal, decision)


class EventExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, executing each subscription event as `shared_execution` does."""

    per_event = False

    def build_per_event_executor(self, payload: Any) -> EventExecutor:
        # graphql-core's copies this executor, so the copy is of this class.
        executor = cast(EventExecutor, super().build_per_event_executor(payload))
        executor.per_event = True
        return executor

    def execute_operation(self, serially: bool | None = None) -> Any:
        if self.per_event:
            return shared_execution(self, serially)
        return super().execute_operation(serially)


async def shared_execution(executor: Any, serially: bool | None) -> ExecutionResult:
    """A subscription event's result for this subscriber: its group's, executed once, copied
    (the field policy's denials change the copy), with the group's reads noted as its own. A
    subscription in no group executes each event alone, in a context as fresh."""
    context = executor.context_value
    group = context.event_group

    def work() -> Awaitable[Shared]:
        return execute_for_group(executor, serially)

    if group is None:
        result, reads = await work()
    else:
        result, reads = await context.services.events.result(executor.root_value.id, group, work)
    context.ssc_reads.add(reads)
    errors = list(result.errors) if result.errors else None
    return ExecutionResult(deepcopy(result.data), errors)


async def execute_for_group(executor: Any, serially: bool | None) -> Shared:
    """The event executed in a context of the group's own (the caller's view, a session of its
    own, closed when done), and what it read of the SSC-only values."""
    own = executor.context_value.fork()
    group = copy(executor)
    group.context_value, group.per_event = own, False
    group.completions = {}  # a compiling executor's: compiled afresh for this context
    group.collected_errors = CollectedErrors()
    try:
        result = group.execute_operation(serially)
        if group.is_awaitable(result):
            result = await result
        return result, own.ssc_reads
    finally:
        await own.db.close()
