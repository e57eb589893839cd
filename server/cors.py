"""CORS for browser front-ends: the origins in `CPL_CORS_ORIGINS` may call the API."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from config.settings import Settings
from server.requests import REQUEST_ID_HEADER

# What browsers may send cross-origin: the token, JSON, a request id, a cached answer's ETag,
# and what Apollo-style clients add (client name and version, preflight hints).
CORS_HEADERS = [
    "Authorization",
    "Content-Type",
    "X-Request-ID",
    "If-None-Match",
    "Apollo-Require-Preflight",
    "Apollographql-Client-Name",
    "Apollographql-Client-Version",
    "X-Apollo-Operation-Name",
]


def cors(settings: Settings) -> list[Middleware]:
    """Browser front-ends on the listed origins may call the API. Preflights are answered here,
    before authentication (a browser never sends a token with one). No credentials mode: the
    token travels in `Authorization`, never in a cookie, so no origin gets a caller's
    ambient credentials."""
    if not settings.cors_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=CORS_HEADERS,
            expose_headers=[REQUEST_ID_HEADER, "ETag"],
            allow_credentials=False,
            max_age=600,
        )
    ]
