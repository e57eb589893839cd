"""Browser front-ends on the origins in CPL_CORS_ORIGINS may call the API; no other may."""

from __future__ import annotations

from dataclasses import replace

import pytest

from server.app import create_app
from tests.harness import asgi_client

FRONT_END = "http://127.0.0.1:8150"
PREFLIGHT = {
    "Origin": FRONT_END,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, x-request-id",
}


@pytest.fixture
async def cors_client(settings, services):
    app = create_app(replace(settings, cors_origins=(FRONT_END,)), services)
    async with asgi_client(app) as client:
        yield client


async def test_preflight_from_a_listed_origin_needs_no_token(cors_client):
    response = await cors_client.options("/graphql", headers=PREFLIGHT)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == FRONT_END
    allowed = response.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "x-request-id"} <= set(allowed.split(", "))
    assert "access-control-allow-credentials" not in response.headers  # no credentials mode


async def test_a_listed_origin_reads_the_answer_and_its_request_id(cors_client, token):
    response = await cors_client.post(
        "/graphql",
        json={"query": "{ viewer { partyCategory } }"},
        headers={"Origin": FRONT_END, "Authorization": f"Bearer {token('SMALL_SUPPLIER')}"},
    )
    assert response.json() == {"data": {"viewer": {"partyCategory": "SMALL_SUPPLIER"}}}
    assert response.headers["access-control-allow-origin"] == FRONT_END
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


async def test_an_unlisted_origin_gets_no_cors_grant(cors_client, client):
    other = {**PREFLIGHT, "Origin": "http://127.0.0.1:8151"}
    refused = await cors_client.options("/graphql", headers=other)
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    # Without CPL_CORS_ORIGINS no origin gets a grant, and a preflight is just unauthenticated.
    unset = await client.options("/graphql", headers=PREFLIGHT)
    assert unset.status_code == 401
    assert "access-control-allow-origin" not in unset.headers
