"""Bearer-token verification: what is accepted, and every way a token is turned away."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jws, jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from config.settings import Settings
from permissions.auth_errors import AuthenticationError, KeysUnavailableError
from permissions.dev_keys import issue_token, load_or_create_dev_key
from permissions.keys import JwksKeys, StaticKeys
from permissions.principal import PartyCategory, Principal
from permissions.tokens import TokenVerifier, bearer_token, verifier_for

ISSUER = "https://idp.test/"
AUDIENCE = "cpl-pathways"
JWKS_URL = "https://idp.test/.well-known/jwks.json"


# --- helpers -----------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "exp": now + 600,
        "iat": now,
        "party_id": "PARTY-42",
        "party_category": "LARGE_SUPPLIER",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: ECKey | RSAKey, payload: dict[str, Any], alg: str = "ES256", **header: Any) -> str:
    return jwt.encode({"alg": alg, "kid": key.kid, **header}, payload, key, algorithms=[alg])


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeIdP:
    """A JWKS endpoint behind httpx.MockTransport that counts its requests."""

    def __init__(self, *keys: ECKey | RSAKey) -> None:
        self.keys = list(keys)
        self.requests = 0
        self.fail = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == JWKS_URL
        self.requests += 1
        if self.fail:
            return httpx.Response(503)
        return httpx.Response(200, json=KeySet(self.keys).as_dict(private=False))

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handler))


@pytest.fixture(scope="module")
def ec_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"alg": "ES256", "use": "sig"}, auto_kid=True)


@pytest.fixture(scope="module")
def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})


@pytest.fixture
def verifier(ec_key: ECKey) -> TokenVerifier:
    return TokenVerifier(StaticKeys(KeySet([ec_key])), issuer=ISSUER, audience=AUDIENCE)


async def rejected(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(AuthenticationError) as info:
        await verifier.verify(token)
    reason = info.value.reason
    if token:
        assert token not in reason and token not in str(info.value)
    return reason


# --- accepted tokens ---------------------------------------------------------------------------


async def test_valid_es256_token_gives_full_principal(ec_key: ECKey, verifier: TokenVerifier):
    token = sign(
        ec_key,
        claims(sub="alice", party_category="MANUFACTURER", manufacturer_id="00af"),
    )
    principal = await verifier.verify(token)
    assert principal == Principal(
        sub="alice",
        party_id="PARTY-42",
        party_category=PartyCategory.MANUFACTURER,
        manufacturer_id="00AF",
    )


async def test_manufacturer_id_ignored_for_other_categories(ec_key, verifier):
    token = sign(ec_key, claims(party_category="SSC", manufacturer_id="zzzz"))
    principal = await verifier.verify(token)
    assert principal.party_category is PartyCategory.SSC
    assert principal.manufacturer_id is None


@pytest.mark.parametrize("category", list(PartyCategory))
async def test_every_party_category_accepted(ec_key, verifier, category):
    token = sign(ec_key, claims(party_category=category.value, manufacturer_id="1234"))
    assert (await verifier.verify(token)).party_category is category


async def test_rs256_via_jwks(rsa_key: RSAKey):
    idp = FakeIdP(rsa_key)
    async with idp.client() as client:
        keys = JwksKeys(JWKS_URL, client=client)
        verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)
        principal = await verifier.verify(sign(rsa_key, claims(), alg="RS256"))
    assert principal.party_category is PartyCategory.LARGE_SUPPLIER
    assert principal.sub == "user-1"
    assert idp.requests == 1


async def test_within_leeway_accepted(ec_key, verifier):
    token = sign(ec_key, claims(exp=int(time.time()) - 30))
    assert (await verifier.verify(token)).party_id == "PARTY-42"


# --- the Authorization header ------------------------------------------------------------------


def test_bearer_token_extracted():
    assert bearer_token("Bearer abc.def.ghi") == "abc.def.ghi"
    assert bearer_token("bearer   abc.def.ghi ") == "abc.def.ghi"


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "Bearer a b"]
)
def test_bearer_token_missing_or_wrong_scheme(header):
    with pytest.raises(AuthenticationError) as info:
        bearer_token(header)
    assert info.value.reason == "missing bearer token"


# --- rejected tokens ---------------------------------------------------------------------------


async def test_expired_beyond_leeway(ec_key, verifier):
    token = sign(ec_key, claims(exp=int(time.time()) - 120))
    assert await rejected(verifier, token) == "token expired"


@pytest.mark.parametrize("exp", [1e308, 2**62, "day+2h"])
async def test_a_token_that_lives_too_long_is_refused(ec_key, verifier, exp):
    # A token that never expires could never be taken back.
    if exp == "day+2h":
        exp = int(time.time()) + 86_400 + 7_200
    token = sign(ec_key, claims(exp=exp))
    assert await rejected(verifier, token) == "token lifetime too long"


async def test_a_day_long_token_is_accepted(ec_key, verifier):
    token = sign(ec_key, claims(exp=int(time.time()) + 86_400))
    assert (await verifier.verify(token)).party_id == "PARTY-42"


async def test_not_yet_valid(ec_key, verifier):
    token = sign(ec_key, claims(nbf=int(time.time()) + 300))
    assert await rejected(verifier, token) == "token not yet valid"


async def test_wrong_issuer(ec_key, verifier):
    assert await rejected(verifier, sign(ec_key, claims(iss="https://evil.test/"))) == (
        "wrong issuer"
    )


async def test_wrong_audience(ec_key, verifier):
    assert await rejected(verifier, sign(ec_key, claims(aud="someone-else"))) == "wrong audience"


@pytest.mark.parametrize("missing", ["iss", "aud", "exp", "sub"])
async def test_missing_registered_claim(ec_key, verifier, missing):
    assert await rejected(verifier, sign(ec_key, claims(**{missing: None}))) == (
        f"missing claims: {missing}"
    )


async def test_alg_none(ec_key, verifier):
    header = b64json({"alg": "none", "kid": ec_key.kid, "typ": "JWT"})
    token = f"{header}.{b64json(claims(party_category='SECAS'))}."
    assert await rejected(verifier, token) == "unsupported algorithm"


@pytest.mark.parametrize("alg", ["None", "NONE", "HS256", "ES384", "PS256", "RS512", "EdDSA"])
async def test_other_algorithms(ec_key, verifier, alg):
    header = b64json({"alg": alg, "kid": ec_key.kid})
    token = f"{header}.{b64json(claims())}.{b64url(b'x' * 64)}"
    assert await rejected(verifier, token) == "unsupported algorithm"


@pytest.mark.parametrize("secret_form", ["pem", "jwk"])
async def test_hs256_signed_with_public_key(ec_key, verifier, secret_form):
    if secret_form == "pem":
        secret = ec_key.as_pem(private=False)
    else:
        secret = json.dumps(ec_key.as_dict(private=False)).encode()
    signing_input = f"{b64json({'alg': 'HS256', 'kid': ec_key.kid})}.{b64json(claims())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64url(signature)}"
    assert await rejected(verifier, token) == "unsupported algorithm"


async def test_algorithm_checked_before_any_key_fetch(ec_key):
    idp = FakeIdP(ec_key)
    async with idp.client() as client:
        verifier = TokenVerifier(
            JwksKeys(JWKS_URL, client=client), issuer=ISSUER, audience=AUDIENCE
        )
        token = f"{b64json({'alg': 'none', 'kid': 'anything'})}.{b64json(claims())}."
        assert await rejected(verifier, token) == "unsupported algorithm"
    assert idp.requests == 0


async def test_unknown_kid(verifier):
    stranger = ECKey.generate_key("P-256", parameters={"kid": "stranger"})
    assert await rejected(verifier, sign(stranger, claims())) == "unknown signing key"


async def test_known_kid_wrong_key_fails_signature(ec_key, verifier):
    impostor = ECKey.generate_key("P-256", parameters={"kid": ec_key.kid})
    assert await rejected(verifier, sign(impostor, claims())) == "invalid signature"


async def test_missing_kid(ec_key, verifier):
    token = jwt.encode({"alg": "ES256"}, claims(), ec_key, algorithms=["ES256"])
    assert await rejected(verifier, token) == "missing key id"


async def test_rs256_header_with_ec_key(ec_key, verifier):
    header = b64json({"alg": "RS256", "kid": ec_key.kid})
    token = f"{header}.{b64json(claims())}.{b64url(b'x' * 256)}"
    assert await rejected(verifier, token) == "unsupported algorithm"


async def test_tampered_payload(ec_key, verifier):
    honest = sign(ec_key, claims(party_category="SMALL_SUPPLIER"))
    forged_payload = sign(ec_key, claims(party_category="SECAS")).split(".")[1]
    header, _, signature = honest.split(".")
    assert await rejected(verifier, f"{header}.{forged_payload}.{signature}") == (
        "invalid signature"
    )


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b", "a.b.c.d", "!!!.###.$$$", "eyJhbGciOiJFUzI1NiJ9", "é.é.é", "x" * 20_000],
)
async def test_malformed(verifier, token):
    assert await rejected(verifier, token) == "malformed token"


async def test_header_not_an_object(verifier):
    token = f"{b64url(b'[1,2]')}.{b64json(claims())}.{b64url(b'sig')}"
    assert await rejected(verifier, token) == "malformed token"


async def test_payload_not_json(ec_key, verifier):
    token = jws.serialize_compact(
        {"alg": "ES256", "kid": ec_key.kid}, b"not json", ec_key, algorithms=["ES256"]
    )
    assert await rejected(verifier, token) == "malformed token"


@pytest.mark.parametrize("category", ["ssc", "ADMIN", "", 7, None, ["SSC"]])
async def test_unknown_party_category(ec_key, verifier, category):
    reason = await rejected(verifier, sign(ec_key, claims(party_category=category)))
    expected = "missing party_category" if category is None else "invalid claims: party_category"
    assert reason == expected


async def test_manufacturer_without_manufacturer_id(ec_key, verifier):
    token = sign(ec_key, claims(party_category="MANUFACTURER"))
    assert await rejected(verifier, token) == "missing manufacturer_id"


@pytest.mark.parametrize(
    "bad", ["12345", "123", "12G4", " 1234", "1234\n", "\uff10\uff11\uff12\uff13", 1234, ["1234"]]
)
async def test_manufacturer_with_bad_manufacturer_id(ec_key, verifier, bad):
    token = sign(ec_key, claims(party_category="MANUFACTURER", manufacturer_id=bad))
    assert await rejected(verifier, token) == "invalid claims: manufacturer_id"


async def test_missing_party_id(ec_key, verifier):
    assert await rejected(verifier, sign(ec_key, claims(party_id=None))) == "missing party_id"


@pytest.mark.parametrize("bad", ["", "   ", 42, ["P"], "P\x00Q", "P\nQ"])
async def test_invalid_party_id(ec_key, verifier, bad):
    assert await rejected(verifier, sign(ec_key, claims(party_id=bad))) == (
        "invalid claims: party_id"
    )


@pytest.mark.parametrize("bad", ["user\x00", "user\r\n1", "u" * 201])
async def test_invalid_sub(ec_key, verifier, bad):
    """Whatever the audit log could not store: the token is refused, not the log's batch."""
    assert await rejected(verifier, sign(ec_key, claims(sub=bad))) == "invalid claims: sub"


