"""A GraphQL request as the endpoint reads it from HTTP (`server.graphql_view` applies it): its
header fields, its media type, its parameters (a POST's JSON body, a GET's query string) and
the operation its document selects. What a client sends the same every time (a `Content-Type`,
a document) is worked out once, not on every request: most requests are the same few ones
again, and a response-cache hit costs little more than reading them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from cross_web import HTTPException  # what Strawberry's views raise for a malformed request
from cross_web.request import HTTPMethod, StarletteRequestAdapter
from graphql import GraphQLError, GraphQLSchema, OperationDefinitionNode, OperationType
from starlette.types import Scope
from strawberry.http import GraphQLRequestData
from strawberry.http.parse_content_type import parse_content_type

from schema.documents import Prepared, prepared
from schema.limits import invalid_unicode
from schema.response_cache import PersistedQueries
from server.graphql_http import (
    MAX_REMEMBERED,
    Refusal,
    decode,
    method_not_allowed,
    not_well_formed,
)

FIELDS = "cpl.fields"  # where the view keeps `first_fields` in the request's scope


def first_fields(scope: Scope) -> dict[bytes, bytes]:
    """A request's header fields by their (lower-case) names, the first of each name, as
    Starlette's `Headers` reads them: one dictionary a request, not a scan of the list each
    time a field is read."""
    return dict(reversed(scope["headers"]))


def media_type(content_type: bytes | None) -> str:
    """A request's media type: its `Content-Type` without parameters, read as Strawberry's own
    view reads it (`parse_content_type`), once per value a client sends."""
    if content_type is not None and len(content_type) <= MAX_REMEMBERED:
        return _media_type(content_type)
    return _parse_media_type(content_type)


def _parse_media_type(content_type: bytes | None) -> str:
    return parse_content_type(content_type.decode("latin-1") if content_type else "")[0]


_media_type = lru_cache(maxsize=64)(_parse_media_type)


def unsupported_media_type(content_type: str) -> Refusal:
    return Refusal(
        f"Send the request as application/json (this one is {content_type or 'untyped'}).",
        400,
        415,
    )


def unselectable(message: str) -> Refusal:
    """The document does not say which operation to run (GraphQL's GetOperation fails)."""
    return Refusal(message, 400, 400)


def check_request(value: object) -> dict[str, Any]:
    """A decoded body that is a GraphQL-over-HTTP request (an object with a string `query`, an
    optional string `operationName`, object `variables` and `extensions`; null is absent), or
    the refusal that says what it is not. Unknown members are ignored, as the draft says."""
    if not isinstance(value, dict):
        raise not_well_formed("The request body must be a JSON object.")
    for name, kinds, what in PARAMETERS:
        if not isinstance(value.get(name), kinds):
            raise not_well_formed(f"The GraphQL operation's `{name}` must be {what}, if provided.")
    for name in ("query", "operationName"):  # echoed in errors: each must encode as UTF-8
        if invalid_unicode(value.get(name)):
            raise not_well_formed(
                f"The GraphQL operation's `{name}` is not valid Unicode (a lone surrogate)."
            )
    return value


PARAMETERS = (
    ("query", (str, type(None)), "a string or null"),
    ("operationName", (str, type(None)), "a string or null"),
    ("variables", (dict, type(None)), "an object or null"),
    ("extensions", (dict, type(None)), "an object or null"),
)


def query_parameters(params: Any) -> dict[str, Any]:
    """A GET's parameters; an empty optional one is as good as absent (the draft), and
    `variables` and `extensions` are JSON objects."""
    values = {k: v for k, v in dict(params).items() if v != "" or k == "query"}
    for name in ("variables", "extensions"):
        if name in values:
            value = decode(values[name])
            if not isinstance(value, dict):
                raise not_well_formed(f"The GraphQL operation's `{name}` must be a JSON object.")
            values[name] = value
    return values


def request_data(
    values: dict[str, Any], persisted: PersistedQueries, max_query_bytes: int
) -> GraphQLRequestData:
    """The request of checked parameters (`check_request`, `query_parameters`), a persisted
    query's hash resolved to its document, which has its own size limit, far below the body's
    (sized for fleet-plan variables), so that nobody makes the server parse megabytes of query.
    As Strawberry's own view reads it, less what is settled here: no batches (a body is one
    JSON object) and no HTTP streaming (the endpoint's `protocols` hold no such transport)."""
    query = persisted.resolve(values.get("query"), values.get("extensions"))
    limit = max_query_bytes  # a character is 4 bytes at most: most need no encoding to know
    if query and len(query) * 4 > limit and len(query.encode("utf-8", "surrogatepass")) > limit:
        raise HTTPException(413, f"The query document is over {limit} bytes.")
    return GraphQLRequestData(
        query=query,
        variables=values.get("variables"),
        operation_name=values.get("operationName"),
        extensions=values.get("extensions"),
    )


def select_operation(
    schema: GraphQLSchema, data: GraphQLRequestData, method: str, max_tokens: int
) -> tuple[Prepared, OperationDefinitionNode] | None:
    """GraphQL's GetOperation, before anything runs: a document of several operations needs
    `operationName`, which must name one of them; and GET (HEAD) only reads: a mutation is 405.
    The prepared document and its operation, or None for a document that does not parse or
    validate, which is left to execution, which answers with its errors (the same cached parse:
    `schema.documents.prepared`, which also lists the operations, once per document)."""
    if not data.query:
        raise not_well_formed("No GraphQL query found in the request.")
    try:
        found = prepared(schema, data.query, max_tokens)
    except GraphQLError:
        return None
    if found.errors:
        return None
    name = data.operation_name
    if name is None and len(found.operations) != 1:
        raise unselectable(
            f"The document holds {len(found.operations)} operations: name the one to run in "
            "`operationName`."
        )
    operation = found.operations[0] if name is None else found.named.get(name)
    if operation is None:
        raise unselectable(f'Unknown operation named "{name}".')
    if operation.operation is OperationType.MUTATION and method != "POST":
        raise method_not_allowed("A mutation is sent by POST: GET and HEAD only read.", "POST")
    return found, operation


class RequestAdapter(StarletteRequestAdapter):
    """Strawberry's adapter, with the request's scope at hand for what one request keeps; a
    HEAD is a GET to it (answered without the body, `server.graphql_http.finish`)."""

    @property
    def scope(self) -> Scope:
        return self._request.scope

    @property
    def method(self) -> HTTPMethod:
        return "GET" if self._request.method == "HEAD" else super().method
