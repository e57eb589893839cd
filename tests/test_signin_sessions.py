"""Signing in with the development issuer's category picker, and what a session cookie may do:
server-side sessions, the CSRF header, logout everywhere, expiry, and bearer tokens unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import text

from permissions.signin_sessions import SessionCookie
from server.app import create_app, create_services
from tests.harness import asgi_client
from tests.live import serve

SITE = "http://127.0.0.1:8391"
COOKIE = "cpl-pathways-8391-session"
SSC_QUERY = {
    "query": "query Ssc { devices(first: 2) "
    "{ nodes { id zigbeeStackVersion zigbeeChipsetVendor } } }"
}


@pytest.fixture
async def browser(app) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app, SITE) as client:
        yield client


async def sign_in(client: httpx.AsyncClient, category: str, next_path: str = "") -> httpx.Response:
    return await client.post(
        "/login",
        data={"category": category, "next": next_path},
        headers={"Origin": SITE},
    )


async def csrf(client: httpx.AsyncClient) -> str:
    response = await client.get("/auth/session")
    assert response.status_code == 200, response.text
    return response.json()["csrfToken"]


async def test_login_offers_the_seven_categories(browser):
    response = await browser.get("/login")
    assert response.status_code == 200
    for category in (
        "LARGE_SUPPLIER",
        "SMALL_SUPPLIER",
        "NETWORK_PARTY",
        "OTHER_SEC_PARTY",
        "MANUFACTURER",
        "SSC",
        "SECAS",
    ):
        assert f'value="{category}"' in response.text
    assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_signing_in_sets_an_httponly_lax_cookie_named_for_this_port(browser):
    response = await sign_in(browser, "SSC")
    assert response.status_code == 303
    assert response.headers["location"] == "/graphql"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http on loopback only
    session = (await browser.get("/auth/session")).json()
    assert session["partyCategory"] == "SSC" and session["partyId"] == "DEV-SSC"
    assert set(session) == {
        "partyId",
        "partyCategory",
        "manufacturerIdentifier",
        "csrfToken",
        "expiresAt",
    }


async def test_the_database_holds_a_hash_of_the_cookie_not_the_cookie(browser, services):
    await sign_in(browser, "SECAS")
    value = browser.cookies[COOKIE]
    async with services.engine.connect() as connection:
        ids = (await connection.execute(text("SELECT id FROM signin_session"))).scalars().all()
    assert value not in ids and len(ids) >= 1


async def test_a_cookie_request_needs_the_csrf_header(browser):
    await sign_in(browser, "SSC")
    without = await browser.post("/graphql", json=SSC_QUERY)
    assert without.status_code == 403
    assert without.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    wrong = await browser.post("/graphql", json=SSC_QUERY, headers={"X-CPL-CSRF": "guess"})
    assert wrong.status_code == 403
    right = await browser.post(
        "/graphql", json=SSC_QUERY, headers={"X-CPL-CSRF": await csrf(browser)}
    )
    assert right.status_code == 200
    nodes = right.json()["data"]["devices"]["nodes"]
    assert nodes and all(n["zigbeeStackVersion"] and n["zigbeeChipsetVendor"] for n in nodes)


async def test_a_supplier_signed_in_reads_null_for_ssc_only_fields(browser):
    await sign_in(browser, "LARGE_SUPPLIER")
    body = (
        await browser.post("/graphql", json=SSC_QUERY, headers={"X-CPL-CSRF": await csrf(browser)})
    ).json()
    nodes = body["data"]["devices"]["nodes"]
    assert len(nodes) == 2 and all(n["zigbeeStackVersion"] is None for n in nodes)
    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}


async def test_a_manufacturer_signs_in_as_the_demo_manufacturer(browser):
    await sign_in(browser, "MANUFACTURER")
    assert (await browser.get("/auth/session")).json()["manufacturerIdentifier"] == "0A1B"


async def test_a_bearer_token_is_used_as_ever_even_beside_a_cookie(browser, token):
    await sign_in(browser, "LARGE_SUPPLIER")
    response = await browser.post(
        "/graphql",
        json={"query": "{ viewer { partyCategory } }"},
        headers={"Authorization": f"Bearer {token('SSC')}"},
    )
    assert response.status_code == 200
    assert response.json()["data"]["viewer"]["partyCategory"] == "SSC"


async def test_a_form_from_another_site_cannot_sign_anyone_in(browser):
    for headers in ({}, {"Origin": "http://evil.example"}):
        response = await browser.post("/login", data={"category": "SSC"}, headers=headers)
        assert response.status_code == 403
        assert "set-cookie" not in response.headers


async def test_the_development_sign_in_answers_only_to_this_servers_name(browser):
    """DNS rebinding: evil.example resolved to 127.0.0.1 is its own origin, but keeps its name."""
    evil = {"Host": "evil.example", "Origin": "http://evil.example"}
    response = await browser.post("/login", data={"category": "SSC"}, headers=evil)
    assert response.status_code == 400
    assert "not reached by that name" in response.text
    assert "set-cookie" not in response.headers
    assert (await browser.get("/login", headers={"Host": "evil.example"})).status_code == 400
    for host in ("127.0.0.1:8391", "localhost:8391", "[::1]:8391"):
        origin = {"Host": host, "Origin": f"http://{host}"}
        signed_in = await browser.post("/login", data={"category": "SSC"}, headers=origin)
        assert signed_in.status_code == 303, host
    assert (await browser.post("/login", headers={"Host": "127.0.0.1:9999"})).status_code == 400


async def test_with_a_public_url_the_development_sign_in_answers_to_its_host_only(
    settings, services
):
    app = create_app(replace(settings, public_url="http://cpl.example:8080"), services)
    async with asgi_client(app, SITE) as client:
        form = {"category": "SSC"}
        here = {"Host": "cpl.example:8080", "Origin": "http://cpl.example:8080"}
        assert (await client.post("/login", data=form, headers=here)).status_code == 303
        loopback = {"Origin": SITE}  # the Host is SITE's: not the configured one
        refused = await client.post("/login", data=form, headers=loopback)
        assert refused.status_code == 400 and "set-cookie" not in refused.headers


async def test_a_live_server_refuses_a_rebound_name_and_signs_in_by_its_own(settings):
    services = create_services(settings)
    async with (
        serve(create_app(settings, services)) as address,
        httpx.AsyncClient(base_url=f"http://{address}") as client,
    ):
        port = address.rsplit(":", 1)[1]
        evil = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
        refused = await client.post("/login", data={"category": "SSC"}, headers=evil)
        assert refused.status_code == 400 and "set-cookie" not in refused.headers
        local = {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"}
        signed_in = await client.post("/login", data={"category": "SSC"}, headers=local)
        assert signed_in.status_code == 303 and "set-cookie" in signed_in.headers


async def test_a_sign_in_form_over_4_kb_is_refused_unread(browser):
    response = await browser.post(
        "/login", data={"category": "SSC", "next": "/" + "x" * 5000}, headers={"Origin": SITE}
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert "set-cookie" not in response.headers


async def test_a_bad_category_gives_no_session(browser):
    response = await sign_in(browser, "ADMIN")
    assert response.status_code == 403
    assert "party_category" in response.text
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
async def test_next_never_leaves_this_server(browser, target):
    response = await sign_in(browser, "SSC", next_path=target)
    assert response.headers["location"] == "/graphql"


async def test_next_keeps_a_path_here(browser):
    response = await sign_in(browser, "SSC", next_path="/graphql?query=%7Bviewer%7BpartyId%7D%7D")
    assert response.headers["location"] == "/graphql?query=%7Bviewer%7BpartyId%7D%7D"


async def test_logout_needs_the_csrf_header_and_ends_the_session_everywhere(browser, settings):
    await sign_in(browser, "SSC")
    value = browser.cookies[COOKIE]
    token = await csrf(browser)
    assert (await browser.post("/logout")).status_code == 403
    assert (await browser.get("/auth/session")).status_code == 200
    out = await browser.post("/logout", headers={"X-CPL-CSRF": token})
    assert out.status_code == 204
    assert f'{COOKIE}=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    # Another process on the same database (its own app and pool) no longer knows the cookie.
    other_services = create_services(settings)
    try:
        other = asgi_client(create_app(settings, other_services), SITE)
        replayed = await other.post(
            "/graphql", json=SSC_QUERY, headers={"X-CPL-CSRF": token, "Cookie": f"{COOKIE}={value}"}
        )
        assert replayed.status_code == 401
        assert replayed.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert (
            await other.get("/auth/session", headers={"Cookie": f"{COOKIE}={value}"})
        ).status_code == 401
    finally:
        await other_services.engine.dispose()


async def test_an_expired_session_is_refused(browser, services):
    await sign_in(browser, "SSC")
    token = await csrf(browser)
    async with services.engine.begin() as connection:
        await connection.execute(
            text("UPDATE signin_session SET expires_at = :past WHERE csrf_token = :token"),
            {"past": datetime(2000, 1, 1, tzinfo=UTC), "token": token},
        )
    assert (await browser.get("/auth/session")).status_code == 401
    response = await browser.post("/graphql", json=SSC_QUERY, headers={"X-CPL-CSRF": token})
    assert response.status_code == 401


async def test_without_a_development_issuer_or_a_provider_login_says_what_to_set(
    settings, services
):
    app = create_app(replace(settings, jwks_url="http://127.0.0.1:9/jwks"), services)
    async with asgi_client(app, SITE) as client:
        response = await client.get("/login")
        assert response.status_code == 404 and "CPL_OIDC_ISSUER" in response.text
        assert (await sign_in(client, "SSC")).status_code == 404


@pytest.mark.parametrize(
    ("site", "name", "secure"),
    [
        ("http://127.0.0.1:8000", "cpl-pathways-8000-session", False),
        ("http://localhost:8001", "cpl-pathways-8001-session", False),
        ("http://[::1]:8002", "cpl-pathways-8002-session", False),
        ("https://cpl.example", "__Host-cpl-pathways-443-session", True),
        ("http://cpl.example:8080", "__Host-cpl-pathways-8080-session", True),
    ],
)
def test_the_cookie_is_secure_unless_plain_http_on_loopback(site, name, secure):
    assert SessionCookie.for_site(site) == SessionCookie(name=name, secure=secure)
