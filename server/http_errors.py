"""The JSON answers of the HTTP layer, shaped like GraphQL errors so clients read one format."""

from __future__ import annotations

import logging

from starlette.responses import JSONResponse

from permissions.auth_errors import AuthenticationError, KeysUnavailableError
from permissions.principal import Principal
from schema.errors import DATABASE_UNAVAILABLE, RATE_LIMITED, SERVICE_UNAVAILABLE
from schema.rate_limit import RateLimit, refused

logger = logging.getLogger("cpl_pathways")
IDP_RETRY_AFTER_SECONDS = 30


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


def not_authenticated(error: AuthenticationError, what: str = "request") -> JSONResponse:
    """401 for a bad token; 503 with Retry-After when the identity provider's keys cannot be
    had, since the caller's token may well be fine."""
    if isinstance(error, KeysUnavailableError):
        logger.warning("identity provider unavailable: %s", error.reason)
        return error_response(
            "The identity provider's signing keys are unavailable; try again shortly.",
            "SERVICE_UNAVAILABLE",
            503,
            **{"Retry-After": str(IDP_RETRY_AFTER_SECONDS)},
        )
    logger.info("rejected %s: %s", what, error.reason)
    return unauthenticated(error.reason)


def bad_request(reason: str, status: int) -> JSONResponse:
    """A request the server will not run, as Strawberry's `HTTPException` describes it."""
    code = "PAYLOAD_TOO_LARGE" if status == 413 else "BAD_REQUEST"
    return error_response(reason, code, status)


def too_large(limit: int) -> JSONResponse:
    return error_response(f"Request body over {limit} bytes.", "PAYLOAD_TOO_LARGE", 413)


def request_timeout(seconds: float) -> JSONResponse:
    """A body that did not arrive in time (`server.body_limit`): send it again, faster."""
    return error_response(
        f"The request body did not arrive within {seconds:g} s.", "REQUEST_TIMEOUT", 408
    )


DATABASE_RETRY_AFTER_SECONDS = 5


def database_unavailable() -> JSONResponse:
    """An outage of the database, the client's request being fine: 503, try again shortly."""
    return error_response(
        DATABASE_UNAVAILABLE,
        SERVICE_UNAVAILABLE,
        503,
        **{"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


def over_budget(rate_limit: RateLimit, principal: Principal) -> JSONResponse | None:
    """The 429 for an operation over `principal`'s budget, or None: go ahead."""
    wait = rate_limit.wait(principal)
    return rate_limited(wait) if wait else None


def rate_limited(wait: float) -> JSONResponse:
    """429: over the budget; `Retry-After` in whole seconds, at least 1."""
    message, seconds = refused(wait)
    return error_response(message, RATE_LIMITED, 429, **{"Retry-After": str(seconds)})
