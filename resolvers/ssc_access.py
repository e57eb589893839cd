"""The SSC data-access log: one entry per operation that read, or filtered on, an SSC-only value.

Manufacturers worry that their commercially sensitive Zigbee details stay with the SSC; this log
answers who read them, when, with which operation, which fields and which devices. The policy
pass that grants an SSC-only field is where a read is noticed (`SscReads.note`), so no read can
go unrecorded by a resolver forgetting to. Entries are written after the response, in batches,
by `AccessLog`: a read costs a set insertion, never a database round trip.

A response-cache hit is a read again and gets its entry, so queuing one must cost next to
nothing beside the hit itself (a warm hit is well under a millisecond): `record` keeps who,
when and the operation's `SscReads` as they are, and the rows are built when the batch is
written, as plain values in one Core insert (ORM objects cost tens of microseconds each to
make, and the ORM inserts them one statement a row on SQLite, for their ids). The JSON of an
operation's fields and devices is encoded once, when its first entry is written: every hit on
a cached answer shares it (measured: encoding each entry's two lists again was a third of an
entry's 41 µs).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import JSON, bindparam, insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.types import TypeDecorator
from sqlmodel.ext.asyncio.session import AsyncSession

from models.access import SscAccess
from models.database import RequestSession
from models.tables import utcnow
from permissions.principal import Principal
from resolvers.paging import Page, page_of

logger = logging.getLogger("cpl_pathways")

FLUSH_DELAY_SECONDS = 0.2  # entries of a burst of operations share one transaction
MAX_PENDING = 10_000  # if the database is down this long, older entries are dropped (logged)
SSC_ACCESS = SscAccess.__table__  # type: ignore[attr-defined]


class EncodedJSON(TypeDecorator[str]):
    """A JSON column's value given already encoded, so that the bind does not encode it again
    (on PostgreSQL SQLAlchemy still casts the parameter to JSON)."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Any) -> None:
        return None


INSERT_ENTRY = insert(SSC_ACCESS).values(
    fields=bindparam("fields_json", type_=EncodedJSON()),
    device_ids=bindparam("device_ids_json", type_=EncodedJSON()),
)


@dataclass
class SscReads:
    """What one operation read of the SSC-only values: field names and device ids."""

    fields: set[str] = field(default_factory=set)
    device_ids: set[int] = field(default_factory=set)
    operation_name: str | None = None
    filtered: bool = False
    _encoded: tuple[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    def note(self, field_name: str, device_id: int | None = None) -> None:
        self.fields.add(field_name)
        if device_id is not None:
            self.device_ids.add(device_id)

    def note_filter(self, field_name: str) -> None:
        """An SSC-only filter was used: the devices it found are noted too."""
        self.fields.add(field_name)
        self.filtered = True

    def note_filtered_devices(self, device_ids: Iterable[int | None]) -> None:
        if self.filtered:
            self.device_ids.update(i for i in device_ids if i is not None)

    def encoded(self) -> tuple[str, str]:
        """The fields and the device ids as JSON, made once: by the time an entry is written
        the reads are complete (see `Pending`)."""
        if self._encoded is None:
            self._encoded = (json.dumps(sorted(self.fields)), json.dumps(sorted(self.device_ids)))
        return self._encoded


class Pending(NamedTuple):
    """An entry queued: who read, when, and what (an `SscReads` is not changed once recorded:
    the context starts a new one, and a cached answer's is shared by all its hits)."""

    occurred_at: datetime
    actor_sub: str
    actor_party_id: str
    reads: SscReads

    def row(self) -> dict[str, Any]:
        """The parameters of `INSERT_ENTRY`."""
        name = self.reads.operation_name
        fields, device_ids = self.reads.encoded()
        return {
            "occurred_at": self.occurred_at,
            "actor_sub": self.actor_sub,
            "actor_party_id": self.actor_party_id,
            "operation_name": (name or None) and name[:200],
            "fields_json": fields,
            "device_ids_json": device_ids,
        }


class AccessLog:
    """Collects entries in memory and writes them a moment later in one transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._pending: list[Pending] = []
        self._task: asyncio.Task[None] | None = None

    def record(self, principal: Principal | None, reads: SscReads) -> bool:
        """Queue the entry of an operation that read SSC-only values (nothing if it did not);
        True if there was one."""
        if principal is None or not reads.fields:
            return False
        if len(self._pending) >= MAX_PENDING:
            logger.error("SSC access log: %d entries unwritten, dropping the oldest", MAX_PENDING)
            del self._pending[0]
        self._pending.append(Pending(utcnow(), principal.sub, principal.party_id, reads))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush_soon())
        return True

    async def _flush_soon(self) -> None:
        await asyncio.sleep(FLUSH_DELAY_SECONDS)
        await self.flush()

    async def flush(self) -> None:
        """Write what is queued; on failure keep it for the next attempt."""
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self._sessions() as session, session.begin():
                    await session.exec(INSERT_ENTRY, params=[entry.row() for entry in batch])
            except Exception:
                logger.exception("SSC access log: writing %d entries failed", len(batch))
                self._pending[:0] = batch
                return

    async def drain(self) -> None:
        """Wait until everything queued so far is written: at shutdown, and in tests."""
        if self._task is not None:
            await self._task
        await self.flush()


async def search_access(db: RequestSession, first: int, before_id: int | None) -> Page[SscAccess]:
    return await page_of(db, SscAccess, [], first, before_id, newest_first=True)
