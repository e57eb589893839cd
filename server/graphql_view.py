"""The GraphQL endpoint over HTTP and WebSocket: HTTP → principal → Strawberry context →
resolvers → models (`server.app` assembles it with the other routes and the middleware).

Authentication happens here, before GraphQL runs, so that a request without a valid token gets
HTTP 401 and never reaches a resolver. The GraphiQL page itself needs no token: an analyst opens
it in a browser, signs in (`server.signin`), and the page's requests carry the session cookie
with its CSRF header.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import strawberry
from cross_web import HTTPException  # what Strawberry's views raise for a malformed request
from cross_web.request import StarletteRequestAdapter
from graphql import OperationType, get_operation_ast
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLRequestData
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from config.logs import EXCHANGE
from models.database import (
    DatabaseUnavailable,
    describe_outage,
    is_outage,
)
from permissions.auth_errors import AuthenticationError
from permissions.document_policy import decide
from permissions.policy import ALLOWED, Rule
from permissions.principal import Principal
from permissions.ssc_access import SSC_READS, AccessLogUnavailable
from permissions.tokens import bearer_token
from schema.context import Context, Services
from schema.documents import valid_document
from schema.errors import SERVICE_UNAVAILABLE
from schema.extensions import READABLE_CODES
from schema.limits import MAX_JSON_DEPTH, Limits, check, nests_deeper_than
from schema.operation_record import record_hit
from schema.rate_limit import RateLimitedSockets
from schema.response_cache import (
    PERSISTED_QUERY_NOT_FOUND,
    Cached,
    Lookup,
    PersistedQueryError,
    lookup_for,
)
from server.graphiql import GraphiQLPage
from server.http_errors import (
    bad_request,
    database_unavailable,
    not_authenticated,
    over_budget,
)
from server.requests import PRINCIPAL
from server.signin import CsrfRefusedError, SignIn, csrf_refused

logger = logging.getLogger("cpl_pathways")
EXPIRY = "cpl.expiry"
REQUEST_DATA = "cpl.request"
KEEP = "cpl.keep"


class GraphQLApp(GraphQL[Context, None]):
    """Strawberry's ASGI view, with the caller authenticated before anything executes."""

    schema: strawberry.Schema  # the base class holds any BaseSchema; this one is given one

    def __init__(
        self, schema: strawberry.Schema, services: Services, signin: SignIn, page: GraphiQLPage
    ) -> None:
        super().__init__(
            schema,
            graphql_ide=None,
            keep_alive=True,
            keep_alive_interval=services.settings.ws_keep_alive_seconds,
            # A WebSocket handshake from another origin is refused (HTTP 403) unless CORS lists
            # it: browsers apply no CORS to WebSockets, so this list is their only gate. A
            # listed origin still signs in by token only; the session cookie needs this origin.
            allowed_origins=services.settings.cors_origins,
        )
        self.protocols = (GRAPHQL_TRANSPORT_WS_PROTOCOL,)  # the one the contract names
        self.graphql_transport_ws_handler_class = RateLimitedSockets
        self.request_adapter_class = RequestAdapter
        self.services = services
        self.limits = Limits.from_settings(services.settings)
        self.signin = signin
        self.page = page
        self._working: dict[tuple[Any, ...], asyncio.Future[Cached | None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _is_ide_page(scope):
            await self.page.page()(scope, receive, send)
            return
        if scope["type"] == "http":
            request = Request(scope, receive=receive)
            response = await self._authenticate(request)
            if response is None:
                try:
                    response = await self._answer(request)
                except HTTPException as error:
                    # Strawberry answers malformed requests in plain text; clients expect JSON.
                    response = bad_request(error.reason, error.status_code)
                except PersistedQueryError as error:
                    response = persisted_query_error(error)
                except AccessLogUnavailable:  # logged where it failed (permissions.ssc_access)
                    response = database_unavailable()
                except Exception as error:
                    if not is_outage(error):
                        raise
                    # Expected weather, not a bug: one warning line, no traceback.
                    logger.warning("database unavailable: %s", describe_outage(error))
                    response = database_unavailable()
            await response(scope, receive, send)
            return
        try:
            await super().__call__(scope, receive, send)
        finally:
            expiry = scope.pop(EXPIRY, None)
            if expiry is not None:
                expiry.cancel()

    async def _answer(self, request: Request) -> Response:
        """Run the operation, or answer from the response cache. GET answers carry an ETag
        derived from the cache key and honour If-None-Match."""
        data = await self.parse_http_body(self.request_adapter_class(request))
        request.scope[REQUEST_DATA] = data
        lookup = await self._lookup(request, data)
        get = request.method == "GET"
        key = lookup.key if lookup is not None and self.services.responses.enabled else None
        if (
            lookup is not None
            and get
            and request.headers.get("if-none-match") == lookup.etag
            and await self._revalidated(request, key)
        ):
            return Response(status_code=304, headers=revalidate(lookup))
        cached = await self._cached(key)
        if cached is not None:
            await self._log_hit(request, cached)
            record_hit(cached.operation_name, cached.outcome, cached.denied)
            response: Response = Response(cached.body, media_type="application/json")
        else:
            exchange = EXCHANGE.get()
            if exchange is not None and key is not None:
                exchange.cache = "miss"
            response = await self._run_once(request, key)
        if lookup is not None and get:
            response.headers.update(revalidate(lookup))
        return response

    async def _revalidated(self, request: Request, key: tuple[Any, ...] | None) -> bool:
        """Whether to confirm the client's copy (304). Confirming an answer that holds SSC-only
        values lets its caller read them again, so it is logged as a hit is; when the answer is
        no longer kept, what it read is not known here, and a caller who may read them gets the
        answer itself instead (its run is logged as any)."""
        if request.scope[PRINCIPAL].party_category not in ALLOWED[Rule.SSC_ONLY]:
            return True
        cached = self.services.responses.get(key) if key is not None else None
        if cached is None:
            return False
        await self._log_hit(request, cached)
        return True

    async def _log_hit(self, request: Request, cached: Cached) -> None:
        """The same reads again, by this caller: committed before the answer goes."""
        if cached.ssc_reads is not None:
            await self.services.access_log.record(request.scope[PRINCIPAL], cached.ssc_reads)

    async def _cached(self, key: tuple[Any, ...] | None) -> Cached | None:
        """The kept answer, or the one being worked out for the same key right now: after a
        write every front-end misses at once, and one execution serves them all."""
        if key is None:
            return None
        cached = self.services.responses.get(key)
        if cached is None and (working := self._working.get(key)) is not None:
            cached = await asyncio.shield(working)
        return cached

    async def _run_once(self, request: Request, key: tuple[Any, ...] | None) -> Response:
        """Execute, keeping the answer when it may be kept; others asking meanwhile wait."""
        if key is None or key in self._working:
            return await self.run(request)
        working = self._working[key] = asyncio.get_running_loop().create_future()
        kept: Cached | None = None
        try:
            response = await self.run(request)
            if response.status_code == 200 and request.scope.get(KEEP):
                kept = Cached(bytes(response.body), request.scope.get(SSC_READS), *_record())
                self.services.responses.put(key, kept)
            return response
        finally:
            del self._working[key]
            working.set_result(kept)  # None: each waiter runs the operation itself

    async def _lookup(self, request: Request, data: Any) -> Lookup | None:
        """The cache key of a query (None for anything else), which needs the revision now.

        In execution's order: parsed, validated, within the limits, then the policy pass. A
        document the limits refuse gets no key (execution refuses it with the limits' error),
        so no pass over a document runs before the limits have measured it."""
        wanted = self.services.responses.enabled or request.method == "GET"
        if not wanted or not isinstance(data, GraphQLRequestData) or not data.query:
            return None
        schema, settings = self.schema._schema, self.services.settings
        document = valid_document(schema, data.query, settings.max_query_tokens)
        if document is None:
            return None
        operation = get_operation_ast(document, data.operation_name)
        if operation is None or operation.operation is not OperationType.QUERY:
            return None
        if check(self.limits, schema, document, data.operation_name, data.variables):
            return None
        principal: Principal = request.scope[PRINCIPAL]
        decision = decide(schema, document, data.operation_name, principal.party_category)
        if decision is None or not decision.versioned:
            return None
        revision = await self.services.revision.current()
        return lookup_for(
            revision, data.query, data.operation_name, data.variables, principal, decision
        )

    async def process_result(self, request: Request, result: Any) -> Any:
        """Answer an outage met while executing as one (503), not as a 200 whose errors say
        it, and an answer whose SSC access-log entry could not be written not at all (a 503,
        not even a partial answer); else mark an answer fit to keep: no error that is not the
        client's own deterministic answer (a masked unexpected error carries no code)."""
        for error in result.errors or ():
            if isinstance(error, AccessLogUnavailable):
                raise AccessLogUnavailable()  # logged where it failed (permissions.ssc_access)
            original = error.original_error
            if (error.extensions or {}).get("code") == SERVICE_UNAVAILABLE or (
                original is not None and is_outage(original)
            ):
                raise DatabaseUnavailable(describe_outage(original or error))
        request.scope[KEEP] = all(
            (error.extensions or {}).get("code") in READABLE_CODES for error in result.errors or []
        )
        return await super().process_result(request, result)

    async def _authenticate(self, request: Request) -> Response | None:
        """Put the verified principal on the request, or answer why not: 401 for a bad token,
        403 for a session cookie without its CSRF header, 503 when the identity provider's
        keys cannot be had (the token may well be fine), 429 over the Party's rate limit."""
        try:
            request.scope[PRINCIPAL] = await self.authenticate(request)
        except CsrfRefusedError:
            logger.info("rejected request: cookie without the CSRF header")
            return csrf_refused()
        except AuthenticationError as error:
            return not_authenticated(error)
        return over_budget(self.services.rate_limit, request.scope[PRINCIPAL])

    def decode_json(self, data: str | bytes) -> object:
        """A request body is a JSON object in UTF-8, or a 400 that says which it is not."""
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
        except UnicodeDecodeError:
            raise HTTPException(400, "The request body is not UTF-8.") from None
        try:
            value = json.loads(text)  # Strawberry turns a JSONDecodeError into a 400
        except RecursionError:
            deep = True
        else:  # the count of brackets bounds the depth, at C speed: most bodies need no walk
            brackets = text.count("[") + text.count("{")
            deep = brackets > MAX_JSON_DEPTH and nests_deeper_than(value, MAX_JSON_DEPTH)
        if deep:
            raise HTTPException(400, f"The request body nests deeper than {MAX_JSON_DEPTH}.")
        if not isinstance(value, dict):
            raise HTTPException(400, "The request body must be a JSON object.")
        return value

    async def parse_http_body(self, request: Any) -> GraphQLRequestData | list[GraphQLRequestData]:
        """Parsed once a request (`_answer` keeps it). A persisted query's hash is resolved to
        its document here. The body limit is sized for fleet-plan variables; the document has
        its own, far smaller one, so that nobody makes the server parse megabytes of query."""
        kept = request.scope.get(REQUEST_DATA)
        if kept is not None:
            return kept
        data = await super().parse_http_body(request)
        if isinstance(data, GraphQLRequestData):
            data.query = self.services.persisted_queries.resolve(data.query, data.extensions)
        limit = self.services.settings.max_query_bytes
        for item in data if isinstance(data, list) else [data]:
            if item.query and len(item.query.encode("utf-8", "surrogatepass")) > limit:
                raise HTTPException(413, f"The query document is over {limit} bytes.")
        return data

    async def authenticate(self, request: Request) -> Principal:
        """A bearer token when there is one (exactly as ever), else the session cookie."""
        if "authorization" not in request.headers and self.signin.has_cookie(request):
            return await self.signin.principal_for_request(request)
        token = bearer_token(request.headers.get("authorization"))
        return await self.services.verifier.verify(token)

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        return Context(
            principal=request.scope.get(PRINCIPAL), services=self.services, request=request
        )

    async def on_ws_connect(self, context: Context) -> None:
        """A socket signs in by its token (closed with 4403 when the token expires) or by the
        session cookie with its CSRF token (closed when the session ends)."""
        params = getattr(context, "connection_params", None) or {}
        header = params.get("Authorization") or params.get("authorization")
        socket = context.request
        assert socket is not None  # get_context gave the context its WebSocket
        try:
            if header is None and self.signin.has_cookie(socket):
                csrf = params.get("csrfToken")
                context.sign_in(await self.signin.principal_for_socket(socket, csrf))
                return
            context.sign_in(await self.services.verifier.verify(bearer_token(header)))
        except AuthenticationError as error:
            logger.info("rejected websocket: %s", error.reason)
            raise ConnectionRejectionError() from None
        websocket = context.request
        principal = context.principal
        if isinstance(websocket, WebSocket) and principal and principal.expires_at is not None:
            websocket.scope[EXPIRY] = close_when_expired(websocket, principal.expires_at)


class RequestAdapter(StarletteRequestAdapter):
    """Strawberry's adapter, with the request's scope at hand for what one request keeps."""

    @property
    def scope(self) -> Scope:
        return self._request.scope


def _record() -> tuple[str | None, str, int]:
    """What `schema.operation_record` told the exchange of the operation that just ran."""
    exchange = EXCHANGE.get()
    if exchange is None or exchange.outcome is None:
        return None, "ok", 0
    return exchange.operation_name, exchange.outcome, exchange.denied


def revalidate(lookup: Lookup) -> dict[str, str]:
    """Clients may keep a GET answer but must ask again each time; the ETag makes that cheap."""
    return {"ETag": lookup.etag, "Cache-Control": "private, no-cache"}


def persisted_query_error(error: PersistedQueryError) -> Response:
    """APQ clients look for this exact shape: HTTP 200 and the code, then resend the query."""
    if error.code == PERSISTED_QUERY_NOT_FOUND:
        body = {"errors": [{"message": error.message, "extensions": {"code": error.code}}]}
        return JSONResponse(body)
    return bad_request(error.message, 400)


def close_when_expired(websocket: WebSocket, expires_at: float) -> asyncio.TimerHandle:
    """A socket lives no longer than the token that opened it: at its expiry the server closes
    it with 4403, ending every subscription on it. Cancelled when the socket closes first."""

    async def close() -> None:
        logger.info("closing websocket: token expired")
        with contextlib.suppress(RuntimeError, OSError):  # already closing or closed
            await websocket.close(code=4403, reason="token expired")

    loop = asyncio.get_running_loop()
    delay = max(0.0, expires_at - time.time())
    return loop.call_later(delay, lambda: loop.create_task(close()))


def _is_ide_page(scope: Scope) -> bool:
    """A browser's GET of GraphiQL: HTML accepted. Whatever the query string holds (GraphiQL
    keeps `?query=` in the address), the answer is the page, which executes nothing itself:
    its script runs the query with the session's cookie and CSRF header."""
    if scope["method"] != "GET":
        return False
    accept = dict(scope["headers"]).get(b"accept", b"")
    return b"text/html" in accept