async def test_a_sub_may_be_any_printable_text(ec_key, verifier):
    principal = await verifier.verify(sign(ec_key, claims(sub="Åsa Öberg (SSC) ✓")))
    assert principal.sub == "Åsa Öberg (SSC) ✓"


async def test_reason_does_not_echo_claim_values(ec_key, verifier):
    secret = "s3cr3t-party-value"
    reason = await rejected(verifier, sign(ec_key, claims(party_category=secret)))
    assert secret not in reason


def test_leeway_capped_at_sixty_seconds(ec_key):
    with pytest.raises(ValueError):
        TokenVerifier(StaticKeys(KeySet([ec_key])), issuer=ISSUER, audience=AUDIENCE, leeway=61)


async def test_static_keys_hold_only_public_keys(ec_key):
    key_set = await StaticKeys(KeySet([ec_key])).get_key_set()
    assert [k.kid for k in key_set] == [ec_key.kid]
    assert all(not k.is_private for k in key_set)


# --- JWKS fetching -----------------------------------------------------------------------------


async def test_unknown_kid_triggers_one_rate_limited_refetch(ec_key):
    idp = FakeIdP(ec_key)
    clock = FakeClock()
    async with idp.client() as client:
        keys = JwksKeys(JWKS_URL, client=client, min_refresh_interval=30.0, clock=clock)
        verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)

        assert (await verifier.verify(sign(ec_key, claims()))).party_id == "PARTY-42"
        assert idp.requests == 1

        clock.now += 31
        first = ECKey.generate_key("P-256", parameters={"kid": "random-1"})
        assert await rejected(verifier, sign(first, claims())) == "unknown signing key"
        assert idp.requests == 2  # exactly one refetch

        clock.now += 5
        second = ECKey.generate_key("P-256", parameters={"kid": "random-2"})
        assert await rejected(verifier, sign(second, claims())) == "unknown signing key"
        assert idp.requests == 2  # within the interval: none

        # Known kids keep working from the cache without any fetch.
        await verifier.verify(sign(ec_key, claims()))
        assert idp.requests == 2


