"""Idempotency keys: a retried mutation returns its first result and writes nothing new."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import IdempotencyRecord
from permissions.principal import Principal
from resolvers import validation as v


def request_hash(mutation: str, arguments: dict[str, Any]) -> str:
    """A stable digest of what was asked, to tell a retry from a new request reusing a key."""
    canonical = json.dumps([mutation, arguments], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Recalled:
    kind: str
    id: int


def identity(principal: Principal) -> dict[str, str]:
    """Whose keys these are: the caller's whole verified identity, never its token string (an
    ECDSA signature can be rewritten into another valid one, so one caller has many strings)."""
    return {
        "party_id": principal.party_id,
        "party_category": principal.party_category.value,
        "manufacturer_id": principal.manufacturer_id or "",
    }


async def recall(
    session: AsyncSession, principal: Principal, key: str, mutation: str, digest: str
) -> Recalled | None:
    """The first result under this key, or None; CONFLICT when the key was used differently."""
    scope = identity(principal)
    record = (
        await session.exec(
            select(IdempotencyRecord).where(
                *(getattr(IdempotencyRecord, column) == value for column, value in scope.items()),
                IdempotencyRecord.key == key,
            )
        )
    ).first()
    if record is None:
        return None
    if record.mutation != mutation or record.request_hash != digest:
        raise v.conflict(
            "idempotencyKey", "This idempotency key was already used for a different request."
        )
    return Recalled(record.result_kind, record.result_id)


def remember(
    session: AsyncSession,
    principal: Principal,
    key: str,
    mutation: str,
    digest: str,
    result: Recalled,
) -> None:
    session.add(
        IdempotencyRecord(
            **identity(principal),
            key=key,
            mutation=mutation,
            request_hash=digest,
            result_kind=result.kind,
            result_id=result.id,
        )
    )
