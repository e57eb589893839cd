"""The one Schema every Party category shares."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from config.settings import Settings, load_settings
from models.database import describe_outage, is_outage
from schema.descriptions.apply import describe
from schema.digest import DigestQueries
from schema.execution import CompilingExecutor
from schema.extensions import extensions, is_unexpected
from schema.fleets import FleetMutations, FleetQueries
from schema.hooks import KnownHooksRunner
from schema.lean import lean_resolvers
from schema.mutations import Mutation
from schema.names import schema_config
from schema.notifications import Subscription, WebhookMutations, WebhookQueries
from schema.planning import PlanningQueries, fleet_items_in_slices
from schema.premises import PremisesQueries
from schema.query import Query
from schema.ssc_access import SscAccessQueries
from schema.subscriptions import EventExecutor

logger = logging.getLogger("cpl_pathways")


class CplSchema(strawberry.Schema):
    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """`execute` answers once: queries and mutations. A subscription streams, and only over
        WebSocket (`subscribe`); sent by HTTP it is a 400 naming the operation type, not a
        resolver failing on a stream it cannot return."""
        allowed = set(allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES)
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed - {OperationType.SUBSCRIPTION},
            operation_extensions,
        )

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        """The extensions' hooks found by class, once (`schema.hooks`)."""
        return KnownHooksRunner(execution_context=execution_context, extensions=extensions)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log unexpected errors only: a denied field or a bad id is the client's answer, not a
        server fault, and a traceback for each would bury the real ones. A database outage is
        expected weather: one warning line, not a traceback per query."""
        for error in errors:
            if not is_unexpected(error):
                continue
            if error.original_error is not None and is_outage(error.original_error):
                logger.warning("database unavailable: %s", describe_outage(error.original_error))
            else:
                logger.error("unexpected error: %s", error.message, exc_info=error.original_error)


def build_schema(settings: Settings | None = None, compiled: bool = True) -> strawberry.Schema:
    """The schema; `compiled=False` leaves execution to graphql-core and Strawberry as they
    come, which the tests compare the compiled execution with (`schema/execution.py`); either
    way a subscription event is executed once for its group (`schema.subscriptions`)."""
    schema = CplSchema(
        query=merge_types(
            "Query",
            (
                Query,
                PlanningQueries,
                PremisesQueries,
                WebhookQueries,
                SscAccessQueries,
                FleetQueries,
                DigestQueries,
            ),
        ),
        mutation=merge_types("Mutation", (Mutation, WebhookMutations, FleetMutations)),
        subscription=Subscription,
        extensions=extensions(settings or load_settings()),
        execution_context_class=CompilingExecutor if compiled else EventExecutor,
        config=schema_config(),
    )
    describe(schema._schema)
    fleet_items_in_slices(schema)
    if compiled:
        lean_resolvers(schema)
    return schema


def sdl() -> str:
    """The schema in SDL, as committed in `schema.graphql`: no line ends in spaces (a blank line
    inside a description is printed indented; a block string's value drops that anyway)."""
    return "\n".join(line.rstrip() for line in build_schema().as_str().splitlines()) + "\n"
