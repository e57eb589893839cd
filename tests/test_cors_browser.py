"""CORS from a real browser: a page served on another loopback port calls the API with a token.

Chromium is Debian's (`make browser`: apt-get install chromium, npm install playwright-core into
tests/browser). Without them the test is skipped with the reason, except under CI=true, where
it must run.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from server.app import create_app, create_services
from tests.live import eventually, free_port, serve

BROWSER = Path(__file__).resolve().parent / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
MISSING = [
    what
    for what, present in [
        ("Debian's chromium at " + CHROMIUM, Path(CHROMIUM).exists()),
        ("node", shutil.which("node") is not None),
        (
            "playwright-core in tests/browser",
            (BROWSER / "node_modules" / "playwright-core").is_dir(),
        ),
    ]
    if not present
]
if MISSING and os.environ.get("CI") == "true":
    raise RuntimeError(f"CI=true: the browser test needs {', '.join(MISSING)} (make browser)")
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"no {', '.join(MISSING)}: run `make browser` to install them"
)

PAGE = """<!doctype html><title>Supplier front-end</title><script>
fetch("%(api)s/graphql", {
  method: "POST",
  headers: {"Authorization": "Bearer %(token)s", "Content-Type": "application/json",
            "X-Request-ID": "front-end-1"},
  body: JSON.stringify({query: "{ viewer { partyCategory } }"}),
}).then(async (response) => {
  window.cplResult = {status: response.status, body: await response.json(),
                      requestId: response.headers.get("X-Request-ID")};
}).catch((error) => { window.cplResult = {error: String(error)}; });
</script>"""


async def open_in_chromium(url: str) -> dict:
    process = await asyncio.create_subprocess_exec(
        "node", "open_page.mjs", url, cwd=BROWSER, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    return json.loads(stdout)


async def test_a_page_on_a_listed_origin_queries_the_api_from_a_real_browser(settings, token):
    listed, unlisted = free_port(), free_port()
    own = replace(settings, cors_origins=(f"http://127.0.0.1:{listed}",))
    services = create_services(own)
    try:
        async with serve(create_app(own, services)) as api:
            html = PAGE % {"api": f"http://{api}", "token": token("SMALL_SUPPLIER")}
            pages = Starlette(routes=[Route("/", lambda _request: HTMLResponse(html))])
            async with serve(pages, listed), serve(pages, unlisted):
                allowed = await open_in_chromium(f"http://127.0.0.1:{listed}/")
                refused = await open_in_chromium(f"http://127.0.0.1:{unlisted}/")
    finally:
        await services.engine.dispose()
    assert allowed == {
        "status": 200,
        "body": {"data": {"viewer": {"partyCategory": "SMALL_SUPPLIER"}}},
        "requestId": "front-end-1",
    }
    assert refused == {"error": "TypeError: Failed to fetch"}  # the browser withholds it


# A page that follows the CPL over the API's WebSocket (graphql-transport-ws, by hand: what any
# client library sends), signed in by its token, and leaves the first event or the close code.
SUBSCRIBING_PAGE = """<!doctype html><title>Supplier front-end</title><script>
const socket = new WebSocket("ws://%(api)s/graphql", "graphql-transport-ws");
const send = (message) => socket.send(JSON.stringify(message));
socket.onopen = () => send({type: "connection_init",
                            payload: {Authorization: "Bearer %(token)s"}});
socket.onmessage = (message) => {
  const data = JSON.parse(message.data);
  if (data.type === "connection_ack") {
    send({id: "1", type: "subscribe",
          payload: {query: "subscription { cplChanges { kind device { id } } }"}});
  } else if (data.type === "ping") {
    send({type: "pong"});
  } else {
    window.cplResult = {[data.type]: data.payload ?? null};
    socket.close(1000);
  }
};
socket.onclose = (event) => { window.cplResult ??= {closed: event.code}; };
</script>"""
PUBLISH = """mutation($input: PublishUpgradePathwayInput!) { publishUpgradePathway(input: $input) {
  __typename } }"""


async def test_a_page_on_a_listed_origin_subscribes_and_an_unlisted_one_is_refused(
    settings, token, own_database, caplog
):
    """Browsers apply no CORS to a WebSocket: the server's origin check is the only gate, and
    it follows CPL_CORS_ORIGINS. The two pages are on one host (127.0.0.1) and differ by port
    alone, so they are two origins (though a browser would share cookies between them)."""
    listed, unlisted = free_port(), free_port()
    own = replace(settings, database_url=own_database, cors_origins=(f"http://127.0.0.1:{listed}",))
    services = create_services(own)
    try:
        async with serve(create_app(own, services)) as api:
            if hasattr(services.bus, "listening"):
                await asyncio.wait_for(services.bus.listening.wait(), 10)
            html = SUBSCRIBING_PAGE % {"api": api, "token": token("SMALL_SUPPLIER")}
            pages = Starlette(routes=[Route("/", lambda _request: HTMLResponse(html))])
            async with serve(pages, listed), serve(pages, unlisted):
                refused = await open_in_chromium(f"http://127.0.0.1:{unlisted}/")
                assert services.bus.subscribers == 0
                following = asyncio.create_task(open_in_chromium(f"http://127.0.0.1:{listed}/"))
                try:
                    await eventually(lambda: services.bus.subscribers == 1, "the page subscribed")
                except AssertionError:
                    following.cancel()  # its page gives up by itself (open_page.mjs)
                    raise
                async with httpx.AsyncClient(base_url=f"http://{api}") as client:
                    published = await client.post(
                        "/graphql",
                        json={
                            "query": PUBLISH,
                            "variables": {
                                "input": {
                                    "deviceId": "device:1",
                                    "fromVersion": "76000100",
                                    "toVersion": "6D000200",
                                }
                            },
                        },
                        headers={"Authorization": f"Bearer {token('MANUFACTURER')}"},
                    )
                assert published.json() == {
                    "data": {
                        "publishUpgradePathway": {"__typename": "PublishUpgradePathwaySuccess"}
                    }
                }
                allowed = await following
    finally:
        await services.engine.dispose()
    assert allowed == {
        "next": {
            "data": {"cplChanges": {"kind": "PATHWAY_PUBLISHED", "device": {"id": "device:1"}}}
        }
    }
    assert refused == {"closed": 1006}  # the handshake answered 403: the page sees no more
    assert f"Rejected WebSocket connection from origin 'http://127.0.0.1:{unlisted}'" in caplog.text
