"""Parsed and validated documents, cached by their text: one cache for the HTTP layer (which
needs the operation to key the response cache) and for execution, so both see the very same
document object and the policy pass's decision is made once for it."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from graphql import DocumentNode, GraphQLError, GraphQLSchema, parse, specified_rules
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

CACHED_DOCUMENTS = 512


@lru_cache(maxsize=CACHED_DOCUMENTS)
def parsed(query: str, max_tokens: int) -> DocumentNode:
    """The document, or a `GraphQLError` for bad syntax or too many tokens."""
    return parse(query, max_tokens=max_tokens)


@lru_cache(maxsize=CACHED_DOCUMENTS)
def validation_errors(schema: GraphQLSchema, document: DocumentNode) -> list[GraphQLError]:
    """The standard rules (and Strawberry's own two) on a parsed document."""
    return validate_document(schema, document, tuple(specified_rules))


def valid_document(schema: GraphQLSchema, query: str, max_tokens: int) -> DocumentNode | None:
    """The document if it parses and passes validation, else None."""
    try:
        document = parsed(query, max_tokens)
    except GraphQLError:
        return None
    return None if validation_errors(schema, document) else document


class DocumentCache(SchemaExtension):
    """Parsing and validation for execution, from the shared caches."""

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        context.graphql_document = parsed(context.query, self.max_tokens)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        context.pre_execution_errors = validation_errors(
            context.schema._schema, context.graphql_document
        )
        yield
