"""Bearer tokens in, a verified `Principal` out.

Every request carries `Authorization: Bearer <JWT>`. A token is accepted only when:

* its header names an allow-listed algorithm (ES256 or RS256; `none`, HS256 and everything else
  are refused before any key is looked up, so a public key can never be used as an HMAC secret);
* its `kid` names a key the configured issuer publishes (a JWKS endpoint, or the development
  key this server generated for itself);
* the signature verifies, and `iss`, `aud`, `exp` and `sub` are present and right, with at most
  60 seconds of clock leeway;
* the SEC claims make sense: a non-empty `party_id`, one of the seven `party_category` values and,
  for a MANUFACTURER, a `manufacturer_id` of exactly four hex digits.

Failures raise `AuthenticationError` with a short, fixed `reason` that is safe to log and to send
back: it never contains the token or a claim's value. Tokens themselves are never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final, Protocol

import httpx
from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidPayloadError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import ECKey, Key, KeySet, RSAKey

from models.codes import IDENTIFIER_DIGITS, hex_code

from .principal import PartyCategory, Principal

if TYPE_CHECKING:
    from settings import Settings

__all__ = [
    "ALLOWED_ALGORITHMS",
    "MAX_LEEWAY_SECONDS",
    "AuthenticationError",
    "JwksKeys",
    "KeyProvider",
    "KeysUnavailableError",
    "StaticKeys",
    "TokenVerifier",
    "bearer_token",
    "normalise_manufacturer_id",
    "principal_from_claims",
    "public_key_set",
    "verifier_for",
]

logger = logging.getLogger(__name__)

#: The only signature algorithms a token may use. Order matters nowhere.
ALLOWED_ALGORITHMS: Final[tuple[str, ...]] = ("ES256", "RS256")
#: Clock skew tolerated on `exp`, `nbf` and `iat`.
MAX_LEEWAY_SECONDS: Final = 60
#: Longest token (in characters) worth parsing; real ones are well under 2 KB.
MAX_TOKEN_LENGTH: Final = 8_192
#: Largest JWKS document accepted from the identity provider.
MAX_JWKS_BYTES: Final = 256 * 1024
#: Smallest RSA modulus accepted from a JWKS.
MIN_RSA_BITS: Final = 2048

_MAX_PARTY_ID_LENGTH: Final = 200  # the width of the actor columns of the audit log
# Claim names that may appear in a reason; anything else becomes "invalid claims".
_NAMED_CLAIMS: Final = frozenset({"sub", "iss", "aud", "exp", "nbf", "iat", "jti"})
_PRIVATE_JWK_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class AuthenticationError(Exception):
    """The caller could not be authenticated.

    `reason` is a short fixed phrase ("token expired", "invalid signature", ...): it never quotes
    the token or any claim value, so it is safe to log and to return in a 401 response.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeysUnavailableError(AuthenticationError):
    """The issuer's keys could not be fetched (an IdP outage rather than a bad token).

    A subclass so callers that only care about "authenticated or not" need not distinguish it,
    while an HTTP layer may choose to answer 503 instead of 401.
    """

    def __init__(self, reason: str = "signing keys unavailable") -> None:
        super().__init__(reason)


def normalise_manufacturer_id(value: object) -> str:
    """Return a manufacturer id as four upper-case hex digits, or raise `ValueError`."""
    # A claim is taken as sent: ASCII hex digits in either case and no spaces (for other text,
    # `upper()` could make hex digits of what are none, as it makes "FF" of the ligature "ﬀ").
    code = None
    if isinstance(value, str) and value.isascii():
        code = hex_code(value, IDENTIFIER_DIGITS)
    if code is None:
        raise ValueError("manufacturer_id must be exactly 4 hexadecimal digits")
    return code


def bearer_token(authorization_header: str | None) -> str:
    """Extract the token from an `Authorization: Bearer <token>` header value."""
    if not authorization_header:
        raise AuthenticationError("missing bearer token")
    scheme, _, token = authorization_header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthenticationError("missing bearer token")
    return token


