"""Who is signed in, and who read what the SSC guards.

Kept apart from the CPL's own tables: these rows describe the people using the API, not the
products on the list, and nothing in the CPL refers to them.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.tables import UTCDateTime, utcnow


class SignInSession(SQLModel, table=True):
    """A browser's session, server-side so that every process sees it and logout ends it
    everywhere. The key is the SHA-256 of the cookie's value: the table alone opens nothing."""

    __tablename__ = "signin_session"

    id: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    csrf_token: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    sub: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    party_id: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    party_category: str = Field(sa_column=sa.Column(sa.String(24), nullable=False))
    manufacturer_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(4)))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    expires_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))


class SignInFlow(SQLModel, table=True):
    """A sign-in in progress (authlib's state data: nonce, PKCE verifier, redirect URI), kept
    here so the browser's flow cookie carries only a marker, never the PKCE verifier."""

    __tablename__ = "signin_flow"

    key: str = Field(sa_column=sa.Column(sa.String(200), primary_key=True))
    value: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    expires_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))


class SscAccess(SQLModel, table=True):
    """One operation that read, or filtered on, a value only the SSC may see."""

    __tablename__ = "ssc_access"

    id: int | None = Field(default=None, primary_key=True)
    occurred_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False, index=True)
    )
    actor_sub: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    actor_party_id: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    operation_name: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    fields: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False))
    device_ids: list[int] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
