"""GraphiQL, served whole by this server: the page, its scripts and styles, and a strict CSP.

SSC and SECAS networks are often closed to the internet, so nothing of the page may come from a
CDN: the browser builds of GraphiQL, React and graphql-ws are vendored in `graphiql_assets/vendor`
(`tools/refresh_graphiql.py` refreshes them from the npm registry) and read into memory once.
The page holds no data and no secret, so it needs no sign-in; its script asks `/auth/session`
who is signed in and then talks to `/graphql` with the session cookie and the CSRF header.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Scope

ASSETS = Path(__file__).resolve().parent / "graphiql_assets"
VENDORED = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphql-ws.min.js",
    "graphiql.min.js",
    "graphiql.min.css",
    "THIRD-PARTY-LICENSES.txt",
)
OWN = ("cpl-graphiql.js", "cpl-graphiql.css")
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
PREFIX = "/graphiql/"

# Only this origin. GraphiQL's fonts are data: URIs inside its style sheet; its editors set
# element styles from script (allowed), and React needs no eval.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "font-src 'self' data:",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    integrity: str  # Subresource Integrity value, also the ETag


def _integrity(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def load_assets() -> dict[str, Asset]:
    found = [(name, ASSETS / "vendor" / name) for name in VENDORED]
    found += [(name, ASSETS / name) for name in OWN]
    assets = {}
    for name, path in found:
        data = path.read_bytes()
        assets[name] = Asset(data, CONTENT_TYPES[path.suffix], _integrity(data))
    return assets


def vendored_manifest() -> dict[str, dict[str, str]]:
    """What `tools/refresh_graphiql.py` recorded: each vendored file's package and SHA-384."""
    return json.loads((ASSETS / "vendor" / "manifest.json").read_text(encoding="utf-8"))


class GraphiQLPage:
    """The GraphiQL page and its files, from memory."""

    def __init__(self) -> None:
        self.assets = load_assets()
        self.html = self._render().encode("utf-8")

    def _tag(self, name: str) -> str:
        asset = self.assets[name]
        src = html.escape(PREFIX + name)
        if name.endswith(".css"):
            return f'<link rel="stylesheet" href="{src}" integrity="{asset.integrity}">'
        return f'<script src="{src}" integrity="{asset.integrity}"></script>'

    def _render(self) -> str:
        styles = "\n    ".join(self._tag(n) for n in ("graphiql.min.css", "cpl-graphiql.css"))
        scripts = "\n    ".join(
            self._tag(n)
            for n in (
                "react.production.min.js",
                "react-dom.production.min.js",
                "graphql-ws.min.js",
                "graphiql.min.js",
                "cpl-graphiql.js",
            )
        )
        return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>cpl-pathways · GraphiQL</title>
    <link rel="icon" href="data:,">
    {styles}
  </head>
  <body>
    <header id="cpl-bar">
      <strong>cpl-pathways</strong>
      <span id="cpl-who">Checking your session…</span>
      <button id="cpl-logout" type="button" hidden>Sign out</button>
    </header>
    <main id="graphiql"></main>
    {scripts}
  </body>
</html>
"""

    def page(self) -> Response:
        return HTMLResponse(self.html, headers=PAGE_HEADERS)

    async def asset(self, request: Request) -> Response:
        asset = self.assets.get(request.path_params["name"])
        if asset is None:
            return Response("Not found.", status_code=404, media_type="text/plain")
        etag = f'"{asset.integrity}"'
        headers = {"ETag": etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.content_type, headers=headers)


def is_ide_page(scope: Scope) -> bool:
    """A browser's GET of GraphiQL: HTML accepted. Whatever the query string holds (GraphiQL
    keeps `?query=` in the address), the answer is the page, which executes nothing itself:
    its script runs the query with the session's cookie and CSRF header."""
    if scope["method"] not in ("GET", "HEAD"):
        return False
    accept = dict(scope["headers"]).get(b"accept", b"")
    return b"text/html" in accept