# --- key providers -----------------------------------------------------------------------------


class KeyProvider(Protocol):
    """Where a verifier gets the issuer's public keys from."""

    async def get_key_set(self, *, refresh: bool = False) -> KeySet:
        """The current key set; `refresh=True` asks for a fresh copy (a provider may decline)."""
        ...


def _public_signing_key(data: Mapping[str, Any]) -> Key | None:
    """Import one JWK as a public verification key, or None if it is unusable here.

    Only EC P-256 and RSA (>= 2048 bit) keys whose `alg`/`use`, when given, fit ES256/RS256 and
    signing are kept. Private members are dropped before import, so a provider that mistakenly
    publishes a private key still only ever yields a public one.
    """
    if not isinstance(data, Mapping):
        return None
    kty = data.get("kty")
    alg = data.get("alg")
    use = data.get("use")
    kid = data.get("kid")
    if alg is not None and alg not in ALLOWED_ALGORITHMS:
        return None
    if use is not None and use != "sig":
        return None
    if kid is not None and (not isinstance(kid, str) or not kid):
        return None
    key_ops = data.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return None
    public = {k: v for k, v in data.items() if k not in _PRIVATE_JWK_MEMBERS}
    public.pop("key_ops", None)  # "verify"-only is all a public key can do anyway
    try:
        if kty == "EC":
            if public.get("crv") != "P-256" or alg not in (None, "ES256"):
                return None
            key: Key = ECKey.import_key(public)
        elif kty == "RSA":
            if alg not in (None, "RS256"):
                return None
            key = RSAKey.import_key(public)
            if key.public_key.key_size < MIN_RSA_BITS:
                return None
        else:
            return None
    except (JoseError, ValueError, TypeError, KeyError):
        return None
    key.ensure_kid()
    return key


def public_key_set(keys: Iterable[Key | Mapping[str, Any]]) -> KeySet:
    """A `KeySet` of the usable public signing keys among `keys` (JWK dicts or joserfc keys)."""
    imported: list[Key] = []
    for item in keys:
        data = item.as_dict(private=False) if isinstance(item, ECKey | RSAKey) else item
        key = _public_signing_key(data)  # type: ignore[arg-type]
        if key is not None:
            imported.append(key)
    return KeySet(imported)


class StaticKeys:
    """A fixed key set, e.g. the public half of the development signing key."""

    def __init__(self, key_set: KeySet | Iterable[Key]) -> None:
        keys = key_set.keys if isinstance(key_set, KeySet) else list(key_set)
        self._key_set = public_key_set(keys)

    async def get_key_set(self, *, refresh: bool = False) -> KeySet:
        return self._key_set


