"""Bearer tokens in, a verified `Principal` out.

Every request carries `Authorization: Bearer <JWT>`. A token is accepted only when:

* its header names an allow-listed algorithm (ES256 or RS256; `none`, HS256 and everything else
  are refused before any key is looked up, so a public key can never be used as an HMAC secret);
* its `kid` names a key the configured issuer publishes (a JWKS endpoint, or the development
  key this server generated for itself: `permissions.keys`);
* the signature verifies, and `iss`, `aud`, `exp` and `sub` are present and right, with at most
  60 seconds of clock leeway, and `exp` no further off than the longest lifetime allowed
  (`CPL_MAX_TOKEN_LIFETIME_SECONDS`, a day);
* the SEC claims make sense: a non-empty `party_id`, one of the seven `party_category` values and,
  for a MANUFACTURER, a `manufacturer_id` of exactly four hex digits (`permissions.claims`).

A token that passed is remembered (`Verified`, the last `REMEMBERED_TOKENS` of them): the same
token again is accepted without its signature checked a second time (most of what verifying
costs: an ES256 signature is some 0.9 M instructions, four times the rest of a cached answer),
as long as the key that checked it is still the one its issuer publishes under its `kid` and
its times still hold, checked again as they were the first time. So it is accepted exactly when
verifying it again would accept it: what it says cannot change, being signed. Only tokens that
verified are remembered, so no flood of made-up tokens can fill the memory or evict them.

Failures raise `AuthenticationError` (`permissions.auth_errors`) with a short, fixed `reason`
that is safe to log and to send back: it never contains the token or a claim's value. Tokens
themselves are never logged.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from math import inf
from typing import TYPE_CHECKING, Any, Final

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

from .auth_errors import AuthenticationError
from .claims import principal_from_claims
from .dev_keys import load_or_create_dev_key
from .keys import ALLOWED_ALGORITHMS, JwksKeys, KeyProvider, StaticKeys
from .principal import Principal

if TYPE_CHECKING:
    from config.settings import Settings

__all__ = [
    "MAX_LEEWAY_SECONDS",
    "TokenVerifier",
    "bearer_token",
    "verifier_for",
]

logger = logging.getLogger(__name__)

#: How far off a token's `exp` may be (`CPL_MAX_TOKEN_LIFETIME_SECONDS`): a day.
DEFAULT_MAX_LIFETIME_SECONDS: Final = 86_400

#: Clock skew tolerated on `exp`, `nbf` and `iat`.
MAX_LEEWAY_SECONDS: Final = 60
#: Longest token (in characters) worth parsing; real ones are well under 2 KB.
MAX_TOKEN_LENGTH: Final = 8_192
#: Tokens remembered as verified (each at most `MAX_TOKEN_LENGTH` characters: 8 MB at most).
REMEMBERED_TOKENS: Final = 1_000
# Claim names that may appear in a reason; anything else becomes "invalid claims".
_NAMED_CLAIMS: Final = frozenset({"sub", "iss", "aud", "exp", "nbf", "iat", "jti"})


def bearer_token(authorization_header: str | None) -> str:
    """Extract the token from an `Authorization: Bearer <token>` header value (over a socket,
    `connection_init`'s payload holds any JSON: anything but a string is no token)."""
    if not authorization_header or not isinstance(authorization_header, str):
        raise AuthenticationError("missing bearer token")
    scheme, _, token = authorization_header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthenticationError("missing bearer token")
    return token


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


@dataclass(frozen=True, slots=True)
class Verified:
    """A token that verified: the key that checked it, its principal, and its times, checked
    again each time it is used as `TokenVerifier._verify` checked them."""

    kid: str
    key: Key
    principal: Principal
    exp: float
    not_before: float  # the latest of `nbf` and `iat`, -inf without either

    def holds(self, leeway: int, max_lifetime: int) -> bool:
        """Whether the token's times are still good now (joserfc's tests, and the lifetime's)."""
        now = time.time()
        whole = int(now)  # joserfc compares with the whole seconds
        return (
            self.exp > whole - leeway
            and self.not_before <= whole + leeway
            and self.exp <= now + max_lifetime + leeway
        )


class TokenVerifier:
    """Checks a bearer token against one issuer and audience, and returns its `Principal`."""

    def __init__(
        self,
        keys: KeyProvider,
        *,
        issuer: str,
        audience: str,
        leeway: int = MAX_LEEWAY_SECONDS,
        max_lifetime: int = DEFAULT_MAX_LIFETIME_SECONDS,
    ) -> None:
        if not 0 <= leeway <= MAX_LEEWAY_SECONDS:
            raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY_SECONDS} seconds")
        if not issuer or not audience:
            raise ValueError("issuer and audience must be configured")
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = int(leeway)
        self.max_lifetime = int(max_lifetime)
        self._verified: OrderedDict[str, Verified] = OrderedDict()

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
        known = self._verified.get(token)
        if known is not None:
            self._verified.move_to_end(token)  # now the most recently used
            key = _find_key(await self.keys.get_key_set(), known.kid)
            if key is known.key and known.holds(self.leeway, self.max_lifetime):
                return known.principal
            self._verified.pop(token, None)  # verified again below, from the start

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

        # A token that never expires (`exp` 1e308) is a credential that can never be taken
        # back: refuse what lives longer than any identity provider issues.
        if float(claims["exp"]) > time.time() + self.max_lifetime + self.leeway:
            raise AuthenticationError("token lifetime too long")

        # 5. The SEC claims; the principal lasts as long as the token is accepted.
        principal = principal_from_claims(claims)
        principal = replace(principal, expires_at=float(claims["exp"]) + self.leeway)
        self._remember(token, Verified(kid, key, principal, float(claims["exp"]), _start(claims)))
        return principal

    def _remember(self, token: str, verified: Verified) -> None:
        self._verified[token] = verified
        if len(self._verified) > REMEMBERED_TOKENS:
            self._verified.popitem(last=False)  # the least recently used

    @staticmethod
    def _untrusted_header(token: str) -> dict[str, Any]:
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, TypeError, AttributeError, UnicodeError):
            raise AuthenticationError("malformed token") from None
        if not isinstance(header, dict):
            raise AuthenticationError("malformed token")
        return header


def _start(claims: dict[str, Any]) -> float:
    """When a token starts being good (`nbf`, `iat`: the latest; they were checked numbers)."""
    return max((float(claims[name]) for name in ("nbf", "iat") if name in claims), default=-inf)


def verifier_for(settings: Settings) -> TokenVerifier:
    """The verifier the server should use under `settings`.

    With `CPL_JWKS_URL` set, keys come from the identity provider. Without it (development), the
    server generates (once) and trusts its own ES256 key; only its public half is used here.
    """
    if refusal := settings.refusal():
        raise RuntimeError(refusal)
    if settings.dev_issuer:
        private = load_or_create_dev_key(settings.dev_key_path)
        provider: KeyProvider = StaticKeys([private])
    else:
        assert settings.jwks_url is not None
        provider = JwksKeys(settings.jwks_url)
    return TokenVerifier(
        provider,
        issuer=settings.issuer,
        audience=settings.audience,
        max_lifetime=settings.max_token_lifetime_seconds,
    )
