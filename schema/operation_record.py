"""What the operation that ran was and how it ended, told to the request's access line
(`server.requests`, through the exchange of `config.logs`) and to the metrics: a schema
extension, so it reads the operation from the parsed document, knowing nothing of HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

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


class OperationRecord(SchemaExtension):
    """Tells the request's access line and the metrics which operation ran and how it ended.

    Listed first among the extensions, so it sees the errors as the client gets them (masked
    and one per denied selection)."""

    async def on_operation(self) -> AsyncIterator[None]:
        with tracing.span("graphql operation") as span:
            yield
            kind, name = self._record()
            if span is not None:
                span.update_name(f"{kind} {name}" if name else kind)

    def _record(self) -> tuple[str, str | None]:
        """Count the operation, tell the request's access line about it; its type and name."""
        context = self.execution_context
        operation = _operation(context)
        kind = operation.operation.value if operation is not None else "unknown"
        name = operation.name.value[:_MAX_NAME] if operation and operation.name else None
        errors = getattr(context.result, "errors", None) or context.pre_execution_errors or []
        if not errors:
            outcome = "ok"
        elif all(error.path is None for error in errors):
            outcome = "rejected"  # refused before anything ran: syntax, validation, limits
        else:
            outcome = "errors"
        metrics.OPERATIONS.labels(kind, outcome).inc()
        denied = _forbidden(errors)
        if denied:
            metrics.DENIED_SELECTIONS.inc(denied)
        exchange = EXCHANGE.get()
        if exchange is not None:
            principal = getattr(context.context, "principal", None)
            if principal is not None:
                exchange.party_category = principal.party_category.value
            exchange.operation_type, exchange.operation_name = kind, name
        return kind, name
