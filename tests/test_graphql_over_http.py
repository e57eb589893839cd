"""GraphQL over HTTP as the draft specification reads, and RFC 9110's conditional requests:
media types by `Accept`, statuses under each, operation selection, GET only reading, `data`
absent on request errors, an `extensions.code` on every error, `HEAD`, and `If-None-Match` by
weak comparison, lists and `*`. (The graphql-http audit suite runs against a live server in
tests/test_graphql_over_http_audit.py.)"""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest
from websockets.asyncio.client import connect

import resolvers.reads.loaders

GRAPHQL = "application/graphql-response+json"
JSON = "application/json"
CODES = {
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "BAD_USER_INPUT",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "BAD_REQUEST",
    "PAYLOAD_TOO_LARGE",
    "RATE_LIMITED",
    "PERSISTED_QUERY_NOT_FOUND",
    "SERVICE_UNAVAILABLE",
    "INTERNAL_SERVER_ERROR",
}
DEVICE = '{ device(id: "device:1") { modelName } }'


def headers(token: str, accept: str | None = None, **more: str) -> dict[str, str]:
    found = {"Authorization": f"Bearer {token}", **more}
    if accept is not None:
        found["Accept"] = accept
    return found


def codes(body: dict) -> list[str]:
    return [error["extensions"]["code"] for error in body["errors"]]


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        (JSON, JSON),
        (GRAPHQL, GRAPHQL),
        (f"{GRAPHQL}, {JSON};q=0.9", GRAPHQL),  # what the draft tells clients to send
        (f"{JSON}, {GRAPHQL}", GRAPHQL),
        (f"{JSON};q=0.5, {GRAPHQL}", GRAPHQL),
        (f"{GRAPHQL};q=0.5, {JSON}", JSON),
        (f"{JSON};q=0, */*", GRAPHQL),
        ("application/json; charset=utf-8", JSON),
        ("not a media type", JSON),
    ],
)
async def test_the_media_type_follows_accept(client, token, accept, media):
    response = await client.post(
        "/graphql", json={"query": DEVICE}, headers=headers(token("SMALL_SUPPLIER"), accept)
    )
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media
    assert "Accept" in response.headers["vary"]
    assert response.json() == {"data": {"device": {"modelName": "Aurora ESME Mk1"}}}
    if media == GRAPHQL:
        assert response.headers["content-type"] == f"{GRAPHQL}; charset=utf-8"


@pytest.mark.parametrize("accept", ["text/plain", f"{JSON};q=0", "multipart/mixed"])
async def test_an_accept_that_allows_neither_is_406(client, token, accept):
    response = await client.post(
        "/graphql", json={"query": DEVICE}, headers=headers(token("SMALL_SUPPLIER"), accept)
    )
    assert response.status_code == 406 and codes(response.json()) == ["BAD_REQUEST"]


# (body, status under application/json, under application/graphql-response+json, code; `data`:
# absent, null or an object)
REQUEST_ERRORS = [
    ("parse failure", {"query": "{"}, 200, 400, "GRAPHQL_PARSE_FAILED"),
    ("validation failure", {"query": "{ nope }"}, 200, 400, "GRAPHQL_VALIDATION_FAILED"),
    (
        "over a limit",
        {"query": "{ " + " ".join(f"a{i}: __typename" for i in range(40)) + " }"},
        200,
        400,
        "GRAPHQL_VALIDATION_FAILED",
    ),
    (
        "a variable that cannot be coerced",
        {"query": "query($d: ID!) { device(id: $d) { id } }", "variables": {"d": None}},
        200,
        400,
        "BAD_USER_INPUT",
    ),
    (
        "several operations, none named",
        {"query": "query A { viewer { partyId } } query B { __typename }"},
        400,
        400,
        "BAD_REQUEST",
    ),
    (
        "an operation name that names none",
        {"query": "query A { viewer { partyId } }", "operationName": "B"},
        400,
        400,
        "BAD_REQUEST",
    ),
    ("no query", {"qeury": "{ __typename }"}, 400, 400, "BAD_REQUEST"),
    ("a query that is no string", {"query": 7}, 400, 400, "BAD_REQUEST"),
    (
        "an operation name that is no string",
        {"query": DEVICE, "operationName": 1},
        400,
        400,
        "BAD_REQUEST",
    ),
    ("variables that are no object", {"query": DEVICE, "variables": [1]}, 400, 400, "BAD_REQUEST"),
    ("a body that is no object", [{"query": DEVICE}], 400, 400, "BAD_REQUEST"),
]


