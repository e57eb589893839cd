"""Idempotency keys: a retried mutation returns its first result and writes nothing new."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypedDict, TypeVar, cast

from sqlmodel import select

from models.tables import IdempotencyRecord
from permissions.principal import Principal
from resolvers.writes import validation as v
from resolvers.writes.unit_of_work import Work


class _Row(Protocol):
    """What a remembered result is: a written row, its id given by the flush."""

    @property
    def id(self) -> int | None: ...


class Identity(TypedDict):
    party_id: str
    party_category: str
    manufacturer_id: str


T = TypeVar("T", bound=_Row)


def request_hash(mutation: str, arguments: dict[str, Any]) -> str:
    """A stable digest of what was asked, to tell a retry from a new request reusing a key."""
    canonical = json.dumps([mutation, arguments], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def identity(principal: Principal) -> Identity:
    """Whose keys these are: the caller's whole verified identity, never its token string (an
    ECDSA signature can be rewritten into another valid one, so one caller has many strings)."""
    return {
        "party_id": principal.party_id,
        "party_category": principal.party_category.value,
        "manufacturer_id": principal.manufacturer_id or "",
    }


@dataclass(frozen=True)
class IdempotencyKey(Generic[T]):
    """A caller's key for one mutation's request; `replay` loads the first result by its kind
    and id and authorises it again, as a fresh call on it would be, before it is returned."""

    key: str
    mutation: str
    digest: str
    kind: str
    replay: Callable[[Work, str, int], Awaitable[T]]

    async def recall(self, work: Work) -> T | None:
        """The first result under this key, or None; CONFLICT when the key was used for a
        different request."""
        scope = identity(work.principal)
        record = (
            await work.session.exec(
                select(IdempotencyRecord).where(
                    *(
                        getattr(IdempotencyRecord, column) == value
                        for column, value in scope.items()
                    ),
                    IdempotencyRecord.key == self.key,
                )
            )
        ).first()
        if record is None:
            return None
        if record.mutation != self.mutation or record.request_hash != self.digest:
            raise v.conflict(
                "idempotencyKey", "This idempotency key was already used for a different request."
            )
        return await self.replay(work, self.kind, record.result_id)

    def remember(self, work: Work, result: T) -> None:
        work.session.add(
            IdempotencyRecord(
                **identity(work.principal),
                key=self.key,
                mutation=self.mutation,
                request_hash=self.digest,
                result_kind=self.kind,
                result_id=cast(int, result.id),  # the write has flushed its row
            )
        )
