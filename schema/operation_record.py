"""What the operation that ran was and how it ended, told to the request's access line
(`server.requests`, through the exchange of `config.logs`) and to the metrics: a schema
extension, so it reads the operation from the parsed document, knowing nothing of HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from config import metrics, tracing
from config.logs import EXCHANGE

_MAX_NAME = 64


def _operation(execution_context: object) -> OperationDefinitionNode | None:
    """The operation that runs, found in the parsed document (so its name is a GraphQL Name,
    whatever the client put in `operationName`)."""
    document = getattr(execution_context, "graphql_document", None)
    if document is None:
        return None
    wanted = getattr(execution_context, "_provided_operation_name", None)
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and (
            wanted is None or (definition.name is not None and definition.name.value == wanted)
        ):
            return definition
    return None


def _forbidden(errors: list[GraphQLError]) -> int:
    return sum(1 for e in errors if (e.extensions or {}).get("code") == "FORBIDDEN")


def _outcome(errors: list[GraphQLError]) -> str:
    if not errors:
        return "ok"
    if all(error.path is None for error in errors):
        return "rejected"  # refused before anything ran: syntax, validation, limits, budgets
    return "errors"


class OperationRecord(SchemaExtension):
    """Tells the request's access line and the metrics which operation ran and how it ended.

    Listed first among the extensions, so it sees the errors as the client gets them (masked
    and one per denied selection): when the operation ends, and, for each result streamed over
    a WebSocket (a subscription's every event), once the other extensions have shaped it.

    An operation is counted once, when it ends: a query or mutation when answered, a
    subscription when it completes, fails or its socket closes (`ok` if none of its results
    carried an error). The FORBIDDEN selections are counted as they are answered: a
    subscription's, event by event."""

    streamed = False
    stream_outcome = "ok"  # the outcome of the results streamed so far, taken together

    async def on_operation(self) -> AsyncIterator[None]:
        with tracing.span("graphql operation") as span:
            try:
                yield
            finally:  # a subscription's end is often its socket closing: counted all the same
                kind, name = self._record()
                if span is not None:
                    span.update_name(f"{kind} {name}" if name else kind)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        try:
            yield
        finally:  # after the extensions listed later shaped it, as it was sent
            errors = getattr(result, "errors", None) or []
            if errors:
                # `rejected` only when refused before anything ran, so by its first result.
                self.stream_outcome = "errors" if self.streamed else _outcome(errors)
            self.streamed = True
            _count_denied(_forbidden(errors))

    def _record(self) -> tuple[str, str | None]:
        """Count the operation, tell the request's access line about it; its type and name."""
        context = self.execution_context
        operation = _operation(context)
        principal = getattr(context.context, "principal", None)
        if self.streamed:  # denials counted as each result went
            return _told(operation, self.stream_outcome, 0, principal)
        errors = getattr(context.result, "errors", None) or context.pre_execution_errors or []
        return record(operation, errors, principal)


def record(
    operation: OperationDefinitionNode | None, errors: list[GraphQLError], principal: Any
) -> tuple[str, str | None]:
    """An operation that answered once with `errors`, counted and told; its type and name.
    Also for one answered without this extension (`schema.direct`)."""
    denied = _forbidden(errors)
    _count_denied(denied)
    return _told(operation, _outcome(errors), denied, principal)


def _told(
    operation: OperationDefinitionNode | None, outcome: str, denied: int, principal: Any
) -> tuple[str, str | None]:
    """The operation counted in the metrics and told to the request's access line."""
    kind = operation.operation.value if operation is not None else "unknown"
    name = operation.name.value[:_MAX_NAME] if operation and operation.name else None
    exchange = EXCHANGE.get()
    cache = exchange.cache if exchange is not None and exchange.cache else "none"
    metrics.OPERATIONS_BY[kind, outcome, cache].inc()
    if exchange is not None:
        if principal is not None:
            exchange.party_category = principal.party_category.value
        exchange.operation_type, exchange.operation_name = kind, name
        exchange.outcome, exchange.denied = outcome, denied
    return kind, name


def _count_denied(denied: int) -> None:
    if denied:
        metrics.DENIED_SELECTIONS.inc(denied)


def record_hit(operation_name: str | None, outcome: str, denied: int) -> None:
    """An answer served from the response cache is an operation too (a query, `cache="hit"`),
    with the outcome and the FORBIDDEN selections of the answer it repeats."""
    metrics.OPERATIONS_BY["query", outcome, "hit"].inc()
    _count_denied(denied)
    exchange = EXCHANGE.get()
    if exchange is not None:
        exchange.operation_type, exchange.operation_name = "query", operation_name
        exchange.outcome, exchange.denied, exchange.cache = outcome, denied, "hit"


def recorded() -> tuple[str | None, str, int]:
    """What the operation that just ran told the exchange (its name, outcome and denials), for
    the response cache to keep beside its answer and `record_hit` to repeat on a hit."""
    exchange = EXCHANGE.get()
    if exchange is None or exchange.outcome is None:
        return None, "ok", 0
    return exchange.operation_name, exchange.outcome, exchange.denied