@pytest.mark.parametrize("media", [JSON, GRAPHQL])
@pytest.mark.parametrize(
    ("name", "body", "json_status", "graphql_status", "code"),
    REQUEST_ERRORS,
    ids=[row[0] for row in REQUEST_ERRORS],
)
async def test_request_errors_have_no_data_and_the_media_types_status(
    client, token, media, name, body, json_status, graphql_status, code
):
    response = await client.post("/graphql", json=body, headers=headers(token("SSC"), media))
    assert response.status_code == (graphql_status if media == GRAPHQL else json_status)
    assert response.headers["content-type"].split(";")[0] == media
    answer = response.json()
    assert "data" not in answer and codes(answer) == [code], answer


@pytest.mark.parametrize("media", [JSON, GRAPHQL])
async def test_a_body_that_is_not_json_is_400_either_way(client, token, media):
    for body, content_type in [(b'{"query": ', JSON), (b"\xff\xfe", JSON)]:
        response = await client.post(
            "/graphql",
            content=body,
            headers=headers(token("SSC"), media, **{"Content-Type": content_type}),
        )
        assert response.status_code == 400 and codes(response.json()) == ["BAD_REQUEST"]
    untyped = await client.post(
        "/graphql",
        content=json.dumps({"query": DEVICE}),
        headers=headers(token("SSC"), media, **{"Content-Type": "text/plain"}),
    )
    assert untyped.status_code == (415 if media == GRAPHQL else 400)


@pytest.mark.parametrize("media", [JSON, GRAPHQL])
async def test_answers_with_data_are_200_or_the_drafts_294_with_errors(client, token, media):
    partial = await client.post(
        "/graphql",
        json={"query": "{ devices(first: 2) { nodes { id zigbeeStackVersion } } }"},
        headers=headers(token("SMALL_SUPPLIER"), media),
    )
    assert partial.status_code == (294 if media == GRAPHQL else 200)
    assert partial.json()["data"]["devices"]["nodes"][0]["zigbeeStackVersion"] is None
    assert codes(partial.json()) == ["FORBIDDEN"]
    # A field error on a non-null root field nulls `data`, which is still there: it ran.
    null = await client.post(
        "/graphql",
        json={"query": "{ devices(first: -1) { totalCount } }"},
        headers=headers(token("SMALL_SUPPLIER"), media),
    )
    assert null.status_code == (294 if media == GRAPHQL else 200)
    assert null.json()["data"] is None and codes(null.json()) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("media", [JSON, GRAPHQL])
async def test_a_kept_answer_has_the_status_of_its_outcome(client, token, media, services):
    """The response cache keeps an answer once; each media type replays it with its status."""
    query = "{ devices(first: 3) { nodes { id zigbeeChipsetVendor } } }"
    hits = services.responses.hits
    for accept in (JSON, GRAPHQL, media):
        response = await client.post(
            "/graphql", json={"query": query}, headers=headers(token("SMALL_SUPPLIER"), accept)
        )
        assert response.status_code == (294 if accept == GRAPHQL else 200)
    assert services.responses.hits - hits >= 2


