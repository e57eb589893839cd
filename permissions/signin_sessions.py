"""Server-side sessions for people signed in through a browser, and the cookie that names one.

The browser holds only an opaque, HttpOnly cookie (the backend-for-frontend pattern): never a
token. The database keeps the SHA-256 of the cookie's value with the principal, a CSRF token and
an expiry, so any process can check a session and logout or expiry ends it everywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from models.access import SignInFlow, SignInSession
from models.tables import utcnow
from permissions.principal import PartyCategory, Principal

MAX_COOKIE_LENGTH = 100  # the cookie holds 43 characters; anything much longer is not ours
FLOW_SECONDS = 600  # a sign-in must come back from the provider within ten minutes


@dataclass(frozen=True)
class SignedIn:
    principal: Principal
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class SessionCookie:
    """The session cookie's name and whether it is `Secure`, from where the server is reached.

    A browser keeps cookies per host, not per port: two servers on 127.0.0.1 would overwrite
    each other's `session` cookie. The name carries the project and the port, and over HTTPS
    the `__Host-` prefix, which pins it to this host, path `/`, and `Secure`."""

    name: str
    secure: bool

    @classmethod
    def for_site(cls, site_url: str, purpose: str = "session") -> SessionCookie:
        parts = urlsplit(site_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        secure = parts.scheme == "https" or not _is_loopback(parts.hostname or "")
        prefix = "__Host-" if secure else ""
        return cls(name=f"{prefix}cpl-pathways-{port}-{purpose}", secure=secure)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _key(cookie_value: str) -> str:
    return hashlib.sha256(cookie_value.encode("utf-8")).hexdigest()


def csrf_matches(signed_in: SignedIn, presented: object) -> bool:
    return isinstance(presented, str) and hmac.compare_digest(
        signed_in.csrf_token.encode(), presented.encode("utf-8", "replace")
    )


class SignInSessions:
    """Create, find and end sessions; each call is one short transaction of its own."""

    def __init__(self, db_sessions: async_sessionmaker[AsyncSession], ttl_seconds: int) -> None:
        self._db_sessions = db_sessions
        self.ttl = timedelta(seconds=ttl_seconds)

    async def create(self, principal: Principal) -> tuple[str, SignedIn]:
        """A new session for `principal`: the cookie value (shown once) and what it holds."""
        cookie_value = secrets.token_urlsafe(32)
        now = utcnow()
        row = SignInSession(
            id=_key(cookie_value),
            csrf_token=secrets.token_urlsafe(32),
            sub=principal.sub,
            party_id=principal.party_id,
            party_category=principal.party_category.value,
            manufacturer_id=principal.manufacturer_id,
            created_at=now,
            expires_at=now + self.ttl,
        )
        async with self._db_sessions() as session, session.begin():
            # Ended sessions go as new ones start, so the table holds only live ones for long.
            await session.exec(delete(SignInSession).where(col(SignInSession.expires_at) <= now))
            session.add(row)
        return cookie_value, _signed_in(row)

    async def find(self, cookie_value: str | None) -> SignedIn | None:
        """The live session this cookie names, or None (unknown, ended or expired)."""
        if not cookie_value or len(cookie_value) > MAX_COOKIE_LENGTH:
            return None
        async with self._db_sessions() as session:
            row = await session.get(SignInSession, _key(cookie_value))
        if row is None or row.expires_at <= utcnow():
            return None
        return _signed_in(row)

    async def end(self, cookie_value: str | None) -> None:
        if not cookie_value or len(cookie_value) > MAX_COOKIE_LENGTH:
            return
        async with self._db_sessions() as session, session.begin():
            await session.exec(
                delete(SignInSession).where(col(SignInSession.id) == _key(cookie_value))
            )


def _signed_in(row: SignInSession) -> SignedIn:
    principal = Principal(
        sub=row.sub,
        party_id=row.party_id,
        party_category=PartyCategory(row.party_category),
        manufacturer_id=row.manufacturer_id,
    )
    return SignedIn(principal=principal, csrf_token=row.csrf_token, expires_at=row.expires_at)


class SignInFlows:
    """authlib's cache for sign-ins in progress: the state's data (nonce, PKCE verifier) stays
    in the database, and the browser's flow cookie holds only a marker that it began there.
    Any process can finish a sign-in another began."""

    def __init__(self, db_sessions: async_sessionmaker[AsyncSession]) -> None:
        self._db_sessions = db_sessions

    async def get(self, key: str) -> str | None:
        async with self._db_sessions() as session:
            row = await session.get(SignInFlow, key)
        return row.value if row is not None and row.expires_at > utcnow() else None

    async def set(self, key: str, value: str, expires_in: int | None = None) -> None:
        now = utcnow()
        expires_at = now + timedelta(seconds=min(expires_in or FLOW_SECONDS, FLOW_SECONDS))
        async with self._db_sessions() as session, session.begin():
            await session.exec(delete(SignInFlow).where(col(SignInFlow.expires_at) <= now))
            await session.merge(SignInFlow(key=key, value=value, expires_at=expires_at))

    async def delete(self, key: str) -> None:
        async with self._db_sessions() as session, session.begin():
            await session.exec(delete(SignInFlow).where(col(SignInFlow.key) == key))