async def test_key_rotation_picked_up(ec_key, rsa_key):
    idp = FakeIdP(ec_key)
    clock = FakeClock()
    async with idp.client() as client:
        keys = JwksKeys(JWKS_URL, client=client, min_refresh_interval=30.0, clock=clock)
        verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)
        await verifier.verify(sign(ec_key, claims()))
        assert idp.requests == 1

        idp.keys = [rsa_key]  # the IdP rotates to a new key
        clock.now += 60
        principal = await verifier.verify(sign(rsa_key, claims(sub="rotated"), alg="RS256"))
        assert principal.sub == "rotated"
        assert idp.requests == 2

        # The retired key is gone once the set has been refreshed.
        assert await rejected(verifier, sign(ec_key, claims())) == "unknown signing key"
        assert idp.requests == 2


async def test_concurrent_refetches_coalesce(ec_key):
    idp = FakeIdP(ec_key)
    clock = FakeClock()
    async with idp.client() as client:
        keys = JwksKeys(JWKS_URL, client=client, clock=clock)
        verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)
        tokens = [sign(ec_key, claims()) for _ in range(20)]
        results = await asyncio.gather(*(verifier.verify(t) for t in tokens))
        assert len(results) == 20
        assert idp.requests == 1

        clock.now += 100
        strangers = [
            sign(ECKey.generate_key("P-256", parameters={"kid": f"s{i}"}), claims())
            for i in range(20)
        ]
        outcomes = await asyncio.gather(
            *(verifier.verify(t) for t in strangers), return_exceptions=True
        )
        assert all(isinstance(o, AuthenticationError) for o in outcomes)
        assert idp.requests == 2


