"""Signing in from a browser: `/login`, `/auth/callback`, `/logout`, `/auth/session`.

The server is the OAuth client (the backend-for-frontend of "OAuth 2.0 for Browser-Based
Applications"): authlib's Starlette client runs the authorization code flow with PKCE, `state`
and `nonce`, and verifies the ID token against the provider's JWKS. Its SEC claims become the
principal through `principal_from_claims`, exactly as a bearer token's do, and the browser gets
only a server-side session's HttpOnly cookie. A sign-in in progress keeps its nonce and PKCE
verifier in the database; a second, signed cookie of ten minutes ties it to the browser that
began it (and says where to go next).

With the development issuer (no `CPL_JWKS_URL`, no `CPL_OIDC_ISSUER`) there is no provider:
`/login` offers the seven Party categories, so nobody pastes tokens by hand even locally.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import secrets
import warnings
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from authlib.deprecate import AuthlibDeprecationWarning
from authlib.integrations.base_client import OAuthError
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route, request_response
from starlette.types import ASGIApp
from starlette.websockets import WebSocket, WebSocketState

from config.settings import Settings
from permissions.auth_errors import AuthenticationError
from permissions.claims import principal_from_claims
from permissions.keys import ALLOWED_ALGORITHMS
from permissions.principal import PartyCategory, Principal
from permissions.signin_sessions import (
    FLOW_SECONDS,
    SessionCookie,
    SignedIn,
    SignInFlows,
    SignInSessions,
    csrf_matches,
)
from server.body_limit import read_at_most
from server.serving_host import served_here

logger = logging.getLogger("cpl_pathways")

CSRF_HEADER = "x-cpl-csrf"
DEFAULT_NEXT = "/graphql"
SIGN_IN_FORM_BYTES = 4_096  # a category and a path: anything longer is not the form
SESSION_CHECK_SECONDS = 5.0  # how soon an open WebSocket notices its session has ended
DEV_MANUFACTURER = "0A1B"  # the demo data's first manufacturer
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src data:; form-action 'self'; "
    "frame-ancestors 'none'"
)


class CsrfRefusedError(Exception):
    """A cookie-authenticated request without the session's CSRF token."""


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this server only, never another site."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return DEFAULT_NEXT
    return value


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/graphiql/cpl-graphiql.css">
</head><body><main class="cpl-page"><h1>{html.escape(title)}</h1>{body}</main></body></html>
"""
    headers = {"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"}
    return HTMLResponse(document, status_code=status, headers=headers)


def _refused(title: str, reason: str, status: int) -> HTMLResponse:
    return _page(
        title,
        f'<p>{html.escape(reason)}</p><p><a href="/login">Try again</a></p>',
        status,
    )


class SignIn:
    """The sign-in routes and how a request or a WebSocket is authenticated by its cookie."""

    def __init__(
        self, settings: Settings, signin_sessions: SignInSessions, flows: SignInFlows
    ) -> None:
        self.settings = settings
        self.signin_sessions = signin_sessions
        self.client: Any = None  # authlib's StarletteOAuth2App, with a provider configured
        if settings.oidc_issuer:
            with warnings.catch_warnings():
                # authlib 1.9 prefers the `httpx2` package and warns on import that it falls
                # back to httpx, which this project uses and which works: noise on stdout.
                warnings.simplefilter("ignore", AuthlibDeprecationWarning)
                from authlib.integrations.starlette_client import OAuth
            self.client = OAuth(cache=flows).register(
                "cpl",
                client_id=settings.oidc_client_id,
                client_secret=settings.oidc_client_secret,
                server_metadata_url=settings.oidc_issuer.rstrip("/")
                + "/.well-known/openid-configuration",
                client_kwargs={"scope": "openid", "code_challenge_method": "S256"},
            )
        self._watchers: set[asyncio.Task[None]] = set()  # sockets signed in by cookie
        self.flow_secret = settings.session_secret or secrets.token_urlsafe(32)
        if self.client is not None and not settings.session_secret:
            logger.warning(
                "CPL_SESSION_SECRET is not set: a sign-in begun on one process cannot finish "
                "on another"
            )

    # --- where this server is, and its cookies ---------------------------------------------

    def site_url(self, connection: HTTPConnection) -> str:
        """This server's address as a browser reaches it: CPL_PUBLIC_URL, else the request's."""
        if self.settings.public_url:
            return self.settings.public_url
        scheme = "https" if connection.url.scheme in ("https", "wss") else "http"
        return f"{scheme}://{connection.headers.get('host', 'localhost')}"

    def cookie(self, connection: HTTPConnection) -> SessionCookie:
        return SessionCookie.for_site(self.site_url(connection))

    def same_origin(self, connection: HTTPConnection) -> bool:
        """Whether the request's `Origin` is this server (a WebSocket, a sign-in form)."""
        origin = connection.headers.get("origin")
        site = urlsplit(self.site_url(connection))
        return origin is not None and origin.lower() == f"{site.scheme}://{site.netloc}".lower()

    def _set_cookie(self, response: Response, connection: HTTPConnection, value: str) -> None:
        cookie = self.cookie(connection)
        response.set_cookie(
            cookie.name,
            value,
            max_age=self.settings.session_ttl_seconds,
            path="/",
            secure=cookie.secure,
            httponly=True,
            samesite="lax",
        )

    async def signed_in(self, connection: HTTPConnection) -> SignedIn | None:
        return await self.signin_sessions.find(connection.cookies.get(self.cookie(connection).name))

    # --- authentication of API calls -------------------------------------------------------

    def has_cookie(self, connection: HTTPConnection) -> bool:
        return self.cookie(connection).name in connection.cookies

    async def principal_for_request(self, request: Request) -> Principal:
        """The principal of a cookie-authenticated request, which must carry the CSRF header."""
        signed_in = await self.signed_in(request)
        if signed_in is None:
            raise AuthenticationError("session ended or expired")
        if not csrf_matches(signed_in, request.headers.get(CSRF_HEADER)):
            raise CsrfRefusedError()
        return signed_in.principal

    async def principal_for_socket(
        self, connection: HTTPConnection, csrf_token: object
    ) -> Principal:
        """A WebSocket signed in by its cookie: from this server's own pages, with the token.
        The socket lives no longer than the session: it is closed (4403) once logout or expiry
        ends it, whichever process served the logout."""
        if not self.same_origin(connection):
            raise AuthenticationError("websocket from another origin")
        signed_in = await self.signed_in(connection)
        if signed_in is None:
            raise AuthenticationError("session ended or expired")
        if not csrf_matches(signed_in, csrf_token):
            raise AuthenticationError("missing csrfToken")
        if isinstance(connection, WebSocket):
            task = asyncio.get_running_loop().create_task(self._close_when_ended(connection))
            self._watchers.add(task)
            task.add_done_callback(self._watchers.discard)
        return signed_in.principal

    async def _close_when_ended(self, websocket: WebSocket) -> None:
        def open_() -> bool:
            connected = WebSocketState.CONNECTED
            return websocket.client_state is connected and websocket.application_state is connected

        while open_():
            await asyncio.sleep(SESSION_CHECK_SECONDS)
            try:
                live = await self.signed_in(websocket) is not None
            except Exception:  # the database unreachable for a moment: ask again later
                logger.exception("checking a websocket's session failed")
                continue
            if not live and open_():
                logger.info("closing websocket: its session ended")
                with contextlib.suppress(RuntimeError):  # closed meanwhile
                    await websocket.close(code=4403, reason="Session ended")
                return

    # --- the routes ------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/login", self._with_flow(self.login), methods=["GET", "POST"]),
            Route("/auth/callback", self._with_flow(self.callback), methods=["GET"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/auth/session", self.session, methods=["GET"]),
        ]

    def _with_flow(self, endpoint: Callable[[Request], Awaitable[Response]]) -> ASGIApp:
        """The endpoint, with the signed, short-lived cookie that ties one sign-in to the
        browser that began it, from /login to its callback: a marker per state and where to go
        next; the nonce and PKCE verifier stay server-side (`SignInFlows`).

        SameSite=Lax: the provider sends the browser back with a cross-site top-level GET, which
        a Strict cookie would miss. Only a provider's sign-in writes it: public_url is set."""
        cookie = SessionCookie.for_site(self.settings.public_url or "http://127.0.0.1", "signin")
        return SessionMiddleware(
            request_response(endpoint),
            secret_key=self.flow_secret,
            session_cookie=cookie.name,
            max_age=FLOW_SECONDS,
            path="/",
            same_site="lax",
            https_only=cookie.secure,
        )

    async def login(self, request: Request) -> Response:
        next_path = safe_next(request.query_params.get("next"))
        if self.client is not None:
            if request.method != "GET":
                return _refused("Sign-in", "Sign in with GET /login.", 405)
            request.session.clear()
            request.session["cpl.next"] = next_path
            public_url = self.settings.public_url
            assert public_url is not None  # Settings.refusal: a provider needs CPL_PUBLIC_URL
            try:
                return await self.client.authorize_redirect(
                    request, redirect_uri=public_url + "/auth/callback"
                )
            except Exception as error:  # an unreachable or misbehaving provider
                logger.warning("identity provider unavailable: %s", type(error).__name__)
                return _refused("Sign-in unavailable", "The identity provider did not answer.", 503)
        if not self.settings.dev_sign_in:
            return _refused(
                "Sign-in is not configured",
                "Set CPL_OIDC_ISSUER, CPL_OIDC_CLIENT_ID and CPL_PUBLIC_URL, or send a bearer"
                " token.",
                404,
            )
        if not served_here(request, self.settings.public_url):
            logger.info("development sign-in refused: Host is not this server")
            return _refused(
                "Sign-in refused", "This server is not reached by that name (Host).", 400
            )
        if request.method == "POST":
            return await self._dev_sign_in(request)
        return _page("Sign in (development issuer)", _dev_picker(next_path))

    async def _dev_sign_in(self, request: Request) -> Response:
        if not self.same_origin(request):
            return _refused("Sign-in refused", "The form was not sent from this server.", 403)
        # A urlencoded form of two fields: parsed here rather than with python-multipart.
        body = await read_at_most(request, SIGN_IN_FORM_BYTES)
        form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
        category = form.get("category", [""])[0]
        next_path = safe_next(form.get("next", [""])[0])
        claims = {
            "sub": f"dev-{category.lower()}",
            "party_id": f"DEV-{category}",
            "party_category": category,
            "manufacturer_id": DEV_MANUFACTURER if category == "MANUFACTURER" else None,
        }
        return await self._start_session(request, claims, next_path)

    async def callback(self, request: Request) -> Response:
        if self.client is None:
            return _refused("Sign-in is not configured", "No identity provider is set.", 404)
        next_path = safe_next(request.session.get("cpl.next"))
        try:
            await self._check_provider()
            token = await self.client.authorize_access_token(request)
        except Exception as error:  # a bad state, code, ID token or an unreachable provider
            code = error.error if isinstance(error, OAuthError) else type(error).__name__
            logger.info("sign-in refused: %s", code)
            return _refused("Sign-in failed", f"The sign-in did not complete ({code}).", 400)
        finally:
            request.session.clear()
        claims = token.get("userinfo")  # set only when the ID token was verified
        if not claims:
            return _refused("Sign-in failed", "The provider sent no ID token.", 400)
        return await self._start_session(request, dict(claims), next_path)

    async def _check_provider(self) -> None:
        """The discovered issuer must be the configured one, and ID tokens signed as tokens are
        (ES256 or RS256), whatever else the provider advertises."""
        assert self.client is not None
        metadata = await self.client.load_server_metadata()
        if metadata.get("issuer") != self.settings.oidc_issuer:
            raise OAuthError(error="issuer_mismatch")
        advertised = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        pinned = [alg for alg in advertised if alg in ALLOWED_ALGORITHMS]
        if not pinned:
            raise OAuthError(error="unsupported_id_token_algorithm")
        metadata["id_token_signing_alg_values_supported"] = pinned

    async def _start_session(self, request: Request, claims: dict, next_path: str) -> Response:
        try:
            principal = principal_from_claims(claims)
        except AuthenticationError as error:
            logger.info("sign-in refused: %s", error.reason)
            return _refused("Sign-in refused", f"Your account's SEC claims: {error.reason}.", 403)
        cookie_value, _ = await self.signin_sessions.create(principal)
        logger.info("signed in: %s as %s", principal.sub, principal.party_category.value)
        response = RedirectResponse(next_path, status_code=303)
        self._set_cookie(response, request, cookie_value)
        return response

    async def logout(self, request: Request) -> Response:
        cookie = self.cookie(request)
        value = request.cookies.get(cookie.name)
        signed_in = await self.signin_sessions.find(value)
        if signed_in is not None and not csrf_matches(signed_in, request.headers.get(CSRF_HEADER)):
            return csrf_refused()
        await self.signin_sessions.end(value)
        response = Response(status_code=204, headers={"Cache-Control": "no-store"})
        response.delete_cookie(
            cookie.name, path="/", secure=cookie.secure, httponly=True, samesite="lax"
        )
        return response

    async def session(self, request: Request) -> Response:
        signed_in = await self.signed_in(request)
        headers = {"Cache-Control": "no-store"}
        if signed_in is None:
            body = {
                "errors": [{"message": "Not signed in.", "extensions": {"code": "UNAUTHENTICATED"}}]
            }
            return JSONResponse(body, status_code=401, headers=headers)
        principal = signed_in.principal
        return JSONResponse(
            {
                "partyId": principal.party_id,
                "partyCategory": principal.party_category.value,
                "manufacturerIdentifier": principal.manufacturer_id,
                "csrfToken": signed_in.csrf_token,
                "expiresAt": signed_in.expires_at.isoformat(),
            },
            headers=headers,
        )


def csrf_refused() -> JSONResponse:
    message = "Forbidden: a request signed in by cookie must send the X-CPL-CSRF header."
    body = {"errors": [{"message": message, "extensions": {"code": "FORBIDDEN"}}]}
    return JSONResponse(body, status_code=403)


def _dev_picker(next_path: str) -> str:
    buttons = "\n".join(
        f'<button type="submit" name="category" value="{c.value}">{c.value}</button>'
        for c in PartyCategory
    )
    return f"""<p>No identity provider is configured, so this server signs you in itself.
Pick the Party category to explore as. SSC sees the Zigbee stack version and chipset vendor;
everyone else reads null there. (A MANUFACTURER signs in as {DEV_MANUFACTURER}.)</p>
<form method="post" action="/login" class="cpl-categories">
<input type="hidden" name="next" value="{html.escape(next_path)}">
{buttons}
</form>"""
