"""GraphQL over HTTP as the draft specification reads (graphql.github.io/graphql-over-http) and
RFC 9110's conditional requests: which media type an answer is in, which status it gets, the
refusals of a request that cannot run, and whether a client's copy is still current.
`server.graphql_view` applies them (the request itself is read by `server.graphql_request`);
nothing here knows the schema.

Two media types, chosen by `Accept`. `application/graphql-response+json` (the draft's own)
gets the draft's statuses: a request error (no `data`) is 4xx, 400 for a document or body that
does not parse and for one that parses but cannot run (validation, operation selection,
variables: the status the graphql-http audit suite checks, and the one front-end clients
branch on); an answer with both `data` and `errors` is 294 (partial success). `application/json`
(a legacy client, and the default with `*/*` or no `Accept`) keeps the statuses it has always
had: 200 for every GraphQL answer, 400 for a request that is not a GraphQL request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import orjson
from graphql import (
    GraphQLError,
)
from starlette.responses import JSONResponse, Response

from schema.errors import (
    BAD_REQUEST,
    BAD_USER_INPUT,
    FORBIDDEN,
    GRAPHQL_PARSE_FAILED,
    GRAPHQL_VALIDATION_FAILED,
    INTERNAL_SERVER_ERROR,
    NOT_FOUND,
    PAYLOAD_TOO_LARGE,
    PERSISTED_QUERY_NOT_FOUND,
    RATE_LIMITED,
    SERVICE_UNAVAILABLE,
    UNAUTHENTICATED,
    UNEXPECTED,
    code_of,
    coded,
)
from schema.limits import MAX_JSON_DEPTH, nests_deeper_than
from schema.response_cache import PersistedQueryError
from server.http_errors import bad_request

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON_BYTES, GRAPHQL_RESPONSE_TYPE = JSON.encode(), f"{GRAPHQL_RESPONSE}; charset=utf-8".encode()
PARTIAL_SUCCESS = 294  # the draft's status for an answer with both data and errors
ALLOW = "GET, HEAD, POST"

# A request error's status under application/graphql-response+json, by its code.
REQUEST_ERROR_STATUS = {
    GRAPHQL_PARSE_FAILED: 400,
    GRAPHQL_VALIDATION_FAILED: 400,
    BAD_USER_INPUT: 400,
    BAD_REQUEST: 400,
    UNAUTHENTICATED: 401,
    FORBIDDEN: 403,
    NOT_FOUND: 404,
    PERSISTED_QUERY_NOT_FOUND: 400,
    PAYLOAD_TOO_LARGE: 413,
    RATE_LIMITED: 429,
    INTERNAL_SERVER_ERROR: 500,
    SERVICE_UNAVAILABLE: 503,
}

_RANGE = re.compile(r"^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)/([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*(;.*)?$")
_QUALITY = re.compile(r";\s*q\s*=\s*([0-9](?:\.[0-9]{0,3})?)\s*(?:;|$)", re.IGNORECASE)


def _ranges(accept: str) -> list[tuple[str, str, float]]:
    """The media ranges of an `Accept` header, with their weights; a malformed one is left out."""
    ranges = []
    for part in accept.split(","):
        found = _RANGE.match(part)
        if found is None:
            continue
        weight = _QUALITY.search(found.group(3) or "")
        quality = float(weight.group(1)) if weight else 1.0
        if quality <= 1:
            ranges.append((found.group(1).lower(), found.group(2).lower(), quality))
    return ranges


def _weight(ranges: list[tuple[str, str, float]], media: str) -> tuple[float, int]:
    """The weight `Accept` gives `media` by its most specific range (RFC 9110 12.5.1), and how
    specific that range was (2: named, 1: `type/*`, 0: `*/*`, -1: none)."""
    kind, sub = media.split("/")
    best = (0.0, -1)
    for range_type, range_sub, quality in ranges:
        if (range_type, range_sub) == (kind, sub):
            specificity = 2
        elif range_type == kind and range_sub == "*":
            specificity = 1
        elif (range_type, range_sub) == ("*", "*"):
            specificity = 0
        else:
            continue
        if specificity > best[1]:
            best = (quality, specificity)
    return best


def negotiate(accept: bytes | None) -> str | None:
    """The media type to answer in; None when `Accept` allows neither (406).

    No `Accept`, or one with nothing in it this parser reads, is `application/json`. Otherwise
    the higher weight wins; at equal weights the draft's own type when the client named it,
    `application/json` when only a wildcard matched (`*/*` is what a legacy client sends).
    Worked out once per value a client sends (clients send the same one every time), not
    on every request: a short value is remembered, a long one worked out each time."""
    if accept is None or len(accept) > MAX_REMEMBERED:
        return _negotiate(accept)
    return _negotiated(accept)


MAX_REMEMBERED = 256  # a header value's bytes worth remembering (64 of them at most)


def _negotiate(accept: bytes | None) -> str | None:
    text = accept.decode("latin-1") if accept is not None else None
    ranges = _ranges(text) if text and text.strip() else []
    if not ranges:
        return JSON
    graphql, json = _weight(ranges, GRAPHQL_RESPONSE), _weight(ranges, JSON)
    if graphql[0] <= 0 and json[0] <= 0:
        return None
    if graphql[0] > json[0] or (graphql[0] == json[0] and graphql[1] == 2):
        return GRAPHQL_RESPONSE
    return JSON


_negotiated = lru_cache(maxsize=64)(_negotiate)


class Refusal(Exception):
    """A request this endpoint will not run: its message and code, and its status under each
    media type (`application/json` first)."""

    def __init__(
        self,
        message: str,
        status: int,
        graphql_status: int,
        code: str = BAD_REQUEST,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message, self.code = message, code
        self.statuses = {JSON: status, GRAPHQL_RESPONSE: graphql_status}
        self.headers = dict(headers or {})

    def response(self, media: str) -> Response:
        body = {"errors": [{"message": self.message, "extensions": {"code": self.code}}]}
        return JSONResponse(body, status_code=self.statuses[media], headers=self.headers or None)


def unparsable(message: str) -> Refusal:
    """A body that is not JSON (or not UTF-8): 400 either way, as the contract has it."""
    return Refusal(message, 400, 400)


def not_well_formed(message: str) -> Refusal:
    """JSON, but not a GraphQL-over-HTTP request (no `query`, a parameter of the wrong type)."""
    return Refusal(message, 400, 400)


def method_not_allowed(message: str, allow: str = ALLOW) -> Refusal:
    return Refusal(message, 405, 405, headers={"Allow": allow})


def decode(data: str | bytes) -> object:
    """JSON in UTF-8, nesting at most `MAX_JSON_DEPTH` deep, or the refusal that says which it
    is not (a 400 under either media type)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise unparsable("The request body is not UTF-8.") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise unparsable("Unable to parse request body as JSON") from None
    except RecursionError:
        deep = True
    else:  # the count of brackets bounds the depth, at C speed: most bodies need no walk
        brackets = text.count("[") + text.count("{")
        deep = brackets > MAX_JSON_DEPTH and nests_deeper_than(value, MAX_JSON_DEPTH)
    if deep:
        raise unparsable(f"The request body nests deeper than {MAX_JSON_DEPTH}.")
    return value


