"""Each request observed: its id, its one access line and its metrics.

This replaces uvicorn's access log, which writes the whole request line: a `GET /graphql?...`
carries the query document and its values (an SSC analyst's filter on a chipset vendor is an
SSC-only value) and, from a careless client, `access_token=<JWT>`. The access line here holds
the method, the path without its query string, the status, the duration, the caller's Party
category and the operation's type and name (a GraphQL Name from the parsed document, never
a value, told by `schema.operation_record`), whether the answer came from the response cache
(`cache`: `hit` or `miss`, in the JSON line), and nothing else from the request.
"""

from __future__ import annotations

import logging
import os
import re
import time
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config import metrics, tracing
from config.logs import EXCHANGE, Exchange

access_logger = logging.getLogger("cpl_pathways.access")
REQUEST_ID_HEADER = "x-request-id"
PRINCIPAL = "cpl.principal"  # where the app puts the verified caller in the ASGI scope
# Well-formed: short, and of characters that cannot smuggle anything into a log line. 64 is
# also far too short for a JWT, so a token sent as a request id is never written down.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
ROUTES = frozenset({"/graphql", "/livez", "/readyz", "/healthz", "/metrics"})
_MAX_PATH = 64


def request_id(scope: Scope) -> str:
    """The caller's `X-Request-ID` if well-formed, else a new one: 32 random hex digits (as
    a `uuid4().hex` is, without its dearer object)."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(text):
                return text
            break
    return os.urandom(16).hex()


class RequestLog:
    """Outermost middleware: sets the request id, returns it, writes the access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        exchange = Exchange(request_id(scope))
        token = EXCHANGE.set(exchange)
        header = (REQUEST_ID_HEADER.encode(), exchange.request_id.encode())
        status = 101 if scope["type"] == "websocket" else 500
        method, route, path = _where(scope)
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            elif message["type"] == "websocket.accept":
                message["headers"] = [*message.get("headers", ()), header]
            elif message["type"] == "websocket.close" and status == 101:
                status = 403  # closed before it was accepted
            await send(message)

        with tracing.span(f"{method} {route}", server=True) as span:
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                seconds = time.perf_counter() - started
                principal = scope.get(PRINCIPAL)  # also for answers served from the cache
                if principal is not None and exchange.party_category is None:
                    exchange.party_category = principal.party_category.value
                _account(method, route, path, exchange, status, seconds)
                if span is not None:
                    span.set_attributes(_span_attributes(method, path, status, exchange))
                EXCHANGE.reset(token)


def _where(scope: Scope) -> tuple[str, str, str]:
    """Method, route (a known path, else `other`) and the path as it may be written down: an
    unknown path is the client's text, so it is cut short (no token fits in it) and
    percent-encoded again (the server decoded `%0a`: written as it came, it would start a
    forged line of the text log)."""
    method = scope.get("method", "WEBSOCKET")
    route = scope["path"] if scope["path"] in ROUTES else "other"
    if route != "other":
        return method, route, route
    return method, route, quote(scope["path"][:_MAX_PATH], safe="/:@!$&'()*+,;=-._~")


def _span_attributes(method: str, path: str, status: int, exchange: Exchange) -> dict:
    attributes = {
        "http.request.method": method,
        "url.path": path,
        "http.response.status_code": status,
        "cpl.request_id": exchange.request_id,
        "cpl.party_category": exchange.party_category,
        "graphql.operation.type": exchange.operation_type,
        "graphql.operation.name": exchange.operation_name,
    }
    return {key: value for key, value in attributes.items() if value is not None}


def _account(
    method: str, route: str, path: str, exchange: Exchange, status: int, seconds: float
) -> None:
    metrics.REQUESTS_BY[route, method, str(status)].inc()
    metrics.REQUEST_SECONDS_BY[(route,)].observe(seconds)
    if route in ("/livez", "/readyz", "/healthz", "/metrics") and status < 400:
        return  # probes and scrapes every few seconds would drown the requests that matter
    category = exchange.party_category or "-"
    operation = " ".join(filter(None, [exchange.operation_type, exchange.operation_name]))
    access_logger.info(
        "%s %s %s %.1f ms %s %s",
        method,
        path,
        status,
        seconds * 1000,
        category,
        operation or "-",
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "party_category": exchange.party_category,
            "operation_type": exchange.operation_type,
            "operation_name": exchange.operation_name,
            "cache": exchange.cache,
        },
    )