async def test_several_operations_without_a_name_run_nothing(isolated):
    document = """mutation Add { addFirmware(input: {deviceId: "device:3", version: "5A5A0009"})
      { __typename } } query Read { viewer { partyId } }"""
    before = await isolated.scalar("SELECT count(*) FROM firmware")
    token = isolated.token("MANUFACTURER", manufacturer_id="0A1B")
    for media in (JSON, GRAPHQL):
        response = await isolated.client.post(
            "/graphql", json={"query": document}, headers=headers(token, media)
        )
        assert response.status_code == 400
        assert "operationName" in response.json()["errors"][0]["message"]
    assert await isolated.scalar("SELECT count(*) FROM firmware") == before
    named = await isolated.client.post(
        "/graphql", json={"query": document, "operationName": "Read"}, headers=headers(token)
    )
    assert named.json() == {"data": {"viewer": {"partyId": "DEV-MANUFACTURER"}}}


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("media", [JSON, GRAPHQL])
async def test_a_mutation_by_get_is_405_allowing_post_and_writes_nothing(isolated, method, media):
    document = 'mutation { addFirmware(input: {deviceId: "device:3", version: "5A5A0008"}) { __typename } }'  # noqa: E501
    before = await isolated.scalar("SELECT count(*) FROM firmware")
    token = isolated.token("MANUFACTURER", manufacturer_id="0A1B")
    response = await isolated.client.request(
        method, "/graphql", params={"query": document}, headers=headers(token, media)
    )
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    if method == "GET":
        assert codes(response.json()) == ["BAD_REQUEST"] and "data" not in response.json()
    else:
        assert response.content == b""
    assert await isolated.scalar("SELECT count(*) FROM firmware") == before


async def test_other_methods_are_405_with_the_ones_allowed(client, token):
    response = await client.put("/graphql", json={"query": DEVICE}, headers=headers(token("SSC")))
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD, POST"
    assert codes(response.json()) == ["BAD_REQUEST"]


async def test_get_treats_an_empty_optional_parameter_as_absent(client, token):
    params = {"query": DEVICE, "variables": "", "operationName": "", "extensions": ""}
    response = await client.get("/graphql", params=params, headers=headers(token("SSC")))
    assert response.status_code == 200
    assert response.json() == {"data": {"device": {"modelName": "Aurora ESME Mk1"}}}
    bad = await client.get(
        "/graphql", params={"query": DEVICE, "variables": "[1]"}, headers=headers(token("SSC"))
    )
    assert bad.status_code == 400 and codes(bad.json()) == ["BAD_REQUEST"]


@pytest.mark.parametrize("cache", ["cache on", "cache off"])
@pytest.mark.parametrize("media", [JSON, GRAPHQL])
async def test_head_is_get_without_the_body(client, token, services, monkeypatch, media, cache):
    if cache == "cache off":
        monkeypatch.setattr(services.responses, "max_bytes", 0)
    auth = headers(token("SMALL_SUPPLIER"), media)
    got = await client.get("/graphql", params={"query": DEVICE}, headers=auth)
    head = await client.head("/graphql", params={"query": DEVICE}, headers=auth)
    assert got.status_code == head.status_code == 200 and head.content == b""
    for name in ("content-type", "content-length", "etag", "cache-control", "vary"):
        assert head.headers[name] == got.headers[name], name
    assert int(head.headers["content-length"]) == len(got.content)
    refused = await client.head("/graphql", params={"query": "{"}, headers=auth)
    assert refused.status_code == (400 if media == GRAPHQL else 200) and refused.content == b""


async def test_if_none_match_by_weak_comparison_lists_and_star(client, token):
    auth = headers(token("SMALL_SUPPLIER"))
    first = await client.get("/graphql", params={"query": DEVICE}, headers=auth)
    etag = first.headers["etag"]
    assert etag.startswith('"') and first.status_code == 200
    for field, revalidated in [
        (etag, True),
        (f"W/{etag}", True),  # what a compressing proxy makes of the tag
        (f'"other", W/"another",{etag}', True),
        (f'"other" , W/{etag} ', True),
        ("*", True),
        ('"other"', False),
        (f'{etag[:-2]}"', False),
        ("not a tag", False),
        (f"{etag} trailing", False),
    ]:
        response = await client.get(
            "/graphql", params={"query": DEVICE}, headers={**auth, "If-None-Match": field}
        )
        assert response.status_code == (304 if revalidated else 200), field
        if revalidated:
            assert response.content == b"" and response.headers["etag"] == etag
            assert "Accept" in response.headers["vary"]


