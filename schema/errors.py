"""The error codes and messages a GraphQL error and an HTTP answer share, so a client reads the
same `extensions.code` whichever of the two refused it (`server.http_errors` shapes the HTTP
answers; the schema's extensions the GraphQL errors). Every error carries one (`coded`); a code,
once given a meaning, keeps it."""

from __future__ import annotations

from graphql import GraphQLError, GraphQLSyntaxError

GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"  # the document does not parse
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"  # it parses, and breaks a rule or limit
BAD_USER_INPUT = "BAD_USER_INPUT"  # an argument or variable value refused
UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
NOT_FOUND = "NOT_FOUND"
BAD_REQUEST = "BAD_REQUEST"  # not a GraphQL request the server will run
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
RATE_LIMITED = "RATE_LIMITED"  # over a budget (the contract's code)
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"  # masked: the server's fault, logged there
DATABASE_UNAVAILABLE = "The database is unavailable; try again shortly."
UNEXPECTED = "Unexpected error."


def code_of(error: GraphQLError) -> str | None:
    code = (error.extensions or {}).get("code")
    return code if isinstance(code, str) else None


def coded(error: GraphQLError, executing: bool) -> GraphQLError:
    """`error` with a code, given one by where it arose if it has none: a syntax error is
    GRAPHQL_PARSE_FAILED; before execution, any other is the standard rules'
    (GRAPHQL_VALIDATION_FAILED); once executing, one without a path is a variable value that
    could not be coerced (BAD_USER_INPUT), and one on a field without a code of its own is the
    server's (INTERNAL_SERVER_ERROR: graphql-core's own, such as a null where non-null)."""
    if code_of(error) is not None:
        return error
    if isinstance(error, GraphQLSyntaxError):
        code = GRAPHQL_PARSE_FAILED
    elif not executing:
        code = GRAPHQL_VALIDATION_FAILED
    elif not error.path:
        code = BAD_USER_INPUT
    else:
        code = INTERNAL_SERVER_ERROR
    error.extensions = {**(error.extensions or {}), "code": code}
    return error
