"""Sign-in through a real OIDC provider over HTTP: code flow with PKCE, state and nonce, the ID
token verified, the SEC claims checked exactly as a token's, and a session at the end."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from server.app import create_app, create_services
from tests.live import free_port, serve
from tests.oidc_provider import Provider, oidc_provider

QUERY = {
    "query": "{ viewer { partyId partyCategory } "
    "devices(first: 3) { nodes { zigbeeChipsetVendor } } }"
}


@dataclass
class Site:
    url: str
    provider: Provider
    services: object

    def browser(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10)

    @property
    def cookie(self) -> str:
        return f"cpl-pathways-{urlsplit(self.url).port}-session"


@pytest.fixture(scope="module")
async def site(settings) -> AsyncIterator[Site]:
    with oidc_provider() as provider:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        client_id, secret = await asyncio.to_thread(
            provider.register_client, f"{url}/auth/callback"
        )
        own = replace(
            settings,
            oidc_issuer=provider.issuer,
            oidc_client_id=client_id,
            oidc_client_secret=secret,
            public_url=url,
            session_secret="a test secret for the sign-in flow cookie",
        )
        services = create_services(own)
        async with serve(create_app(own, services), port=port):
            yield Site(url, provider, services)


async def sign_in(site: Site, browser: httpx.AsyncClient, sub: str) -> httpx.Response:
    """What a browser does: /login, the provider's form, back to /auth/callback."""
    start = await browser.get("/login")
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    assert authorize.startswith(site.provider.issuer)
    form = await browser.post(authorize, data={"sub": sub})
    assert form.status_code == 302, form.text
    callback = form.headers["location"]
    assert callback.startswith(f"{site.url}/auth/callback?")
    return await browser.get(callback)


async def test_an_ssc_analyst_signs_in_and_reads_the_ssc_only_values(site):
    await asyncio.to_thread(
        site.provider.set_user, "analyst-1", party_category="SSC", party_id="SSC-ANALYSTS"
    )
    async with site.browser() as browser:
        done = await sign_in(site, browser, "analyst-1")
        assert done.status_code == 303 and done.headers["location"] == "/graphql"
        assert "HttpOnly" in done.headers["set-cookie"]
        session = (await browser.get("/auth/session")).json()
        assert session["partyCategory"] == "SSC" and session["partyId"] == "SSC-ANALYSTS"
        body = (
            await browser.post("/graphql", json=QUERY, headers={"X-CPL-CSRF": session["csrfToken"]})
        ).json()
        assert body["data"]["viewer"] == {"partyId": "SSC-ANALYSTS", "partyCategory": "SSC"}
        nodes = body["data"]["devices"]["nodes"]
        assert len(nodes) == 3 and all(n["zigbeeChipsetVendor"] for n in nodes)


async def test_the_authorization_request_uses_pkce_state_and_nonce(site):
    async with site.browser() as browser:
        start = await browser.get("/login")
    params = parse_qs(urlsplit(start.headers["location"]).query)
    assert params["response_type"] == ["code"]
    assert params["code_challenge_method"] == ["S256"] and len(params["code_challenge"][0]) >= 43
    assert params["state"][0] and params["nonce"][0]
    assert params["redirect_uri"] == [f"{site.url}/auth/callback"]
    assert "openid" in params["scope"][0].split()


