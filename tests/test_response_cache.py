"""The response cache cannot leak: keyed by what the policy lets each caller see, by who asks
where the answer depends on it, and by the data revision; plus APQ and HTTP revalidation."""

from __future__ import annotations

import hashlib
import json

import pytest

from models.demo import STACKS, VENDORS
from permissions.policy import capability
from permissions.principal import PartyCategory

DEVICES = (
    "{ devices(first: 50) { nodes { id zigbeeBand zigbeeChipsetVendor zigbeeStackVersion } } }"
)
FIRMWARE = "query($d: ID!) { device(id: $d) { firmware { version } } }"
ADD_FIRMWARE = """mutation($v: String!) { addFirmware(input: { deviceId: "device:3", version: $v })
  { __typename } }"""
SECRETS = [*VENDORS, *STACKS]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def leaks(body: object) -> list[str]:
    return [secret for secret in SECRETS if secret in str(body)]


@pytest.mark.parametrize("order", [("SMALL_SUPPLIER", "SSC"), ("SSC", "SMALL_SUPPLIER")])
async def test_a_cached_answer_never_crosses_what_the_policy_hides(isolated, order):
    answers = {}
    for category in (*order, *order):  # each twice: the second is served from the cache
        answers.setdefault(category, []).append(await isolated.gql(category, DEVICES))
    supplier, ssc = answers["SMALL_SUPPLIER"], answers["SSC"]
    assert supplier[0] == supplier[1] and ssc[0] == ssc[1]
    assert not leaks(supplier) and len(supplier[0]["errors"]) == 2
    assert "errors" not in ssc[0] and leaks(ssc)
    assert isolated.services.responses.hits >= 2


async def test_categories_with_the_same_capability_share_one_entry(isolated):
    # Suppliers are granted their own fleets (`OWN_FLEET`), the other two Parties are not.
    query = '{ device(id: "device:2") { modelName zigbeeBand } }'
    for first, second in (
        ("LARGE_SUPPLIER", "SMALL_SUPPLIER"),
        ("NETWORK_PARTY", "OTHER_SEC_PARTY"),
    ):
        assert capability(PartyCategory(first)) == capability(PartyCategory(second))
        await isolated.gql(first, query)
        hits = isolated.services.responses.hits
        await isolated.gql(second, query)
        assert isolated.services.responses.hits == hits + 1


async def test_viewer_answers_never_cross_parties(isolated):
    query = "{ viewer { partyId partyCategory manufacturerIdentifier } }"
    for _ in range(2):
        for party in ("P-ONE", "P-TWO"):
            body = await isolated.gql("MANUFACTURER", query, party_id=party, manufacturer_id="0A1B")
            assert body["data"]["viewer"]["partyId"] == party
        other = await isolated.gql("MANUFACTURER", query, party_id="P-ONE", manufacturer_id="2C3D")
        assert other["data"]["viewer"]["manufacturerIdentifier"] == "2C3D"


async def test_webhook_answers_are_never_cached(isolated):
    register = """mutation($u: String!) { registerWebhook(input: { url: $u }) {
      ... on RegisterWebhookSuccess { webhook { id } } } }"""
    listed = "{ webhooks { url } }"
    assert (await isolated.gql("LARGE_SUPPLIER", listed, party_id="P-HOOKS"))["data"] == {
        "webhooks": []
    }
    await isolated.gql(
        "LARGE_SUPPLIER", register, {"u": "http://127.0.0.1:9/in"}, party_id="P-HOOKS"
    )
    mine = await isolated.gql("LARGE_SUPPLIER", listed, party_id="P-HOOKS")
    assert mine["data"] == {"webhooks": [{"url": "http://127.0.0.1:9/in"}]}
    theirs = await isolated.gql("LARGE_SUPPLIER", listed, party_id="P-OTHER")
    assert theirs["data"] == {"webhooks": []}


async def test_a_committed_write_is_in_the_next_answer(isolated):
    before = await isolated.gql("SMALL_SUPPLIER", FIRMWARE, {"d": "device:3"})
    assert await isolated.gql("SMALL_SUPPLIER", FIRMWARE, {"d": "device:3"}) == before
    added = await isolated.gql("SECAS", ADD_FIRMWARE, {"v": "CACE0001"})
    assert added["data"]["addFirmware"]["__typename"] == "AddFirmwareSuccess"
    after = await isolated.gql("SMALL_SUPPLIER", FIRMWARE, {"d": "device:3"})
    versions = [f["version"] for f in after["data"]["device"]["firmware"]]
    assert "CACE0001" in versions and after != before


async def test_a_cache_of_zero_bytes_is_off(isolated, monkeypatch):
    """Off: no look-up, nothing stored, however often a query comes; the same three requests
    with the cache on are one miss, one entry and two hits (so the counts below can move)."""
    responses = isolated.services.responses

    def state() -> tuple[int, int, int]:
        return responses.hits, responses.misses, responses.size

    hits, misses, size = state()
    with monkeypatch.context() as off:
        off.setattr(responses, "max_bytes", 0)
        for _ in range(3):
            await isolated.gql("SMALL_SUPPLIER", DEVICES)
        assert state() == (hits, misses, size)
    for _ in range(3):
        await isolated.gql("SMALL_SUPPLIER", DEVICES)
    assert state()[:2] == (hits + 2, misses + 1) and state()[2] > size


