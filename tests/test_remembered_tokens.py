"""A verified token is remembered, and accepted again without its signature checked again,
exactly while verifying it again would accept it: its times, its key still published."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from permissions import tokens
from permissions.keys import JwksKeys, StaticKeys
from permissions.tokens import TokenVerifier
from tests.test_tokens import (
    AUDIENCE,
    ISSUER,
    JWKS_URL,
    FakeClock,
    FakeIdP,
    claims,
    rejected,
    sign,
)


@pytest.fixture(scope="module")
def key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"alg": "ES256", "use": "sig"}, auto_kid=True)


@pytest.fixture
def verifier(key: ECKey) -> TokenVerifier:
    return TokenVerifier(StaticKeys(KeySet([key])), issuer=ISSUER, audience=AUDIENCE)


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens whose signature is checked (joserfc's `jwt.decode`), in order."""
    seen: list[str] = []
    decode = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    return seen


def at(monkeypatch: pytest.MonkeyPatch, moment: float) -> None:
    monkeypatch.setattr(time, "time", lambda: moment)


async def test_a_verified_token_is_not_checked_again(key, verifier, checked):
    token = sign(key, claims())
    first = await verifier.verify(token)
    again = await verifier.verify(token)
    assert again == first and again.expires_at == first.expires_at
    assert checked == [token]


async def test_a_remembered_token_expires_as_any(key, verifier, checked, monkeypatch):
    now = int(time.time())
    token = sign(key, claims(exp=now + 10))
    await verifier.verify(token)
    at(monkeypatch, now + 10 + 59.9)  # within the 60 s of leeway
    assert (await verifier.verify(token)).party_id == "PARTY-42"
    assert checked == [token]
    at(monkeypatch, now + 10 + 60)
    assert await rejected(verifier, token) == "token expired"
    assert checked == [token, token]  # verified again, which says why not


async def test_a_clock_set_back_before_nbf_refuses_it_again(key, verifier, monkeypatch):
    now = int(time.time())
    token = sign(key, claims(nbf=now + 30, iat=None))  # within the leeway: good now
    await verifier.verify(token)
    at(monkeypatch, now - 100)
    assert await rejected(verifier, token) == "token not yet valid"


async def test_a_remembered_token_whose_key_is_withdrawn_is_refused(key, checked):
    other = RSAKey.generate_key(2048, parameters={"kid": "rsa-2"})
    idp, clock = FakeIdP(key), FakeClock()
    async with idp.client() as client:
        keys = JwksKeys(JWKS_URL, client=client, clock=clock, max_age=3600)
        verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)
        token = sign(key, claims())
        await verifier.verify(token)
        await verifier.verify(token)
        assert checked == [token]
        idp.keys = [other]  # the issuer stops publishing the key
        clock.now += 3600  # and the key set is fetched again
        assert await rejected(verifier, token) == "unknown signing key"
        assert idp.requests == 2


async def test_only_verified_tokens_are_remembered_so_many(key, checked, monkeypatch):
    monkeypatch.setattr(tokens, "REMEMBERED_TOKENS", 3)
    verifier = TokenVerifier(StaticKeys(KeySet([key])), issuer=ISSUER, audience=AUDIENCE)
    issued = [sign(key, claims(sub=f"user-{n}")) for n in range(4)]
    for token in issued:
        await verifier.verify(token)
    await verifier.verify(issued[3])  # remembered
    await verifier.verify(issued[0])  # the least recently used, forgotten
    assert checked == [*issued, issued[0]]

    header, payload, signature = issued[1].split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    for _ in range(2):
        assert await rejected(verifier, forged) in ("invalid signature", "invalid token")
    assert checked[-2:] == [forged, forged]