async def test_a_supplier_signs_in_and_reads_nulls(site):
    await asyncio.to_thread(
        site.provider.set_user, "buyer-1", party_category="SMALL_SUPPLIER", party_id="SUP-9"
    )
    async with site.browser() as browser:
        assert (await sign_in(site, browser, "buyer-1")).status_code == 303
        csrf = (await browser.get("/auth/session")).json()["csrfToken"]
        body = (await browser.post("/graphql", json=QUERY, headers={"X-CPL-CSRF": csrf})).json()
    assert body["data"]["viewer"]["partyCategory"] == "SMALL_SUPPLIER"
    nodes = body["data"]["devices"]["nodes"]
    assert len(nodes) == 3 and all(n["zigbeeChipsetVendor"] is None for n in nodes)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"party_category": "ADMIN", "party_id": "X"}, "invalid claims: party_category"),
        ({"party_id": "X"}, "missing party_category"),
        ({"party_category": "SSC"}, "missing party_id"),
        ({"party_category": "MANUFACTURER", "party_id": "M"}, "missing manufacturer_id"),
        (
            {"party_category": "MANUFACTURER", "party_id": "M", "manufacturer_id": "XYZ1"},
            "invalid claims: manufacturer_id",
        ),
    ],
)
async def test_bad_sec_claims_give_no_session(site, claims, reason):
    sub = f"bad-{abs(hash(reason))}"
    await asyncio.to_thread(site.provider.set_user, sub, **claims)
    async with site.browser() as browser:
        done = await sign_in(site, browser, sub)
        assert done.status_code == 403
        assert reason in done.text
        assert site.cookie not in browser.cookies
        assert (await browser.get("/auth/session")).status_code == 401


async def test_a_manufacturer_signs_in_with_its_identifier(site):
    await asyncio.to_thread(
        site.provider.set_user,
        "maker-1",
        party_category="MANUFACTURER",
        party_id="MAKER",
        manufacturer_id="0a1b",
    )
    async with site.browser() as browser:
        assert (await sign_in(site, browser, "maker-1")).status_code == 303
        assert (await browser.get("/auth/session")).json()["manufacturerIdentifier"] == "0A1B"


async def test_a_callback_with_another_state_or_replayed_is_refused(site):
    await asyncio.to_thread(site.provider.set_user, "analyst-2", party_category="SSC", party_id="S")
    async with site.browser() as browser:
        start = await browser.get("/login")
        form = await browser.post(start.headers["location"], data={"sub": "analyst-2"})
        callback = form.headers["location"]
        forged = callback.replace("state=", "state=x")
        assert (await browser.get(forged)).status_code == 400
    async with site.browser() as browser:
        start = await browser.get("/login")
        form = await browser.post(start.headers["location"], data={"sub": "analyst-2"})
        callback = form.headers["location"]
        assert (await browser.get(callback)).status_code == 303
        replay = await browser.get(callback)
        assert replay.status_code == 400
    async with site.browser() as stranger:  # a callback without the flow's own cookie
        assert (await stranger.get(callback)).status_code == 400
        assert site.cookie not in stranger.cookies


async def test_a_provider_whose_discovered_issuer_differs_is_refused(site, settings):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    client_id, secret = await asyncio.to_thread(
        site.provider.register_client, f"{url}/auth/callback"
    )
    # The same provider, configured with a trailing slash its discovery document does not have.
    own = replace(
        settings,
        oidc_issuer=site.provider.issuer + "/",
        oidc_client_id=client_id,
        oidc_client_secret=secret,
        public_url=url,
        session_secret="another secret",
    )
    await asyncio.to_thread(site.provider.set_user, "analyst-3", party_category="SSC", party_id="S")
    services = create_services(own)
    async with (
        serve(create_app(own, services), port=port),
        httpx.AsyncClient(base_url=url) as browser,
    ):
        start = await browser.get("/login")
        assert start.status_code == 302
        form = await browser.post(start.headers["location"], data={"sub": "analyst-3"})
        done = await browser.get(form.headers["location"])
        assert done.status_code == 400 and "issuer_mismatch" in done.text
    await services.engine.dispose()


async def socket_init(site: Site, cookie: str | None, origin: str, payload: dict) -> dict | int:
    """The server's answer to connection_init: the ack, or the close code (or the HTTP status
    of a handshake refused before any WebSocket opened)."""
    headers = {"Cookie": f"{site.cookie}={cookie}"} if cookie else {}
    try:
        async with connect(
            f"ws://{urlsplit(site.url).netloc}/graphql",
            subprotocols=["graphql-transport-ws"],
            additional_headers=headers,
            origin=origin,
        ) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            try:
                return json.loads(await asyncio.wait_for(ws.recv(), 5))
            except ConnectionClosed as closed:
                return closed.rcvd.code
    except InvalidStatus as refused:
        return refused.response.status_code


