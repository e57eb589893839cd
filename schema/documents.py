"""Parsed and validated documents, cached by their text: one cache for the HTTP layer (which
needs the operation to key the response cache) and for execution, so both see the very same
document object, and the policy pass's decision, cached by that object, is made once for it.

Keyed by text, not by document: graphql-core hashes and compares documents structurally,
which costs tens of microseconds a request for a typical query."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
    specified_rules,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from schema.response_cache import sha256

CACHED_DOCUMENTS = 512


@dataclass(frozen=True, eq=False)
class Prepared:
    document: DocumentNode
    errors: list[GraphQLError]  # the standard rules' (and Strawberry's own two)
    operations: list[OperationDefinitionNode]  # in the document's order
    named: dict[str, OperationDefinitionNode]  # the first of each name (a valid one has one)
    digest: str  # the text's SHA-256, which keys its answers (`schema.response_cache`)


@lru_cache(maxsize=CACHED_DOCUMENTS)
def prepared(schema: GraphQLSchema, query: str, max_tokens: int) -> Prepared:
    """The parsed and validated document; bad syntax or too many tokens raise `GraphQLError`
    (and are not cached)."""
    document = parse(query, max_tokens=max_tokens)
    errors = validate_document(schema, document, tuple(specified_rules))
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    named = {o.name.value: o for o in reversed(operations) if o.name}
    return Prepared(document, errors, operations, named, sha256(query))


def valid_document(schema: GraphQLSchema, query: str, max_tokens: int) -> DocumentNode | None:
    """The document if it parses and passes validation, else None."""
    try:
        found = prepared(schema, query, max_tokens)
    except GraphQLError:
        return None
    return None if found.errors else found.document


class DocumentCache(SchemaExtension):
    """Parsing and validation for execution, from the shared cache."""

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        found = prepared(context.schema._schema, context.query, self.max_tokens)
        context.graphql_document = found.document
        context.pre_execution_errors = None
        self.found = found
        yield

    def on_validate(self) -> Iterator[None]:
        self.execution_context.pre_execution_errors = self.found.errors
        yield