async def test_jwks_ignores_unusable_keys_and_private_material(ec_key):
    p384 = ECKey.generate_key("P-384", parameters={"kid": "p384"})
    enc = ECKey.generate_key("P-256", parameters={"kid": "enc", "use": "enc"})
    leaked = ECKey.generate_key("P-256", parameters={"kid": "leaked"})
    document = {
        "keys": [
            {"kty": "oct", "kid": "hmac", "k": b64url(b"public key bytes")},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": b64url(b"\x00" * 32)},
            {"kty": "PQC", "kid": "future"},
            p384.as_dict(private=False),
            enc.as_dict(private=False),
            leaked.as_dict(private=True),
            ec_key.as_dict(private=False),
            "not a key",
        ]
    }
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=document))
    async with httpx.AsyncClient(transport=transport) as client:
        key_set = await JwksKeys(JWKS_URL, client=client).get_key_set()
    assert sorted(k.kid for k in key_set) == sorted(["leaked", ec_key.kid])
    assert all(not k.is_private for k in key_set)


async def test_jwks_outage_without_cache_is_unavailable_and_rate_limited(ec_key):
    idp = FakeIdP(ec_key)
    idp.fail = True
    clock = FakeClock()
    async with idp.client() as client:
        verifier = TokenVerifier(
            JwksKeys(JWKS_URL, client=client, clock=clock), issuer=ISSUER, audience=AUDIENCE
        )
        token = sign(ec_key, claims())
        with pytest.raises(KeysUnavailableError):
            await verifier.verify(token)
        with pytest.raises(KeysUnavailableError):
            await verifier.verify(token)
        assert idp.requests == 1

        idp.fail = False
        clock.now += 31
        assert (await verifier.verify(token)).sub == "user-1"
        assert idp.requests == 2


async def test_jwks_outage_keeps_cached_keys(ec_key):
    idp = FakeIdP(ec_key)
    clock = FakeClock()
    async with idp.client() as client:
        keys = JwksKeys(JWKS_URL, client=client, clock=clock, max_age=60)
        verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)
        await verifier.verify(sign(ec_key, claims()))
        idp.fail = True
        clock.now += 120  # stale: a refetch is attempted, fails, and the old set is kept
        await verifier.verify(sign(ec_key, claims()))
        assert idp.requests == 2