async def test_a_websocket_signs_in_by_cookie_csrf_token_and_origin(site):
    await asyncio.to_thread(
        site.provider.set_user, "analyst-ws", party_category="SSC", party_id="S"
    )
    async with site.browser() as browser:
        assert (await sign_in(site, browser, "analyst-ws")).status_code == 303
        csrf = (await browser.get("/auth/session")).json()["csrfToken"]
        cookie = browser.cookies[site.cookie]
    good = {"csrfToken": csrf}
    assert (await socket_init(site, cookie, site.url, good))["type"] == "connection_ack"
    assert await socket_init(site, cookie, site.url, {}) == 4403
    assert await socket_init(site, cookie, site.url, {"csrfToken": "guess"}) == 4403
    # Strawberry refuses a handshake from another origin itself; the sign-in checks it again.
    assert await socket_init(site, cookie, "http://evil.example", good) == 403
    assert await socket_init(site, "not-a-session", site.url, good) == 4403


async def test_the_sign_in_flow_cookie_is_signed_short_lived_and_gone_after_the_callback(site):
    await asyncio.to_thread(site.provider.set_user, "analyst-4", party_category="SSC", party_id="S")
    flow = site.cookie.replace("-session", "-signin")
    async with site.browser() as browser:
        start = await browser.get("/login")
        cookie = start.headers["set-cookie"]
        assert cookie.startswith(f"{flow}=") and "httponly" in cookie.lower()
        assert "samesite=lax" in cookie.lower() and "Max-Age=600" in cookie
        # Signed, and holding only a marker: the nonce and the PKCE verifier stay server-side.
        payload = json.loads(base64.b64decode(cookie.split("=", 1)[1].split(".")[0]))
        markers = [v for k, v in payload.items() if k.startswith("_state_")]
        assert markers and all(set(m) == {"exp"} for m in markers)
        assert "code_verifier" not in json.dumps(payload) and "nonce" not in json.dumps(payload)
        form = await browser.post(start.headers["location"], data={"sub": "analyst-4"})
        done = await browser.get(form.headers["location"])
        assert done.status_code == 303
        assert flow not in browser.cookies and site.cookie in browser.cookies


def test_a_provider_without_the_public_url_or_client_is_refused_at_start(settings):
    configured = {
        "oidc_issuer": "http://127.0.0.1:9",
        "oidc_client_id": "cpl",
        "public_url": "http://127.0.0.1:8000",
    }
    for missing in ("public_url", "oidc_client_id"):
        own = replace(settings, **{**configured, missing: None})
        assert own.refusal() == "CPL_OIDC_ISSUER needs CPL_OIDC_CLIENT_ID and CPL_PUBLIC_URL"
        with pytest.raises(RuntimeError, match="CPL_OIDC_CLIENT_ID and CPL_PUBLIC_URL"):
            create_app(own, create_services(own))


async def test_logout_closes_the_sessions_websocket(site, monkeypatch):
    # The socket checks its session every SESSION_CHECK_SECONDS (5 s): here more often, so that
    # the test waits for the close, not for the interval.
    monkeypatch.setattr("server.signin.SESSION_CHECK_SECONDS", 0.05)
    await asyncio.to_thread(site.provider.set_user, "analyst-5", party_category="SSC", party_id="S")
    async with site.browser() as browser:
        assert (await sign_in(site, browser, "analyst-5")).status_code == 303
        csrf = (await browser.get("/auth/session")).json()["csrfToken"]
        cookie = browser.cookies[site.cookie]
        async with connect(
            f"ws://{urlsplit(site.url).netloc}/graphql",
            subprotocols=["graphql-transport-ws"],
            additional_headers={"Cookie": f"{site.cookie}={cookie}"},
            origin=site.url,
        ) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {"csrfToken": csrf}}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
            assert (await browser.post("/logout", headers={"X-CPL-CSRF": csrf})).status_code == 204
            with pytest.raises(ConnectionClosed) as closed:
                while True:  # pings may come first; the close comes within a check interval
                    message = json.loads(await asyncio.wait_for(ws.recv(), 15))
                    if message["type"] == "ping":
                        await ws.send(json.dumps({"type": "pong"}))
            assert closed.value.rcvd.code == 4403
