"""ETags tell a client nothing it could not work out for itself: each is an HMAC of the cache
key under a key the processes share (`server.app.etag_key`), never a hash a client can
recompute by trying data revisions; processes with the same secret tag one answer alike, so
`If-None-Match` holds across them, and another secret tags it otherwise."""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import replace

from permissions.document_policy import decide
from schema.build import build_schema
from schema.documents import valid_document
from schema.response_cache import operation_key, sha256
from server.app import create_app, create_services, etag_key
from tests.harness import asgi_client

QUERY = '{ device(id: "device:2") { modelName firmware { version } } }'


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_an_etag_is_no_hash_a_client_can_work_out(isolated):
    token = isolated.token("SMALL_SUPPLIER")
    answer = await isolated.client.get("/graphql", params={"query": QUERY}, headers=auth(token))
    tag = answer.headers["etag"].strip('"')
    services = isolated.services
    revision = await services.revision.current()
    assert revision <= 1000  # among the revisions a client would try below

    # Everything but the revision is the client's to know: its document, its category's rules.
    principal = await services.verifier.verify(token)
    schema = build_schema(services.settings)._schema
    document = valid_document(schema, QUERY, services.settings.max_query_tokens)
    decision = decide(schema, document, None, principal.party_category)
    assert decision is not None
    operation = operation_key(sha256(QUERY), None, None, principal, decision)
    guesses = set()
    for tried in range(1001):
        for key in ((tried, *operation), (tried, *operation, None)):
            digest = hashlib.sha256(repr(key).encode()).hexdigest()
            guesses |= {digest, digest[:32], hashlib.blake2b(repr(key).encode()).hexdigest()[:32]}
    assert tag not in guesses

    # What it is: the key's HMAC under the key the processes share (here the development
    # issuer's, as no CPL_SESSION_SECRET is set).
    shared = etag_key(services.settings)
    key = repr((revision, *operation, None)).encode()
    assert tag == hmac.new(shared, key, hashlib.sha256).hexdigest()[:32]


async def test_processes_with_one_secret_tag_an_answer_alike(settings, own_database, token):
    """Two app instances on one database stand for two processes behind a load balancer: with
    one secret, each confirms the other's tag; with another, neither does."""
    base = replace(settings, database_url=own_database)
    secrets = {"a": "one secret", "b": "one secret", "c": "another secret"}
    services = {
        name: create_services(replace(base, session_secret=s)) for name, s in secrets.items()
    }
    headers = auth(token("NETWORK_PARTY"))
    try:
        tags = {}
        for name, own in services.items():
            async with asgi_client(create_app(own.settings, own)) as client:
                first = await client.get("/graphql", params={"query": QUERY}, headers=headers)
                tags[name] = first.headers["etag"]
        assert tags["a"] == tags["b"] != tags["c"]
        async with asgi_client(create_app(services["b"].settings, services["b"])) as client:
            again = {**headers, "If-None-Match": tags["a"]}
            confirmed = await client.get("/graphql", params={"query": QUERY}, headers=again)
        assert confirmed.status_code == 304 and confirmed.headers["etag"] == tags["a"]
        async with asgi_client(create_app(services["c"].settings, services["c"])) as client:
            crossed = await client.get("/graphql", params={"query": QUERY}, headers=again)
        assert crossed.status_code == 200 and crossed.headers["etag"] == tags["c"]
    finally:
        for own in services.values():
            await own.engine.dispose()


def test_the_etag_key_comes_from_what_the_processes_already_share(settings, caplog):
    secret = replace(settings, session_secret="one secret")
    assert etag_key(secret) == etag_key(replace(secret))
    assert etag_key(secret) != etag_key(replace(settings, session_secret="another secret"))
    assert etag_key(secret) != b"one secret"  # derived, never the sign-in secret itself
    # No session secret: the development issuer's key, which every process on the data
    # directory reads, so they agree.
    assert etag_key(settings) == etag_key(replace(settings)) != etag_key(secret)
    # Neither (an identity provider's tokens, no sign-in secret): each process its own key,
    # and a production process says what that costs.
    idp = replace(settings, jwks_url="https://idp.example/jwks", environment="production")
    with caplog.at_level(logging.WARNING, logger="cpl_pathways"):
        assert etag_key(idp) != etag_key(idp)
    assert [r.message for r in caplog.records if "CPL_SESSION_SECRET" in r.message] == [
        "CPL_SESSION_SECRET is not set: ETags are this process's own, so If-None-Match is "
        "confirmed only by the process that answered"
    ] * 2
