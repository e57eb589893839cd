"""Every request without a valid token gets HTTP 401 UNAUTHENTICATED, and no token is logged."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from permissions.dev_keys import load_or_create_dev_key
from tests.test_tokens import b64json, b64url

QUERY = {"query": "{ viewer { partyId } }"}


@pytest.fixture(scope="module")
def dev_key(settings) -> ECKey:
    return load_or_create_dev_key(settings.dev_key_path)


def claims(settings, **overrides):
    now = int(time.time())
    base = {
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": "tester",
        "exp": now + 600,
        "party_id": "P-1",
        "party_category": "LARGE_SUPPLIER",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def signed(key: ECKey, payload: dict) -> str:
    return jwt.encode({"alg": "ES256", "kid": key.kid}, payload, key, algorithms=["ES256"])


def bad_tokens(settings, key: ECKey) -> dict[str, str]:
    now = int(time.time())
    good = signed(key, claims(settings))
    header, _, signature = good.split(".")
    public = key.as_pem(private=False)
    hs_header = b64json({"alg": "HS256", "typ": "JWT", "kid": key.kid})
    hs_body = b64json(claims(settings, party_category="SSC"))
    hs_signature = hmac.new(public, f"{hs_header}.{hs_body}".encode(), hashlib.sha256).digest()
    other = ECKey.generate_key("P-256", auto_kid=True)
    return {
        "expired": signed(key, claims(settings, exp=now - 120)),
        "wrong issuer": signed(key, claims(settings, iss="https://elsewhere/")),
        "wrong audience": signed(key, claims(settings, aud="another-api")),
        "alg none": f"{b64json({'alg': 'none', 'typ': 'JWT'})}.{b64json(claims(settings))}.",
        "HS256 with the public key": f"{hs_header}.{hs_body}.{b64url(hs_signature)}",
        "unknown kid": signed(other, claims(settings)),
        "tampered payload": ".".join(
            [header, b64json(claims(settings, party_category="SSC")), signature]
        ),
        "unknown category": signed(key, claims(settings, party_category="ROYALTY")),
        "manufacturer without manufacturer_id": signed(
            key, claims(settings, party_category="MANUFACTURER")
        ),
        "garbage": "not-a-jwt",
    }


CASES = [
    "expired",
    "wrong issuer",
    "wrong audience",
    "alg none",
    "HS256 with the public key",
    "unknown kid",
    "tampered payload",
    "unknown category",
    "manufacturer without manufacturer_id",
    "garbage",
]


@pytest.mark.parametrize("case", CASES)
async def test_invalid_token_is_401(client, settings, dev_key, caplog, case):
    token = bad_tokens(settings, dev_key)[case]
    with caplog.at_level(logging.DEBUG):
        response = await client.post(
            "/graphql", json=QUERY, headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 401
    body = response.json()
    assert body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
    assert "Traceback" not in response.text and token not in response.text
    assert "data" not in body
    assert token not in caplog.text


@pytest.mark.parametrize("header", [None, "", "Basic dXNlcjpwdw==", "Bearer", "Bearer "])
async def test_missing_or_non_bearer_is_401(client, header):
    headers = {"Authorization": header} if header is not None else {}
    response = await client.post("/graphql", json=QUERY, headers=headers)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_query_by_get_needs_a_token_too(client):
    response = await client.get("/graphql", params={"query": "{ viewer { partyId } }"})
    assert response.status_code == 401


async def test_valid_token_is_accepted(client, settings, dev_key):
    token = signed(dev_key, claims(settings))
    response = await client.post(
        "/graphql", json=QUERY, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"viewer": {"partyId": "P-1"}}}


@pytest.mark.parametrize(
    "query_string",
    [
        "%71uery=%7Bdevices%7BtotalCount%7D%7D",
        "query=%7Bdevices%7BtotalCount%7D%7D",
        "QUERY=%7Bdevices%7BtotalCount%7D%7D&x=1",
        "x=1",
    ],
)
async def test_a_browser_get_with_any_query_string_gets_the_page_and_runs_nothing(
    client, query_string, token
):
    """GraphiQL keeps `?query=` in the address: a reload or a shared link opens the page (never
    a 401), and the page itself runs nothing, with or without a token."""
    for headers in ({}, {"Authorization": f"Bearer {token('SSC')}"}):
        response = await client.get(
            f"/graphql?{query_string}", headers={"Accept": "text/html", **headers}
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "totalCount" not in response.text and '"data"' not in response.text


async def test_a_get_query_without_html_needs_a_token(client):
    response = await client.get("/graphql?query=%7Bdevices%7BtotalCount%7D%7D")
    assert response.status_code == 401
    assert "totalCount" not in response.text


async def test_party_id_wider_than_the_audit_columns_is_refused(client, settings, dev_key):
    token = signed(dev_key, claims(settings, party_id="P" * 201))
    response = await client.post(
        "/graphql", json=QUERY, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
