"""A WebSocket's sign-in: by its token, or by the session cookie with its CSRF token; and its
end when the token that opened it expires."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError

from permissions.auth_errors import AuthenticationError
from permissions.tokens import TokenVerifier, bearer_token
from schema.context import Context
from server.signin import SignIn

logger = logging.getLogger("cpl_pathways")
EXPIRY = "cpl.expiry"  # the socket's scope: its expiry's timer, cancelled when it closes


async def sign_in_socket(context: Context, signin: SignIn, verifier: TokenVerifier) -> None:
    """A socket signs in by its token (closed with 4403 when the token expires) or by the
    session cookie with its CSRF token (closed when the session ends)."""
    params = getattr(context, "connection_params", None) or {}
    header = params.get("Authorization") or params.get("authorization")
    socket = context.request
    assert socket is not None  # get_context gave the context its WebSocket
    try:
        if header is None and signin.has_cookie(socket):
            csrf = params.get("csrfToken")
            context.sign_in(await signin.principal_for_socket(socket, csrf))
            return
        context.sign_in(await verifier.verify(bearer_token(header)))
    except AuthenticationError as error:
        logger.info("rejected websocket: %s", error.reason)
        raise ConnectionRejectionError() from None
    websocket = context.request
    principal = context.principal
    if isinstance(websocket, WebSocket) and principal and principal.expires_at is not None:
        websocket.scope[EXPIRY] = close_when_expired(websocket, principal.expires_at)


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
