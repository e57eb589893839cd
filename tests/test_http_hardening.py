"""Baseline hardening: GraphiQL, size and shape limits, masked unexpected errors."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from resolvers.reads.loaders import Loaders
from server.app import create_app
from tests.harness import asgi_client


def auth(token, category="LARGE_SUPPLIER"):
    return {"Authorization": f"Bearer {token(category)}"}


async def test_graphiql_page_needs_no_token(client):
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


@pytest.mark.parametrize("sent", ["declared", "chunked"])
async def test_body_over_the_cap_is_413(settings, services, token, sent):
    """The body limit itself: the document is small (the query size cap, far smaller, would
    refuse a large one first), the bulk is a variable. Declared by Content-Length it is refused
    before it is read; chunked, as it grows past the cap."""
    small = replace(settings, max_body_bytes=20_000)
    query = "query($x: String) { viewer { partyId } }"
    body = json.dumps({"query": query, "variables": {"x": "a" * 30_000}}).encode()
    assert len(body) > small.max_body_bytes and len(query) < settings.max_query_bytes

    async def chunked():
        for start in range(0, len(body), 4_096):
            yield body[start : start + 4_096]

    async with asgi_client(create_app(small, services)) as client:
        response = await client.post(
            "/graphql",
            content=body if sent == "declared" else chunked(),
            headers={**auth(token), "Content-Type": "application/json"},
        )
    assert response.status_code == 413
    assert response.json()["errors"] == [
        {"message": "Request body over 20000 bytes.", "extensions": {"code": "PAYLOAD_TOO_LARGE"}}
    ]


async def test_malformed_json_is_400_not_500(client, token):
    response = await client.post(
        "/graphql",
        content=b'{"query": "{ viewer',
        headers={**auth(token), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize("where", ["variables", "extensions"])
@pytest.mark.parametrize("depth", [65, 990, 100_000])
async def test_deeply_nested_json_is_400_not_500(client, token, where, depth):
    nested = "[" * depth + "]" * depth
    response = await client.post(
        "/graphql",
        content=f'{{"query": "{{ __typename }}", "{where}": {{"x": {nested}}}}}'.encode(),
        headers={**auth(token), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"message": "The request body nests deeper than 64.", "extensions": {"code": "BAD_REQUEST"}}
    ]


async def test_json_nested_as_deep_as_allowed_is_answered(client, token):
    nested = "[" * 62 + "]" * 62  # with the body and `variables`: 64 levels
    response = await client.post(
        "/graphql",
        content=f'{{"query": "{{ __typename }}", "variables": {{"x": {nested}}}}}'.encode(),
        headers={**auth(token), "Content-Type": "application/json"},
    )
    assert response.status_code == 200 and response.json() == {"data": {"__typename": "Query"}}


async def test_syntax_error_is_readable(gql):
    body = await gql("SSC", "{ viewer { ")
    assert "Syntax Error" in body["errors"][0]["message"]


async def test_query_depth_is_limited(gql):
    deep = "{ devices { nodes " + "{ firmware { device " * 7 + "{ id }" + " } }" * 7 + " } }"
    body = await gql("SSC", deep)
    assert body.get("data") is None
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]


async def test_aliases_are_limited(gql):
    many = " ".join(f"a{i}: viewer {{ partyId }}" for i in range(40))
    body = await gql("SSC", "{ " + many + " }")
    assert "aliases" in body["errors"][0]["message"]


async def test_token_count_is_limited(gql):
    body = await gql("SSC", "{ " + " ".join(["viewer { partyId }"] * 1200) + " }")
    assert "token" in body["errors"][0]["message"].lower()


async def test_unexpected_errors_are_masked(gql, monkeypatch):
    def broken(self, rows, loader, key):
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(Loaders, "one", broken)
    body = await gql("SSC", "{ devices(first: 1) { nodes { modelName manufacturer { name } } } }")
    assert body["errors"][0]["message"] == "Unexpected error."
    assert "hunter2" not in str(body)


@pytest.mark.parametrize("first", [-1])
async def test_negative_page_size_is_refused(gql, first):
    body = await gql("SSC", "query($f: Int!) { devices(first: $f) { totalCount } }", {"f": first})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
