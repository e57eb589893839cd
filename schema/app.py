"""The ASGI application: HTTP → principal → Strawberry context → resolvers → models.

Authentication happens here, before GraphQL runs, so that a request without a valid token gets
HTTP 401 and never reaches a resolver. A request carries a bearer token, or the session cookie
of a browser signed in at /login together with its CSRF header (schema/auth_routes.py). The
GraphiQL page itself (schema/graphiql.py) holds no data and needs neither.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import strawberry
from cross_web import HTTPException  # what Strawberry's views raise for a malformed request
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError

from models.database import create_engine, session_factory
from permissions.principal import Principal
from permissions.sessions import FlowStore, SessionStore
from permissions.tokens import AuthenticationError, bearer_token, verifier_for
from resolvers.bus import change_bus
from resolvers.planning import GraphCache
from resolvers.ssc_access import AccessLog
from resolvers.webhooks import Dispatcher
from schema.auth_routes import CsrfRefusedError, SignIn, csrf_refused
from schema.build import build_schema
from schema.context import Context, Services
from schema.graphiql import GraphiQLPage
from settings import Settings, load_settings

logger = logging.getLogger("cpl_pathways")
PRINCIPAL = "cpl.principal"


def error_response(message: str, code: str, status: int, **headers: str) -> JSONResponse:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=status, headers=headers or None)


def unauthenticated(reason: str) -> JSONResponse:
    return error_response(
        f"Unauthenticated: {reason}.",
        "UNAUTHENTICATED",
        401,
        **{"WWW-Authenticate": 'Bearer realm="cpl-pathways"'},
    )


def bad_request(reason: str, status: int) -> JSONResponse:
    return error_response(reason, "BAD_REQUEST", status)


class GraphQLApp(GraphQL):
    """Strawberry's ASGI view, with the caller authenticated before anything executes."""

    def __init__(
        self, schema: strawberry.Schema, services: Services, signin: SignIn, page: GraphiQLPage
    ) -> None:
        super().__init__(schema, graphql_ide=None, keep_alive=True, keep_alive_interval=15)
        self.services = services
        self.signin = signin
        self.page = page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _is_ide_page(scope):
            await self.page.page()(scope, receive, send)
            return
        if scope["type"] == "http":
            request = Request(scope, receive=receive)
            try:
                scope[PRINCIPAL] = await self.authenticate(request)
            except AuthenticationError as error:
                logger.info("rejected request: %s", error.reason)
                await unauthenticated(error.reason)(scope, receive, send)
                return
            except CsrfRefusedError:
                logger.info("rejected request: cookie without the CSRF header")
                await csrf_refused()(scope, receive, send)
                return
            try:
                response = await self.run(request)
            except HTTPException as error:
                # Strawberry answers malformed requests in plain text; clients expect JSON.
                response = bad_request(error.reason, error.status_code)
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

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
        params = getattr(context, "connection_params", None) or {}
        header = params.get("Authorization") or params.get("authorization")
        try:
            if header is None and self.signin.has_cookie(context.request):
                csrf = params.get("csrfToken")
                context.principal = await self.signin.principal_for_socket(context.request, csrf)
                return
            context.principal = await self.services.verifier.verify(bearer_token(header))
        except AuthenticationError as error:
            logger.info("rejected websocket: %s", error.reason)
            raise ConnectionRejectionError() from None


def _is_ide_page(scope: Scope) -> bool:
    """A browser's GET of GraphiQL: HTML accepted. Whatever the query string holds (GraphiQL
    keeps `?query=` in the address), the answer is the page, which executes nothing itself:
    its script runs the query with the session's cookie and CSRF header."""
    if scope["method"] != "GET":
        return False
    accept = dict(scope["headers"]).get(b"accept", b"")
    return b"text/html" in accept


class BodyLimit:
    """Refuse request bodies over the configured size with 413, before anything parses them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _too_large(self.max_bytes)(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await _too_large(self.max_bytes)(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


def _too_large(limit: int) -> JSONResponse:
    return error_response(f"Request body over {limit} bytes.", "PAYLOAD_TOO_LARGE", 413)


async def healthz(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        async with services.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        logger.exception("health check failed")
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


def create_services(settings: Settings) -> Services:
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    return Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        verifier=verifier_for(settings),
        bus=change_bus(settings.database_url, sessions),
        dispatcher=Dispatcher(sessions, settings),
        graphs=GraphCache(),
        signins=SessionStore(sessions, settings.session_ttl_seconds),
        access_log=AccessLog(sessions),
    )


def create_app(settings: Settings | None = None, services: Services | None = None) -> Starlette:
    settings = settings or load_settings()
    services = services or create_services(settings)
    signin = SignIn(settings, services.signins, FlowStore(services.sessions))
    page = GraphiQLPage()
    graphql = GraphQLApp(build_schema(settings), services, signin, page)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await services.bus.start()
        services.dispatcher.start()
        try:
            yield
        finally:
            await services.dispatcher.stop()
            await services.access_log.drain()
            await services.bus.stop()
            await services.engine.dispose()

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/graphiql/{name}", page.asset, methods=["GET"]),
            *signin.routes(),
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),
        ],
        middleware=[Middleware(BodyLimit, max_bytes=settings.max_body_bytes)],
        lifespan=lifespan,
    )
    app.state.services = services
    return app
