"""The GraphQL endpoint over HTTP and WebSocket: HTTP → principal → Strawberry context →
resolvers → models (`server.app` assembles it with the other routes and the middleware).

Authentication happens here, before GraphQL runs, so that a request without a valid token gets
HTTP 401 and never reaches a resolver. The GraphiQL page itself needs no token: an analyst opens
it in a browser, signs in (`server.signin`), and the page's requests carry the session cookie
with its CSRF header.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import strawberry
from cross_web import HTTPException  # what Strawberry's views raise for a malformed request
from graphql import OperationDefinitionNode, OperationType
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from config.logs import EXCHANGE
from models.database import (
    DatabaseUnavailable,
    describe_outage,
    is_outage,
)
from permissions.auth_errors import AuthenticationError
from permissions.document_policy import Decision, decide
from permissions.policy import ALLOWED, Rule
from permissions.principal import Principal
from permissions.row_scopes import row_scope
from permissions.ssc_access import SSC_READS, AccessLogUnavailable
from permissions.tokens import bearer_token
from resolvers.planning.stored_fleet import fleet_revision
from schema import direct
from schema.context import Context, Services
from schema.documents import Prepared
from schema.errors import SERVICE_UNAVAILABLE, code_of
from schema.extensions import READABLE_CODES
from schema.limits import Limits, check
from schema.operation_record import record_hit, recorded
from schema.rate_limit import RateLimitedSockets
from schema.response_cache import Cached, Lookup, PersistedQueryError
from server.graphiql import GraphiQLPage, is_ide_page
from server.graphql_http import (
    JSON,
    PARTIAL_SUCCESS,
    Refusal,
    answer_status,
    decode,
    encoded_answer,
    etag_for,
    finish,
    graphql_status,
    method_not_allowed,
    negotiate,
    none_match,
    not_acceptable,
    persisted_query_error,
    revalidate,
    with_code,
)
from server.graphql_request import (
    FIELDS,
    RequestAdapter,
    check_request,
    first_fields,
    media_type,
    query_parameters,
    request_data,
    select_operation,
    unsupported_media_type,
)
from server.http_errors import (
    bad_request,
    database_unavailable,
    not_authenticated,
    over_budget,
)
from server.requests import PRINCIPAL
from server.signin import CsrfRefusedError, SignIn, csrf_refused
from server.socket_signin import EXPIRY, sign_in_socket

logger = logging.getLogger("cpl_pathways")
REQUEST_DATA = "cpl.request"
KEEP = "cpl.keep"
OUTCOME = "cpl.outcome"  # the status of the answer under the draft's media type


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
        self.tokens = services.settings.max_query_tokens
        self.signin = signin
        self.page = page
        self._working: dict[tuple[Any, ...], asyncio.Future[Cached | None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_ide_page(scope):
            await self.page.page()(scope, receive, send)
            return
        if scope["type"] == "http":
            request = Request(scope, receive=receive)
            fields = scope[FIELDS] = first_fields(scope)
            media = negotiate(fields.get(b"accept"))
            response = await self._authenticate(request)
            if response is None:
                response = await self._respond(request, media)
            await finish(response, media, head=scope["method"] == "HEAD")(scope, receive, send)
            return
        try:
            await super().__call__(scope, receive, send)
        finally:
            expiry = scope.pop(EXPIRY, None)
            if expiry is not None:
                expiry.cancel()

    async def _respond(self, request: Request, media: str | None) -> Response:
        """The answer to an authenticated caller's request, in `media` (406 when `Accept`
        allows no media type this endpoint answers in)."""
        if media is None:
            return not_acceptable()
        try:
            return await self._answer(request, media)
        except Refusal as refusal:
            return refusal.response(media)
        except HTTPException as error:  # what Strawberry's own view still refuses
            return bad_request(error.reason, error.status_code)
        except PersistedQueryError as error:
            return persisted_query_error(error, media)
        except AccessLogUnavailable:  # logged where it failed (permissions.ssc_access)
            return database_unavailable()
        except Exception as error:
            if not is_outage(error):
                raise
            # Expected weather, not a bug: one warning line, no traceback.
            logger.warning("database unavailable: %s", describe_outage(error))
            return database_unavailable()

    async def _answer(self, request: Request, media: str) -> Response:
        """Run the operation, or answer from the response cache, with the status `media` gives
        its outcome. GET (and HEAD) answers carry an ETag, an HMAC of the cache key and the
        media type (`schema.response_cache`), and honour If-None-Match."""
        method = request.method
        if method not in ("GET", "HEAD", "POST"):
            raise method_not_allowed("GraphQL is sent by GET, HEAD or POST.")
        data = await self.parse_http_body(self.request_adapter_class(request))
        request.scope[REQUEST_DATA] = data
        selected = select_operation(self.schema._schema, data, method, self.tokens)
        decision = self._decision(request, data, selected)
        get = method in ("GET", "HEAD")
        wanted = self.services.responses.enabled or get
        found = selected[0] if selected is not None else None
        lookup = await self._lookup(request, data, found, decision) if wanted else None
        key = lookup.key if lookup is not None and self.services.responses.enabled else None
        etag = etag_for(lookup.etag, media) if lookup is not None and get else None
        if (
            etag is not None
            and none_match(request.headers.get("if-none-match"), etag)
            and await self._revalidated(request, key)
        ):
            return Response(status_code=304, headers=revalidate(etag))
        cached = self.services.responses.get(key) if key is not None else None
        if cached is None and key is not None and (working := self._working.get(key)):
            # being worked out for the same key right now: after a write every front-end
            # misses at once, and one execution serves them all
            cached = await asyncio.shield(working)
        if cached is not None:
            if cached.ssc_reads is not None:
                await self._log_hit(request, cached)
            record_hit(cached.operation_name, cached.outcome, cached.denied)
            response: Response = Response(cached.body, media_type=JSON)
            outcome = PARTIAL_SUCCESS if cached.errors else 200
        else:
            exchange = EXCHANGE.get()
            if exchange is not None and key is not None:
                exchange.cache = "miss"
            response = await self._run_once(request, key, decision)
            outcome = request.scope.get(OUTCOME, 200)
        response.status_code = answer_status(media, outcome)
        if etag is not None and response.status_code < 300:
            response.headers.update(revalidate(etag))
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

    async def _run_once(
        self, request: Request, key: tuple[Any, ...] | None, decision: Decision | None
    ) -> Response:
        """Execute, keeping the answer when it may be kept; others asking meanwhile wait."""
        if key is None or key in self._working:
            return await self._execute(request, decision)
        working = self._working[key] = asyncio.get_running_loop().create_future()
        kept: Cached | None = None
        try:
            response = await self._execute(request, decision)
            if response.status_code == 200 and request.scope.get(KEEP):
                errors = request.scope.get(OUTCOME) != 200
                name, outcome, denied = recorded()
                body = bytes(response.body)
                kept = Cached(body, request.scope.get(SSC_READS), name, outcome, denied, errors)
                self.services.responses.put(key, kept)
            return response
        finally:
            del self._working[key]
            working.set_result(kept)  # None: each waiter runs the operation itself

    async def _execute(self, request: Request, decision: Decision | None) -> Response:
        """By the operation's plan where it has one (`schema.direct`), else the ordinary way
        (also where the plan gives up)."""
        data: GraphQLRequestData = request.scope[REQUEST_DATA]
        schema, name = self.schema._schema, data.operation_name
        plan = direct.plan_for(schema, decision, name) if decision is not None else None
        if decision is not None and plan is not None:
            context = await self.get_context(request, None)
            result = await direct.answer(plan, context, decision, data.variables)
            if result is not None:
                payload = await self.process_result(request, result)
                return self.create_response(payload, await self.get_sub_response(request))
        return await self.run(request)

    def _decision(
        self,
        request: Request,
        data: GraphQLRequestData,
        selected: tuple[Prepared, OperationDefinitionNode] | None,
    ) -> Decision | None:
        """The policy's decision for a query (None for anything else), in execution's order:
        parsed, validated and its operation selected (`selected`, None for a document that
        does not parse or validate), then within the limits: a document the limits refuse
        gets none (execution refuses it with the limits' error), so no pass over a document
        runs before the limits have measured it."""
        if selected is None:
            return None
        found, operation = selected
        if operation.operation is not OperationType.QUERY:
            return None
        schema = self.schema._schema
        if check(self.limits, schema, found.document, data.operation_name, data.variables):
            return None
        principal: Principal = request.scope[PRINCIPAL]
        return decide(schema, found.document, data.operation_name, principal.party_category)

    async def _lookup(
        self,
        request: Request,
        data: GraphQLRequestData,
        found: Prepared | None,
        decision: Decision | None,
    ) -> Lookup | None:
        """The cache key of a query the policy decided may be cached (`_decision`), which
        needs the revision now."""
        if found is None or decision is None or not decision.versioned:
            return None
        principal: Principal = request.scope[PRINCIPAL]
        revision = await self.services.revision.current()
        own = None  # the caller's stored fleet's revision, if the answer reads the fleet
        if decision.fleet_scoped:
            scope = row_scope(principal, "Query", "myFleet")
            own = await fleet_revision(self.services.db_sessions, scope)
        return self.services.responses.lookup(
            revision, found.digest, data.operation_name, data.variables, principal, decision, own
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
        result.errors = [with_code(error) for error in result.errors or ()] or None
        payload = await super().process_result(request, result)
        if result.data is None and not any(error.path for error in result.errors or ()):
            del payload["data"]  # a request error: nothing ran, so there is no data at all
        request.scope[OUTCOME] = graphql_status(payload)
        request.scope[KEEP] = "data" in payload and all(
            code_of(error) in READABLE_CODES for error in result.errors or ()
        )
        return payload

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        return encoded_answer(response_data, sub_response)

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

    def decode_json(self, data: str | bytes) -> dict[str, Any]:
        """A request body is a GraphQL-over-HTTP request in JSON, or a refusal saying why not."""
        return check_request(decode(data))

    def parse_query_params(self, params: Any) -> dict[str, Any]:
        return query_parameters(params)

    async def parse_http_body(self, request: Any) -> GraphQLRequestData:
        """Parsed once a request (`_answer` keeps it), as `server.graphql_request` reads it."""
        kept = request.scope.get(REQUEST_DATA)
        if kept is not None:
            return kept
        if request.method == "GET":  # a HEAD too (`RequestAdapter`)
            values = self.parse_query_params(request.query_params)
        else:  # POST: `_answer` refused any other method
            content_type = media_type(request.scope[FIELDS].get(b"content-type"))
            if "application/json" not in content_type:
                raise unsupported_media_type(content_type)
            values = self.decode_json(await request.get_body())
        settings = self.services.settings
        return request_data(values, self.services.persisted_queries, settings.max_query_bytes)

    async def authenticate(self, request: Request) -> Principal:
        """A bearer token when there is one (exactly as ever), else the session cookie."""
        authorization = request.scope[FIELDS].get(b"authorization")
        if authorization is None and self.signin.has_cookie(request):
            return await self.signin.principal_for_request(request)
        token = bearer_token(authorization.decode("latin-1") if authorization else None)
        return await self.services.verifier.verify(token)

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        return Context(
            principal=request.scope.get(PRINCIPAL), services=self.services, request=request
        )

    async def on_ws_connect(self, context: Context) -> None:
        await sign_in_socket(context, self.signin, self.services.verifier)