async def test_each_media_type_has_its_own_etag(client, token):
    auth = headers(token("SMALL_SUPPLIER"))
    plain = await client.get("/graphql", params={"query": DEVICE}, headers=auth)
    graphql = await client.get(
        "/graphql", params={"query": DEVICE}, headers={**auth, "Accept": GRAPHQL}
    )
    assert plain.headers["etag"] != graphql.headers["etag"]
    crossed = await client.get(
        "/graphql",
        params={"query": DEVICE},
        headers={**auth, "Accept": GRAPHQL, "If-None-Match": plain.headers["etag"]},
    )
    assert crossed.status_code == 200 and crossed.headers["etag"] == graphql.headers["etag"]
    same = await client.get(
        "/graphql",
        params={"query": DEVICE},
        headers={**auth, "Accept": GRAPHQL, "If-None-Match": graphql.headers["etag"]},
    )
    assert same.status_code == 304


@pytest.mark.parametrize("media", [JSON, GRAPHQL])
async def test_an_unknown_persisted_query(client, token, media):
    digest = hashlib.sha256(b"{ viewer { partyId } }").hexdigest()
    body = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}
    response = await client.post("/graphql", json=body, headers=headers(token("SSC"), media))
    assert response.status_code == (400 if media == GRAPHQL else 200)
    assert codes(response.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_every_error_has_a_code(client, token, monkeypatch):
    """Errors of every kind, by HTTP: each has an `extensions.code` from the contract's list."""
    seen: set[str] = set()
    documents = [
        ("SSC", "{"),
        ("SSC", "{ nope }"),
        ("SSC", "query($d: ID!) { device(id: $d) { id } }"),
        ("SSC", '{ device(id: "device:999") { id } }'),
        ("SMALL_SUPPLIER", "{ devices(first: 1) { nodes { zigbeeStackVersion } } }"),
        ("SMALL_SUPPLIER", "{ sscAccessLog { totalCount } }"),
        ("SSC", "{ devices(first: -1) { totalCount } }"),
        ("SSC", "query A { __typename } query B { __typename }"),
    ]
    for category, document in documents:
        response = await client.post(
            "/graphql", json={"query": document}, headers=headers(token(category))
        )
        seen.update(codes(response.json()))
    unauthenticated = await client.post("/graphql", json={"query": DEVICE})
    seen.update(codes(unauthenticated.json()))

    def broken(*_: object) -> None:
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(resolvers.reads.loaders.Loaders, "one", broken)
    # An alias no other test asks for: the services are the session's, and a device's answer
    # another test completed with this selection would be reused without reading a row.
    masked = await client.post(
        "/graphql",
        json={"query": "{ devices(first: 1) { nodes { brokenMaker: manufacturer { name } } } }"},
        headers=headers(token("SSC")),
    )
    assert "hunter2" not in masked.text
    assert codes(masked.json()) == ["INTERNAL_SERVER_ERROR"]
    seen.update(codes(masked.json()))
    assert seen <= CODES and seen >= {
        "GRAPHQL_PARSE_FAILED",
        "GRAPHQL_VALIDATION_FAILED",
        "BAD_USER_INPUT",
        "NOT_FOUND",
        "FORBIDDEN",
        "BAD_REQUEST",
        "UNAUTHENTICATED",
        "INTERNAL_SERVER_ERROR",
    }


async def next_message(ws) -> dict:
    """The next message that is not the server's keep-alive ping (answered)."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message["type"] != "ping":
            return message
        await ws.send(json.dumps({"type": "pong"}))


async def test_websocket_errors_have_codes_too(live, isolated):
    refused = [
        ("subscription { nope }", None, "GRAPHQL_VALIDATION_FAILED"),
        (
            "subscription($k: [ChangeKind!]) { cplChanges(kinds: $k) { eventId } }",
            {"k": ["NOT_A_KIND"]},
            "BAD_USER_INPUT",
        ),
    ]
    async with connect(f"ws://{live}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        init = {"Authorization": f"Bearer {isolated.token('SSC')}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
        for number, (document, variables, code) in enumerate(refused):
            payload = {"query": document, "variables": variables}
            await ws.send(json.dumps({"id": str(number), "type": "subscribe", "payload": payload}))
            message = await next_message(ws)
            assert message["type"] == "error" and message["id"] == str(number), message
            assert [e["extensions"]["code"] for e in message["payload"]] == [code]
