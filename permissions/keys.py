"""Where a token verifier gets the issuer's public keys: a fixed set (the development key) or
an identity provider's JWKS endpoint, fetched, cached and rate-limited.

Only ES256 and RS256 signing keys are ever kept, and only their public halves, so whatever an
endpoint publishes, a verifier can never be handed a private key or an HMAC secret.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Protocol

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, KeySet, RSAKey

from .auth_errors import KeysUnavailableError

__all__ = [
    "ALLOWED_ALGORITHMS",
    "JwksKeys",
    "KeyProvider",
    "StaticKeys",
    "public_key_set",
]

logger = logging.getLogger(__name__)

#: The only signature algorithms a token may use. Order matters nowhere.
ALLOWED_ALGORITHMS: Final[tuple[str, ...]] = ("ES256", "RS256")
#: Largest JWKS document accepted from the identity provider.
MAX_JWKS_BYTES: Final = 256 * 1024
#: Smallest RSA modulus accepted from a JWKS.
MIN_RSA_BITS: Final = 2048
_PRIVATE_JWK_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


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
        key = _public_signing_key(data)  # type: ignore[arg-type]  # an item that is no joserfc key is a JWK dict
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