class JwksKeys:
    """Public keys fetched from an identity provider's JWKS endpoint, cached.

    * The first use fetches the document; afterwards it is reused for up to `max_age` seconds.
    * `get_key_set(refresh=True)` (a token named an unknown `kid`) refetches, but never more often
      than once per `min_refresh_interval`, so a flood of made-up kids cannot hammer the IdP.
    * Concurrent fetches coalesce behind one lock: callers that waited see the fresh result.
    * A failed fetch keeps the previous key set; with none at all it raises `KeysUnavailableError`.
      Failed attempts count towards the rate limit too.
    """

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient | None = None,
        min_refresh_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_age: float = 3600.0,
        timeout: float = 5.0,
    ) -> None:
        self.url = url
        self._client = client
        self.min_refresh_interval = min_refresh_interval
        self.max_age = max_age
        self._timeout = timeout
        self._clock = clock
        self._lock = asyncio.Lock()
        self._key_set: KeySet | None = None
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last attempt, successful or not

    async def get_key_set(self, *, refresh: bool = False) -> KeySet:
        if self._key_set is not None and not refresh and not self._stale():
            return self._key_set
        async with self._lock:
            # Another task may have fetched while this one waited for the lock.
            wanted = self._key_set is None or refresh or self._stale()
            if wanted and self._may_attempt():
                await self._fetch()
            if self._key_set is None:
                raise KeysUnavailableError()
            return self._key_set

    def _stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self.max_age

    def _may_attempt(self) -> bool:
        return (
            self._attempted_at is None
            or self._clock() - self._attempted_at >= self.min_refresh_interval
        )

    async def _fetch(self) -> None:
        self._attempted_at = self._clock()
        try:
            body = await self._download()
            document = json.loads(body)
            if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
                raise ValueError("not a JWK set")
            key_set = public_key_set(document["keys"])
        except (httpx.HTTPError, ValueError) as error:
            logger.warning("fetching JWKS from %s failed: %s", self.url, type(error).__name__)
            return
        if not key_set:
            logger.warning("JWKS from %s holds no usable ES256/RS256 signing keys", self.url)
        self._key_set = key_set
        self._fetched_at = self._clock()

    async def _download(self) -> bytes:
        if self._client is not None:
            return await self._get(self._client)
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            return await self._get(client)

    async def _get(self, client: httpx.AsyncClient) -> bytes:
        response = await client.get(self.url, headers={"Accept": "application/json"})
        response.raise_for_status()
        body = response.content
        if len(body) > MAX_JWKS_BYTES:
            raise ValueError("JWKS document too large")
        return body


# --- verification ------------------------------------------------------------------------------


def _find_key(key_set: KeySet, kid: str) -> Key | None:
    for key in key_set:
        if key.kid == kid:
            return key
    return None


def _key_fits(key: Key, alg: str) -> bool:
    if key.alg is not None and key.alg != alg:
        return False
    if alg == "ES256":
        return isinstance(key, ECKey) and key.get("crv") == "P-256"
    if alg == "RS256":
        return isinstance(key, RSAKey)
    return False


def _claim_reason(error: ClaimError) -> str:
    claim = error.claim
    if isinstance(error, ExpiredTokenError):
        return "token expired"
    if isinstance(error, MissingClaimError):
        names = [c for c in claim.split(",") if c in _NAMED_CLAIMS]
        return f"missing claims: {','.join(names)}" if names else "missing claims"
    if claim == "iss":
        return "wrong issuer"
    if claim == "aud":
        return "wrong audience"
    if claim == "nbf":
        return "token not yet valid"
    if claim == "iat":
        return "token issued in the future"
    if claim in _NAMED_CLAIMS:
        return f"invalid claims: {claim}"
    return "invalid claims"


