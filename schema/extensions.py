"""Schema extensions: request limits, caches, error policy and the end-of-operation clean-up."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial

from graphql import GraphQLError
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.types.execution import ExecutionResult, StreamExecutionResult
from strawberry.types.graphql import OperationType

from config.settings import Settings
from models.database import is_outage
from permissions.denials import DenialError
from permissions.ssc_access import AccessLogUnavailable, log_reads
from permissions.strawberry_adapter import PolicyEnforcement
from schema.context import Context
from schema.documents import DocumentCache
from schema.errors import (
    DATABASE_UNAVAILABLE,
    INTERNAL_SERVER_ERROR,
    RATE_LIMITED,
    SERVICE_UNAVAILABLE,
    UNEXPECTED,
    coded,
)
from schema.limits import Limits, OperationLimits
from schema.operation_record import OperationRecord
from schema.subscriptions import event_group

# Errors a client must be able to read; everything else is an unexpected error and is masked.
READABLE_CODES = frozenset(
    {
        "FORBIDDEN",
        "UNAUTHENTICATED",
        "NOT_FOUND",
        "BAD_USER_INPUT",
        "CONFLICT",
        "VALIDATION",
        "GRAPHQL_VALIDATION_FAILED",
        RATE_LIMITED,
    }
)


def is_unexpected(error: GraphQLError) -> bool:
    """Mask an error unless it is a GraphQL (syntax or validation) error or carries our code."""
    if (error.extensions or {}).get("code") in READABLE_CODES:
        return False
    return error.original_error is not None and not isinstance(error.original_error, GraphQLError)


def _selection_key(error: GraphQLError) -> tuple[object, ...]:
    # One field selection, whatever row it was reached on: the path without list indices.
    path = tuple(p for p in (error.path or ()) if isinstance(p, str))
    return (error.message, path)


class ErrorPolicy(MaskErrors):
    """Mask unexpected errors, report each failing field selection once, not once a row, and
    give every error its `extensions.code` (`schema.errors.coded`).

    500 devices asked for an SSC-only field by a Supplier give one FORBIDDEN error, not 500.
    """

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message=UNEXPECTED)
        self.executing = False

    def on_execute(self) -> Iterator[None]:
        self.executing = True  # errors from here on are execution's, not the document's
        yield

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        """Masked as the server's fault (INTERNAL_SERVER_ERROR), or an outage as one, with its
        code: an HTTP request is then answered 503 (`GraphQLApp.process_result`), a
        subscription's event says why it failed."""
        masked = super().anonymise_error(error)
        masked.extensions = {"code": INTERNAL_SERVER_ERROR}
        if error.original_error is not None and is_outage(error.original_error):
            masked.message = DATABASE_UNAVAILABLE
            masked.extensions = {"code": SERVICE_UNAVAILABLE}
        return masked

    def _process_result(self, result: object) -> None:
        """As `MaskErrors`' own, without its `isinstance` against a runtime-checkable Protocol,
        which walks the Protocol's attributes on every operation (some 15 µs of an uncached
        answer's 450): any result whose errors are set."""
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]  # has errors

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        """Each selection's first error, masked if unexpected, coded. A denial's error is
        final as `apply_denials` made it: coded, never masked, one a selection already, and
        shared by the answers that deny the same places (`DenialError`)."""
        seen: set[tuple[object, ...]] = set()
        shaped: list[GraphQLError] = []
        for error in errors:
            if error.__class__ is DenialError:
                shaped.append(error)
                continue
            key = _selection_key(error)
            if key in seen:
                continue
            seen.add(key)
            if self.should_mask_error(error):
                error = self.anonymise_error(error)
            shaped.append(coded(error, self.executing))
        return shaped


class SubscriptionSlots(SchemaExtension):
    """A subscription holds one of its Party's slots and one of the process's while it runs
    (`schema.subscriptions.SubscriptionBudget`); past either budget it is refused before it
    runs: a graphql-transport-ws `error` with `RATE_LIMITED`."""

    party: str | None = None

    async def on_operation(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if self.party is not None:
                self.execution_context.context.services.subscriptions.give_back(self.party)

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        context = execution.context
        if (
            not execution.pre_execution_errors
            and isinstance(context, Context)
            and context.principal is not None
            and execution.operation_type is OperationType.SUBSCRIPTION
        ):
            party = context.principal.party_id
            refusal = context.services.subscriptions.take(party)
            if refusal is None:
                self.party = party
            else:
                error = GraphQLError(refusal, extensions={"code": RATE_LIMITED})
                execution.pre_execution_errors = [error]
        yield


class OperationScope(SchemaExtension):
    """Each operation reads afresh and gives its database session back however it ends.

    A WebSocket carries many operations at once on one context: each runs in a fork of its
    own, so that none sees the rows another cached, and none ending closes a session another
    is using."""

    async def on_operation(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        scoped = isinstance(context, Context)
        if scoped and context.socket:
            context = execution.context = context.fork()
        try:
            yield
        finally:
            if scoped:
                await context.close()

    async def on_stream_result(self, result: StreamExecutionResult) -> None:  # type: ignore[override]  # Strawberry's hook is typed as a generator
        """Over a WebSocket each result (a subscription's every event) leaves before the
        operation ends: its access-log entry is committed first, or the event is replaced by
        the error saying why it is withheld."""
        context = self.execution_context.context
        if not isinstance(context, Context) or not isinstance(result, ExecutionResult):
            return
        try:
            await log_reads(context)
        except AccessLogUnavailable as error:
            result.data, result.errors = None, [error]

    async def on_execute(self) -> AsyncIterator[None]:
        """The operation's name is known once the document is parsed: the access log's. A query
        holds the CPL's snapshot before it runs, so its relations resolve as plain values; a
        mutation reads it only after its write (a subscription, for each event)."""
        execution = self.execution_context
        context = execution.context
        if isinstance(context, Context):
            context.ssc_reads.operation_name = execution.operation_name
            if execution.operation_type is OperationType.QUERY:
                await context.loaders.snapshot()
            elif execution.operation_type is OperationType.SUBSCRIPTION:
                context.event_group = event_group(execution, context)
        yield


def extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """Factories, not instances: extensions keep per-operation state, so each request gets its
    own. The parser and validation caches live at module level (`schema.documents`).

    Order matters: the standard rules (cached) run before the depth, alias and cost limits,
    which rely on them to have proved every fragment exists and none is cyclic."""
    limits = Limits.from_settings(settings)
    return [
        OperationRecord,
        partial(DocumentCache, settings.max_query_tokens),
        partial(OperationLimits, limits),
        SubscriptionSlots,
        PolicyEnforcement,
        ErrorPolicy,
        OperationScope,
    ]
