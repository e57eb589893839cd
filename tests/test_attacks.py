"""The outside review's attacks, one test each, named for the case (SECURITY.md lists them)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

import permissions.strawberry_adapter as enforcement
import schema.limits
import server.graphql_view
from models.demo import VENDORS
from permissions.document_policy import _Walk, decide
from permissions.keys import JwksKeys
from permissions.principal import PartyCategory
from permissions.tokens import TokenVerifier
from schema.build import build_schema
from schema.documents import valid_document
from tests.harness import count_calls
from tests.live import DEADLINE, subscribe

ROOT = Path(__file__).resolve().parent.parent
VIEWER = "{ viewer { partyId } }"
ADD_FIRMWARE = """mutation($input: AddFirmwareInput!) { addFirmware(input: $input) {
  __typename ... on AddFirmwareSuccess { firmware { id version } } } }"""
ADD_DEVICE = """mutation($input: AddDeviceInput!) { addDevice(input: $input) { __typename } }"""
# P-256's group order: (r, s) and (r, n - s) are both valid ECDSA signatures of one message.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def fragment_bomb(levels: int, on: str = "Query", leaf: str = "viewer { partyId }") -> str:
    fragments = " ".join(
        f"fragment F{i} on {on} {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    head = "subscription { ...F0 }" if on == "Subscription" else "{ ...F0 }"
    return f"{head} {fragments} fragment F{levels} on {on} {{ {leaf} }}"


def forking_chain(levels: int, leaf: str = "devices { zigbeeChipsetVendor }") -> str:
    """Each level spreads the next under two aliases: 2^levels response paths to one leaf."""
    fragments = " ".join(
        f"fragment F{i} on Manufacturer {{ a: devices {{ manufacturer {{ ...F{i + 1} }} }} "
        f"b: devices {{ manufacturer {{ ...F{i + 1} }} }} }}"
        for i in range(levels)
    )
    last = f"fragment F{levels} on Manufacturer {{ {leaf} }}"
    return f"{{ manufacturers {{ ...F0 }} }} {fragments} {last}"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# 1. A fragment bomb is refused at once, and the server answers the next request normally.
async def test_fragment_bomb_of_40_levels_is_refused_and_the_server_stays_up(live, token):
    # How much work refusing it takes is counted below (the limits and the policy pass are
    # linear); how long it takes is measured in `make bench` (bench/bombs.py), not here.
    bomb = fragment_bomb(40)
    assert len(bomb) < 2_000
    async with httpx.AsyncClient(base_url=f"http://{live}", timeout=5) as client:
        refused = await client.post("/graphql", json={"query": bomb}, headers=auth(token("SSC")))
        assert refused.status_code == 200
        error = refused.json()["errors"][0]
        assert "over the limit" in error["message"]
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert refused.json().get("data") is None
        after = await client.post("/graphql", json={"query": VIEWER}, headers=auth(token("SSC")))
        assert after.json() == {"data": {"viewer": {"partyId": "DEV-SSC"}}}
        assert (await client.get("/healthz")).status_code == 200


async def test_fragment_bomb_over_websocket_is_refused_like_over_http(live, token):
    bomb = fragment_bomb(40, on="Subscription", leaf="cplChanges { eventId }")
    async with subscribe(live, token("SSC"), bomb) as subscriber:
        message = await subscriber.next(within=5)
    assert message["type"] == "error"
    assert "over the limit" in message["payload"][0]["message"]


async def test_small_fragment_trees_still_run(gql):
    body = await gql("SSC", fragment_bomb(6))
    assert body == {"data": {"viewer": {"partyId": "DEV-SSC"}}}


async def test_cost_counts_page_sizes_from_variables(gql):
    query = """query($n: Int) { devices(first: $n) { nodes { firmware { upgradesTo { to {
      upgradesTo { history { changes { field } } } } } } } } }"""
    small = await gql("SSC", query, {"n": 5})
    assert "errors" not in small
    large = await gql("SSC", query, {"n": 500})
    assert "over the limit" in large["errors"][0]["message"]


async def test_a_page_size_within_one_that_passed_costs_no_measurement(gql, monkeypatch):
    """The cost only grows with a page size: a front-end paging with a size no larger than one
    that passed is not measured again, and a larger one still is (and still refused)."""
    query = """query($n: Int, $m: Int) { devices(first: $n) { nodes { firmware { upgradesTo {
      to { device { firmware { upgradesTo { to { upgradesTo { status } } } } } } } } } }
      a: devices(last: $m) { nodes { id } } }"""
    measured = count_calls(monkeypatch, schema.limits, "measure_cost")
    for n, m in ((20, 7), (3, 7), (19, 1), (20, 0)):
        assert "errors" not in await gql("SMALL_SUPPLIER", query, {"n": n, "m": m})
    assert measured[0] == 2  # the largest pages (over the limit here), then the sizes asked
    assert "errors" not in await gql("SMALL_SUPPLIER", query, {"n": 2, "m": None})
    assert measured[0] == 4  # an absent size is the field's default: not within a given one
    refused = await gql("SMALL_SUPPLIER", query, {"n": 500, "m": 7})
    assert "over the limit" in refused["errors"][0]["message"]
    assert measured[0] == 5  # the largest pages were measured already


async def test_a_document_that_passes_at_its_largest_pages_is_measured_once(gql, monkeypatch):
    """A paging front-end draws its sizes: when the largest page passes, none is measured
    again, whatever size comes (one beyond the largest is served as the largest)."""
    query = "query($n: Int, $after: String) { devices(first: $n, after: $after) { nodes { id } } }"
    measured = count_calls(monkeypatch, schema.limits, "measure_cost")
    for n in (10, 300, 5, 499, 500, 900, 0):
        assert "errors" not in await gql("SMALL_SUPPLIER", query, {"n": n, "after": None})
    assert measured[0] == 1


# 1b. A fragment chain forking under two aliases a level is refused before the policy pass
# (which the response cache's look-up also runs), and that pass is linear in the document anyway.
@pytest.mark.parametrize("cache", ["cache on", "cache off"])
@pytest.mark.parametrize("bomb", ["forking chain of 18", "fragment bomb of 40"])
async def test_bombs_are_refused_before_the_policy_pass_runs(
    client, token, services, monkeypatch, cache, bomb
):
    monkeypatch.setattr(services.responses, "max_bytes", 1_000_000 if cache == "cache on" else 0)
    decided = [
        count_calls(monkeypatch, module, "decide") for module in (server.graphql_view, enforcement)
    ]
    query = forking_chain(18) if bomb.startswith("forking") else fragment_bomb(40)
    response = await client.post(
        "/graphql", json={"query": query}, headers=auth(token("LARGE_SUPPLIER"))
    )
    assert response.status_code == 200
    body = response.json()
    assert body.get("data") is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["GRAPHQL_VALIDATION_FAILED"]
    assert decided == [[0], [0]]


def test_the_policy_pass_over_a_forking_chain_is_linear_in_its_levels(settings, monkeypatch):
    """Fields looked at for chains of 0, 9 and 18 levels: as many more from 9 to 18 as from 0
    to 9 (walked once a response path, the 18 levels were 2^18 walks)."""
    schema = build_schema()._schema
    visited = count_calls(monkeypatch, _Walk, "field")
    counts = []
    for levels in (0, 9, 18):
        visited[0] = 0
        document = valid_document(schema, forking_chain(levels), settings.max_query_tokens)
        decision = decide(schema, document, None, PartyCategory.LARGE_SUPPLIER)
        assert [d.key for d in decision.stand_ins.values()] == ["zigbeeChipsetVendor"]
        counts.append(visited[0])
    assert counts[2] - counts[1] == counts[1] - counts[0] == 9 * 4, counts


async def test_a_forking_chain_within_the_limits_is_denied_on_every_path(gql):
    """One null on each device of each path, one error for each path, at its first device."""
    supplier = await gql("LARGE_SUPPLIER", forking_chain(2))
    errors = supplier["errors"]
    assert {e["extensions"]["code"] for e in errors} == {"FORBIDDEN"}
    assert [[p for p in e["path"] if isinstance(p, str)] for e in errors] == [
        [
            "manufacturers",
            one,
            "manufacturer",
            two,
            "manufacturer",
            "devices",
            "zigbeeChipsetVendor",
        ]
        for one in "ab"
        for two in "ab"
    ]
    vendors = []

    def collect(value):
        if isinstance(value, list):
            for item in value:
                collect(item)
        elif isinstance(value, dict):
            vendors.extend(v for k, v in value.items() if k == "zigbeeChipsetVendor")
            for item in value.values():
                collect(item)

    collect(supplier["data"])
    assert vendors and set(vendors) == {None}
    ssc = await gql("SSC", forking_chain(2))
    assert "errors" not in ssc and "zigbeeChipsetVendor" in str(ssc)
    assert not any(secret in str(supplier) for secret in VENDORS)


# 2. A subscription ends when the token that opened it expires.
async def test_subscription_is_closed_with_4403_when_its_token_expires(live, isolated, token):
    verifier = isolated.services.verifier
    leeway, verifier.leeway = verifier.leeway, 0
    try:
        async with connect(f"ws://{live}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            payload = {"Authorization": f"Bearer {token('SMALL_SUPPLIER', ttl_seconds=2)}"}
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            await ws.send(
                json.dumps(
                    {
                        "id": "1",
                        "type": "subscribe",
                        "payload": {"query": "subscription { cplChanges { eventId } }"},
                    }
                )
            )
            # Closed by the expiry's own timer (its code and reason say so), whenever a busy
            # machine gets there: no clock is read here.
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
                    if message["type"] == "ping":
                        await ws.send(json.dumps({"type": "pong"}))
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4403, "token expired")
    finally:
        verifier.leeway = leeway


# 4. Bodies that are not UTF-8 JSON objects are 400, never a 500.
@pytest.mark.parametrize(
    "body",
    [b'{"query":"{ viewer { partyId } }\xff\xfe"}', b"null", b"42", b'"text"', b"[]", b"{"],
    ids=["not-utf8", "null", "number", "string", "array", "truncated"],
)
async def test_a_body_that_is_not_a_utf8_json_object_is_400(client, token, body):
    response = await client.post(
        "/graphql",
        content=body,
        headers={**auth(token("SSC")), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


# 5. A lone surrogate in the request's own members is a 400 naming the member, not a 500.
@pytest.mark.parametrize("member", ["query", "operationName"])
async def test_a_lone_surrogate_in_the_query_or_its_name_is_a_400(client, token, member):
    body = {"query": "query A { __typename }", "operationName": "A"}
    body[member] += "MARK"
    raw = json.dumps(body).replace("MARK", "\\ud800")
    response = await client.post(
        "/graphql",
        content=raw.encode(),
        headers={**auth(token("SSC")), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert f"`{member}`" in error["message"] and "Unicode" in error["message"]


# 5b. A lone surrogate in a String variable is a clear error and writes nothing.
async def test_a_lone_surrogate_in_a_variable_is_refused_and_writes_nothing(isolated, token):
    before = await isolated.scalar("SELECT count(*) FROM device")
    body = json.dumps(
        {
            "query": ADD_DEVICE,
            "variables": {
                "input": {
                    "manufacturerIdentifier": "0A1B",
                    "modelIdentifier": "7777",
                    "modelName": "Meter \\ud800",
                    "hardwareVersion": "0001",
                    "deviceType": "ESME",
                }
            },
        }
    ).replace("\\\\ud800", "\\ud800")
    response = await isolated.client.post(
        "/graphql",
        content=body.encode(),
        headers={**auth(token("SECAS")), "Content-Type": "application/json"},
    )
    assert response.status_code == 200
    error = response.json()["errors"][0]
    assert error["message"] != "Unexpected error."
    assert "input.modelName" in error["message"]
    assert await isolated.scalar("SELECT count(*) FROM device") == before


@pytest.mark.parametrize(
    "accept", ["application/json", "application/json, multipart/mixed", "multipart/mixed"]
)
async def test_a_subscription_sent_by_http_is_400(client, token, accept):
    """Subscriptions run over WebSocket only; asked for as a multipart stream alone, the answer
    is 406 (nothing this endpoint answers in is acceptable), never a stream."""
    response = await client.post(
        "/graphql",
        json={"query": "subscription { cplChanges { eventId } }"},
        headers={**auth(token("SSC")), "Accept": accept},
    )
    assert response.status_code == (406 if accept == "multipart/mixed" else 400)
    assert response.headers["content-type"] == "application/json"
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    if response.status_code == 400:
        assert "subscription" in response.json()["errors"][0]["message"]


# 6. An idempotent replay is authorised again, and keyed by the caller's whole identity.
async def test_idempotent_replay_does_not_cross_manufacturers_sharing_a_party_id(isolated):
    variables = {
        "input": {"deviceId": "device:1", "version": "5A5A0001", "idempotencyKey": "retry-1"}
    }
    own = await isolated.gql(
        "MANUFACTURER", ADD_FIRMWARE, variables, party_id="P-SHARED", manufacturer_id="0A1B"
    )
    assert own["data"]["addFirmware"]["__typename"] == "AddFirmwareSuccess"
    other = await isolated.gql(
        "MANUFACTURER", ADD_FIRMWARE, variables, party_id="P-SHARED", manufacturer_id="2C3D"
    )
    assert other["data"]["addFirmware"] is None
    assert other["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    again = await isolated.gql(
        "MANUFACTURER", ADD_FIRMWARE, variables, party_id="P-SHARED", manufacturer_id="0A1B"
    )
    assert again["data"] == own["data"]
    assert await isolated.scalar("SELECT count(*) FROM firmware WHERE version = '5A5A0001'") == 1


# 7. Token strings are not identities: a malleated signature is the same caller.
def malleate(token: str) -> str:
    header, payload, signature = token.split(".")
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    r, s = raw[:32], int.from_bytes(raw[32:], "big")
    flipped = r + (P256_ORDER - s).to_bytes(32, "big")
    return ".".join([header, payload, base64.urlsafe_b64encode(flipped).rstrip(b"=").decode()])


async def test_a_malleated_es256_token_is_the_same_caller_not_a_new_one(isolated, token):
    original = token("MANUFACTURER", party_id="P-MALLEABLE")
    twin = malleate(original)
    assert twin != original
    assert await isolated.services.verifier.verify(twin) == await isolated.services.verifier.verify(
        original
    )
    variables = {
        "input": {"deviceId": "device:1", "version": "5A5A0002", "idempotencyKey": "retry-2"}
    }
    results = []
    for bearer in (original, twin):
        response = await isolated.client.post(
            "/graphql",
            json={"query": ADD_FIRMWARE, "variables": variables},
            headers=auth(bearer),
        )
        results.append(response.json())
    assert results[0] == results[1]
    assert results[0]["data"]["addFirmware"]["__typename"] == "AddFirmwareSuccess"
    assert await isolated.scalar("SELECT count(*) FROM firmware WHERE version = '5A5A0002'") == 1


# 10. Production refuses to start without an identity provider, and never seeds or mints.
def cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("CPL_")
    } | {"CPL_DATA_DIR": str(tmp_path / "data"), **env}
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", [["serve"], ["token", "SSC"], ["seed", "--demo"], ["migrate"]])
def test_production_without_jwks_exits_2_before_touching_anything(tmp_path, command):
    result = cli(tmp_path, *command, CPL_ENV="production")
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "CPL_JWKS_URL" in result.stderr
    assert not (tmp_path / "data").exists()


def test_a_half_configured_identity_provider_exits_2_with_one_line(tmp_path):
    result = cli(tmp_path, "serve", CPL_OIDC_ISSUER="http://127.0.0.1:9")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "cpl-pathways: CPL_OIDC_ISSUER needs CPL_OIDC_CLIENT_ID and CPL_PUBLIC_URL"
    ]


def test_production_never_seeds_the_demo_cpl(tmp_path):
    production = {"CPL_ENV": "production", "CPL_JWKS_URL": "http://127.0.0.1:9/jwks.json"}
    seeded = cli(tmp_path, "seed", "--demo", **production)
    assert seeded.returncode == 1 and "never seeds" in seeded.stderr
    migrated = cli(tmp_path, "migrate", **production)
    assert migrated.returncode == 0, migrated.stderr
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "cpl-pathways.db") as db:
        assert db.execute("SELECT count(*) FROM device").fetchone() == (0,)
    assert not (tmp_path / "data" / "dev-signing-key.json").exists()


async def test_an_identity_provider_outage_is_503_with_retry_after(isolated, token):
    verifier = isolated.services.verifier
    down = TokenVerifier(
        JwksKeys("http://127.0.0.1:9/jwks.json", timeout=1),
        issuer=verifier.issuer,
        audience=verifier.audience,
    )
    isolated.services.verifier = down
    try:
        response = await isolated.client.post(
            "/graphql", json={"query": VIEWER}, headers=auth(token("SSC"))
        )
    finally:
        isolated.services.verifier = verifier
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"


# 11. The document has a limit of its own, far below the body limit.
async def test_a_query_over_the_document_limit_is_413_while_variables_may_be_large(
    client, token, settings
):
    huge = VIEWER + " " * 8_000_000
    refused = await client.post("/graphql", json={"query": huge}, headers=auth(token("SSC")))
    assert refused.status_code == 413
    assert refused.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert settings.max_query_bytes < 1_000_000 < settings.max_body_bytes
    items = [{"deviceId": "device:1", "firmwareVersion": "7F000000"}] * 20_000
    fleet = await client.post(
        "/graphql",
        json={
            "query": "query($i: [FleetItemInput!]!) { fleetPlan(items: $i) { summary { meters } }}",
            "variables": {"i": items},
        },
        headers=auth(token("SMALL_SUPPLIER")),
    )
    assert fleet.json() == {"data": {"fleetPlan": {"summary": {"meters": 20_000}}}}