# --- the development issuer --------------------------------------------------------------------


def test_dev_key_created_private_and_reused(tmp_path: Path):
    path = tmp_path / "nested" / "dir" / "dev-signing-key.json"
    key = load_or_create_dev_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key.is_private and key.get("crv") == "P-256" and key.kid
    assert json.loads(path.read_text())["kid"] == key.kid
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind

    again = load_or_create_dev_key(path)
    assert again.kid == key.kid
    assert again.as_dict(private=True) == key.as_dict(private=True)


def test_dev_key_creation_race_converges(tmp_path: Path, monkeypatch):
    """If another process publishes its key first, this one adopts it."""
    path = tmp_path / "key.json"
    winner = load_or_create_dev_key(tmp_path / "winner.json")

    import permissions.dev_keys as dev_keys

    real_link = dev_keys.os.link

    def racing_link(src, dst):
        (tmp_path / "winner.json").rename(dst)
        return real_link(src, dst)

    monkeypatch.setattr(dev_keys.os, "link", racing_link)
    key = load_or_create_dev_key(path)
    assert key.kid == winner.kid
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.json"]


async def test_issued_dev_token_verifies(tmp_path: Path):
    settings = Settings(
        data_dir=tmp_path,
        database_url="sqlite+aiosqlite://",
        jwks_url=None,
        issuer="cpl-pathways-dev",
        audience="cpl-pathways",
        environment="development",
    )
    verifier = verifier_for(settings)
    key = load_or_create_dev_key(settings.dev_key_path)
    token = issue_token(
        key,
        issuer=settings.issuer,
        audience=settings.audience,
        category=PartyCategory.MANUFACTURER,
        manufacturer_id="beef",
    )
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["kid"] == key.kid
    assert await verifier.verify(token) == Principal(
        sub="DEV-MANUFACTURER",
        party_id="DEV-MANUFACTURER",
        party_category=PartyCategory.MANUFACTURER,
        manufacturer_id="BEEF",
    )

    token = issue_token(
        key,
        issuer=settings.issuer,
        audience=settings.audience,
        category=PartyCategory.NETWORK_PARTY,
        party_id="NP-1",
        sub="operator",
    )
    assert await verifier.verify(token) == Principal(
        sub="operator", party_id="NP-1", party_category=PartyCategory.NETWORK_PARTY
    )

    elsewhere = issue_token(
        key, issuer=settings.issuer, audience="elsewhere", category=PartyCategory.SSC
    )
    assert await rejected(verifier, elsewhere) == "wrong audience"


def test_verifier_for_jwks_settings(tmp_path: Path):
    settings = Settings(
        data_dir=tmp_path,
        database_url="sqlite+aiosqlite://",
        jwks_url=JWKS_URL,
        issuer=ISSUER,
        audience=AUDIENCE,
        environment="production",
    )
    verifier = verifier_for(settings)
    assert isinstance(verifier.keys, JwksKeys)
    assert not settings.dev_key_path.exists()


def test_verifier_for_refuses_dev_issuer_in_production(tmp_path: Path):
    settings = Settings(
        data_dir=tmp_path,
        database_url="sqlite+aiosqlite://",
        jwks_url=None,
        issuer="cpl-pathways-dev",
        audience="cpl-pathways",
        environment="production",
    )
    with pytest.raises(RuntimeError):
        verifier_for(settings)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"category": PartyCategory.MANUFACTURER}, "manufacturer_id"),
        ({"category": PartyCategory.MANUFACTURER, "manufacturer_id": "12345"}, "4 hex"),
        ({"category": PartyCategory.MANUFACTURER, "manufacturer_id": "XYZW"}, "4 hex"),
        ({"category": PartyCategory.SSC, "manufacturer_id": "1234"}, "MANUFACTURER"),
        ({"category": PartyCategory.SSC, "party_id": ""}, "party_id"),
        ({"category": PartyCategory.SSC, "ttl_seconds": 0}, "ttl_seconds"),
    ],
)
def test_issue_token_rejects_unusable_arguments(ec_key, kwargs, message):
    with pytest.raises(ValueError, match=message):
        issue_token(ec_key, issuer=ISSUER, audience=AUDIENCE, **kwargs)