async def test_variables_and_operation_names_are_part_of_the_key(isolated):
    one = await isolated.gql("SMALL_SUPPLIER", FIRMWARE, {"d": "device:1"})
    two = await isolated.gql("SMALL_SUPPLIER", FIRMWARE, {"d": "device:2"})
    assert one != two


async def test_unexpected_errors_are_never_cached(isolated, monkeypatch):
    from resolvers.reads.loaders import Loaders

    query = '{ device(id: "device:4") { manufacturer { name } } }'

    def broken(self, rows, loader, key):
        raise RuntimeError("boom")

    monkeypatch.setattr(Loaders, "one", broken)
    failed = await isolated.gql("SMALL_SUPPLIER", query)
    assert failed["errors"][0]["message"] == "Unexpected error."
    monkeypatch.undo()
    healed = await isolated.gql("SMALL_SUPPLIER", query)
    assert "errors" not in healed and healed["data"]["device"]["manufacturer"]["name"]


# Automatic persisted queries and HTTP revalidation, as Apollo Client and urql send them.
def persisted(query: str) -> dict:
    digest = hashlib.sha256(query.encode()).hexdigest()
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


async def test_persisted_query_miss_then_registration_then_hit_by_get(isolated):
    query = '{ device(id: "device:5") { modelName } }'
    headers = auth(isolated.token("SMALL_SUPPLIER"))
    miss = await isolated.client.post(
        "/graphql", json={"extensions": persisted(query)}, headers=headers
    )
    assert miss.status_code == 200
    assert miss.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    registered = await isolated.client.post(
        "/graphql", json={"query": query, "extensions": persisted(query)}, headers=headers
    )
    expected = registered.json()
    assert expected["data"]["device"]["modelName"]
    hit = await isolated.client.get(
        "/graphql", params={"extensions": json.dumps(persisted(query))}, headers=headers
    )
    assert hit.status_code == 200 and hit.json() == expected


async def test_a_persisted_query_hash_must_match_its_document(isolated):
    response = await isolated.client.post(
        "/graphql",
        json={"query": "{ viewer { partyId } }", "extensions": persisted("{ other }")},
        headers=auth(isolated.token("SMALL_SUPPLIER")),
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_get_answers_carry_an_etag_and_304_when_unchanged(isolated):
    headers = auth(isolated.token("SMALL_SUPPLIER"))
    params = {"query": FIRMWARE, "variables": '{"d": "device:6"}'}
    first = await isolated.client.get("/graphql", params=params, headers=headers)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, no-cache"
    same = await isolated.client.get(
        "/graphql", params=params, headers={**headers, "If-None-Match": etag}
    )
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == etag
    ssc = await isolated.client.get(
        "/graphql",
        params=params,
        headers={**auth(isolated.token("SSC")), "If-None-Match": etag},
    )
    assert ssc.status_code == 200 and ssc.headers["etag"] != etag
    await isolated.gql("SECAS", ADD_FIRMWARE, {"v": "CACE0002"})
    changed = await isolated.client.get(
        "/graphql", params=params, headers={**headers, "If-None-Match": etag}
    )
    assert changed.status_code == 200 and changed.headers["etag"] != etag


async def test_identical_misses_at_once_are_executed_once(isolated, monkeypatch):
    import asyncio

    import permissions.strawberry_adapter as enforcement

    executions = []
    original = enforcement.apply_denials

    def counted(denials, result):
        executions.append(1)
        return original(denials, result)

    monkeypatch.setattr(enforcement, "apply_denials", counted)
    query = '{ device(id: "device:7") { modelName firmware { version } } }'
    answers = await asyncio.gather(*(isolated.gql("NETWORK_PARTY", query) for _ in range(8)))
    assert all(answer == answers[0] for answer in answers) and "errors" not in answers[0]
    assert executions == [1]


async def test_unique_large_variables_cannot_grow_the_cache_past_its_budget(isolated):
    # Each request's variables are unique and large; the key keeps hashes of them, and every
    # entry is counted with its key, so the store stays within its byte budget.
    from schema.response_cache import ENTRY_BYTES

    responses = isolated.services.responses
    responses.max_bytes = 40 * ENTRY_BYTES
    for n in range(120):
        body = await isolated.gql("SMALL_SUPPLIER", "{ __typename }", {"pad": f"{n}" * 50_000})
        assert body == {"data": {"__typename": "Query"}}
    assert responses.size <= responses.max_bytes
    assert 0 < len(responses._entries) < 40
    for key in responses._entries:
        assert len(repr(key)) < 400  # hashes, not the 50-250 KB variables