class TokenVerifier:
    """Checks a bearer token against one issuer and audience, and returns its `Principal`."""

    def __init__(
        self,
        keys: KeyProvider,
        *,
        issuer: str,
        audience: str,
        leeway: int = MAX_LEEWAY_SECONDS,
    ) -> None:
        if not 0 <= leeway <= MAX_LEEWAY_SECONDS:
            raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY_SECONDS} seconds")
        if not issuer or not audience:
            raise ValueError("issuer and audience must be configured")
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = int(leeway)

    async def verify(self, token: str) -> Principal:
        """Verify `token` and return its principal, or raise `AuthenticationError`."""
        try:
            return await self._verify(token)
        except AuthenticationError:
            raise
        except Exception as error:
            # Whatever joserfc (or a malformed input) threw, the caller sees one fixed reason and
            # no traceback; the exception type alone is enough to debug without leaking claims.
            logger.debug("token verification failed unexpectedly: %s", type(error).__name__)
            raise AuthenticationError("invalid token") from None

    async def _verify(self, token: str) -> Principal:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise AuthenticationError("malformed token")

        # 1. Read the header without trusting it: only to pick the algorithm and key.
        header = self._untrusted_header(token)
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise AuthenticationError("unsupported algorithm")
        if "crit" in header or "b64" in header:
            raise AuthenticationError("unsupported token header")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationError("missing key id")

        # 2. Find the key; an unknown kid may mean the issuer rotated keys, so refresh once.
        key = _find_key(await self.keys.get_key_set(), kid)
        if key is None:
            key = _find_key(await self.keys.get_key_set(refresh=True), kid)
        if key is None:
            raise AuthenticationError("unknown signing key")
        if not _key_fits(key, alg):
            raise AuthenticationError("unsupported algorithm")

        # 3. Check the signature, pinned to the allow-list.
        try:
            decoded = jwt.decode(token, key, algorithms=list(ALLOWED_ALGORITHMS))
        except BadSignatureError:
            raise AuthenticationError("invalid signature") from None
        except InvalidPayloadError:
            raise AuthenticationError("malformed token") from None
        except JoseError:
            raise AuthenticationError("invalid token") from None

        # 4. Standard claims.
        claims = decoded.claims
        registry = jwt.JWTClaimsRegistry(
            leeway=self.leeway,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
            sub={"essential": True},
        )
        try:
            registry.validate(claims)
        except ClaimError as error:
            raise AuthenticationError(_claim_reason(error)) from None

        # 5. The SEC claims; the principal lasts as long as the token is accepted.
        principal = principal_from_claims(claims)
        return replace(principal, expires_at=float(claims["exp"]) + self.leeway)

    @staticmethod
    def _untrusted_header(token: str) -> dict[str, Any]:
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, TypeError, AttributeError, UnicodeError):
            raise AuthenticationError("malformed token") from None
        if not isinstance(header, dict):
            raise AuthenticationError("malformed token")
        return header


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """The principal the SEC claims name, checked the one way for tokens and for sign-ins: a
    non-empty `sub` and `party_id`, a known `party_category`, and for a MANUFACTURER its
    `manufacturer_id` as four hex digits. Raises `AuthenticationError` otherwise."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise AuthenticationError("missing claims: sub")
    if len(sub) > _MAX_PARTY_ID_LENGTH:
        raise AuthenticationError("invalid claims: sub")
    party_id = claims.get("party_id")
    if party_id is None:
        raise AuthenticationError("missing party_id")
    if (
        not isinstance(party_id, str)
        or not party_id.strip()
        or len(party_id) > _MAX_PARTY_ID_LENGTH
    ):
        raise AuthenticationError("invalid claims: party_id")

    raw_category = claims.get("party_category")
    if raw_category is None:
        raise AuthenticationError("missing party_category")
    try:
        category = PartyCategory(raw_category)
    except (ValueError, TypeError):
        raise AuthenticationError("invalid claims: party_category") from None

    manufacturer_id: str | None = None
    if category is PartyCategory.MANUFACTURER:
        raw_mid = claims.get("manufacturer_id")
        if raw_mid is None or raw_mid == "":
            raise AuthenticationError("missing manufacturer_id")
        try:
            manufacturer_id = normalise_manufacturer_id(raw_mid)
        except ValueError:
            raise AuthenticationError("invalid claims: manufacturer_id") from None

    return Principal(
        sub=sub,
        party_id=party_id,
        party_category=category,
        manufacturer_id=manufacturer_id,
    )


def verifier_for(settings: Settings) -> TokenVerifier:
    """The verifier the server should use under `settings`.

    With `CPL_JWKS_URL` set, keys come from the identity provider. Without it (development), the
    server generates (once) and trusts its own ES256 key; only its public half is used here.
    """
    if refusal := settings.refusal():
        raise RuntimeError(refusal)
    if settings.dev_issuer:
        from .dev_keys import load_or_create_dev_key

        private = load_or_create_dev_key(settings.dev_key_path)
        provider: KeyProvider = StaticKeys([private])
    else:
        assert settings.jwks_url is not None
        provider = JwksKeys(settings.jwks_url)
    return TokenVerifier(provider, issuer=settings.issuer, audience=settings.audience)
