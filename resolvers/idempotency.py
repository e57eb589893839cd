"""Idempotency keys: a retried mutation returns its first result and writes nothing new."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import IdempotencyRecord
from resolvers import validation as v


def request_hash(mutation: str, arguments: dict[str, Any]) -> str:
    """A stable digest of what was asked, to tell a retry from a new request reusing a key."""
    canonical = json.dumps([mutation, arguments], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Recalled:
    kind: str
    id: int


async def recall(
    session: AsyncSession, party_id: str, key: str, mutation: str, digest: str
) -> Recalled | None:
    """The first result under this key, or None; CONFLICT when the key was used differently."""
    record = (
        await session.exec(
            select(IdempotencyRecord).where(
                IdempotencyRecord.party_id == party_id, IdempotencyRecord.key == key
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
    party_id: str,
    key: str,
    mutation: str,
    digest: str,
    result: Recalled,
) -> None:
    session.add(
        IdempotencyRecord(
            party_id=party_id,
            key=key,
            mutation=mutation,
            request_hash=digest,
            result_kind=result.kind,
            result_id=result.id,
        )
    )