def request_error_status(errors: list[Any]) -> int:
    """The status of an answer without `data` under application/graphql-response+json: that of
    its first error's code; a client error before a server error when they differ."""
    codes = [str((error.get("extensions") or {}).get("code")) for error in errors]
    statuses = [REQUEST_ERROR_STATUS.get(code, 400) for code in codes] or [400]
    client = [status for status in statuses if status < 500]
    return client[0] if client else statuses[0]


def graphql_status(payload: Mapping[str, Any]) -> int:
    """The status of a GraphQL answer under application/graphql-response+json."""
    if "data" not in payload:
        return request_error_status(payload.get("errors") or [])
    return PARTIAL_SUCCESS if payload.get("errors") else 200


def answer_status(media: str, graphql: int) -> int:
    """A GraphQL answer's status: the draft's under its media type, 200 under JSON."""
    return graphql if media == GRAPHQL_RESPONSE else 200


def etag_for(etag: str, media: str) -> str:
    """The entity tag of one representation: the two media types are two representations of
    the same answer (RFC 9110 8.8.3), so their strong tags differ."""
    return etag if media == JSON else f'{etag[:-1]}.gr"'


_TAG = re.compile(r'\s*(?:W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(?:,|$)')


def none_match(header: str | None, etag: str) -> bool:
    """Whether `If-None-Match` names `etag` by weak comparison (RFC 9110 13.1.2): `*`, or any
    of a list of tags, `W/` or not on either side. A malformed field matches nothing."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    wanted = etag.removeprefix("W/").strip('"')
    position, tags = 0, []
    while position < len(header):
        found = _TAG.match(header, position)
        if found is None:
            return False
        tags.append(found.group(1))
        position = found.end()
    return wanted in tags


def finish(response: Response, media: str | None, head: bool) -> Response:
    """The last touches on any answer of the endpoint: the negotiated media type on a GraphQL
    answer, `Vary: Accept` (the media type follows it), and for HEAD the same fields without
    the body (RFC 9110 9.3.2)."""
    fields = response.raw_headers  # as Starlette's `MutableHeaders` would edit them, less dear
    for index, (name, value) in enumerate(fields):
        if name == b"content-type":
            if media == GRAPHQL_RESPONSE and value == JSON_BYTES:
                fields[index] = (name, GRAPHQL_RESPONSE_TYPE)
            break
    for index, (name, value) in enumerate(fields):
        if name == b"vary":  # the first `Vary` gets `Accept` added, any other goes
            fields[index] = (name, value + b", Accept")
            fields[index + 1 :] = [field for field in fields[index + 1 :] if field[0] != name]
            break
    else:
        fields.append((b"vary", b"Accept"))
    if head:
        bodiless = Response(b"", status_code=response.status_code, headers=response.headers)
        bodiless.background = response.background
        return bodiless
    return response


def not_acceptable() -> Response:
    """406: `Accept` allows neither media type (the draft's SHOULD)."""
    return Refusal(
        f"Accept {GRAPHQL_RESPONSE} or {JSON}: answers come in no other media type.", 406, 406
    ).response(JSON)


def revalidate(etag: str) -> dict[str, str]:
    """Clients may keep a GET answer but must ask again each time; the ETag makes that cheap."""
    return {"ETag": etag, "Cache-Control": "private, no-cache"}


def with_code(error: GraphQLError) -> GraphQLError:
    """An error that reached the answer without passing the error policy (Strawberry answers
    an exception of an extension itself, outside them) is the server's: masked, with its code."""
    if code_of(error) is not None:
        return error
    if error.original_error is None or isinstance(error.original_error, GraphQLError):
        return coded(error, executing=bool(error.path))
    return GraphQLError(UNEXPECTED, extensions={"code": INTERNAL_SERVER_ERROR})


def persisted_query_error(error: PersistedQueryError, media: str) -> Response:
    """APQ clients look for this exact shape: the code, then they resend the query. HTTP 200
    under application/json (what APQ clients have always been sent); under the draft's media
    type an answer without data is 4xx, and Apollo Client reads the code from a 400 too."""
    if error.code == PERSISTED_QUERY_NOT_FOUND:
        return Refusal(error.message, 200, 400, code=error.code).response(media)
    return bad_request(error.message, 400)


def encoded_answer(payload: Any, sub_response: Response) -> Response:
    """An HTTP answer's body by orjson (the view's `create_response`): on an uncached page the
    stdlib encoder took a sixth of the request. WebSocket messages keep Strawberry's
    `encode_json`: they must be text frames."""
    response = Response(orjson.dumps(payload), media_type=JSON)
    response.headers.raw.extend(sub_response.headers.raw)
    if sub_response.background:
        response.background = sub_response.background
    if sub_response.status_code:
        response.status_code = sub_response.status_code
    return response
