"""The development issuer: one ES256 key, kept on disk, used to sign tokens for local work.

When no JWKS URL is configured the server trusts the public half of this key, and the CLI uses
the private half to mint tokens. The key file is created with mode 0600 from the start (never
world-readable, not even briefly) and is published atomically, so two processes starting at once
agree on one key.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import time
from pathlib import Path

from joserfc import jwt
from joserfc.jwk import ECKey

from .claims import normalise_manufacturer_id
from .principal import PartyCategory

__all__ = ["issue_token", "load_or_create_dev_key"]

_ALGORITHM = "ES256"


def _load(path: Path) -> ECKey:
    data = json.loads(path.read_text(encoding="utf-8"))
    key = ECKey.import_key(data)
    if not key.is_private or key.get("crv") != "P-256":
        raise ValueError(f"{path} does not hold a P-256 private key")
    key.ensure_kid()
    return key


def _tighten_permissions(path: Path) -> None:
    # A key file copied around by hand may have picked up group/other bits; take them away.
    with contextlib.suppress(OSError):
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(0o600)


def _write_private_file(path: Path, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            fd = -1  # owned by the file object now
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        if fd != -1:
            os.close(fd)


def load_or_create_dev_key(path: Path) -> ECKey:
    """Load the development signing key from `path`, creating it on first use.

    The new key is written to a 0600 temporary file in the same directory and then hard-linked
    into place, which fails if another process got there first; the loser then loads the winner's
    key, so every process ends up with the same one.
    """
    path = Path(path)
    if path.exists():
        _tighten_permissions(path)
        return _load(path)

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ECKey.generate_key("P-256", parameters={"alg": _ALGORITHM, "use": "sig"}, auto_kid=True)
    content = json.dumps(key.as_dict(private=True), indent=2).encode("utf-8") + b"\n"

    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
    _write_private_file(tmp, content)
    try:
        try:
            os.link(tmp, path)  # atomic, and refuses to replace an existing file
        except FileExistsError:
            return _load(path)
        except OSError:
            # A filesystem without hard links: fall back to an atomic rename (last one wins,
            # which only matters if two processes create the key in the same instant).
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return key


def issue_token(
    key: ECKey,
    *,
    issuer: str,
    audience: str,
    category: PartyCategory,
    party_id: str | None = None,
    manufacturer_id: str | None = None,
    ttl_seconds: int = 3600,
    sub: str | None = None,
) -> str:
    """Sign a development token (ES256, header `kid`) carrying the SEC claims.

    Raises `ValueError` for arguments that would produce a token the verifier rejects, so the CLI
    never prints an unusable one.
    """
    category = PartyCategory(category)
    if not key.is_private:
        raise ValueError("issuing a token needs the private signing key")
    key.ensure_kid()
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    if party_id is None:
        party_id = f"DEV-{category.value}"
    if not party_id.strip():
        raise ValueError("party_id must not be empty")
    if sub is None:
        sub = party_id
    if not sub:
        raise ValueError("sub must not be empty")

    claims: dict[str, object] = {
        "iss": issuer,
        "aud": audience,
        "sub": sub,
        "party_id": party_id,
        "party_category": category.value,
    }
    if category is PartyCategory.MANUFACTURER:
        if not manufacturer_id:
            raise ValueError("a MANUFACTURER token needs a manufacturer_id (4 hex digits)")
        claims["manufacturer_id"] = normalise_manufacturer_id(manufacturer_id)
    elif manufacturer_id is not None:
        raise ValueError("manufacturer_id applies only to the MANUFACTURER category")

    now = int(time.time())
    claims.update({"iat": now, "nbf": now, "exp": now + int(ttl_seconds)})
    claims["jti"] = secrets.token_urlsafe(16)

    header = {"alg": _ALGORITHM, "kid": key.kid, "typ": "JWT"}
    return jwt.encode(header, claims, key, algorithms=[_ALGORITHM])
