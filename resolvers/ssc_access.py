"""The SSC data-access log: one entry per operation that read, or filtered on, an SSC-only value.

Manufacturers worry that their commercially sensitive Zigbee details stay with the SSC; this log
answers who read them, when, with which operation, which fields and which devices. The policy
pass that grants an SSC-only field is where a read is noticed (`SscReads.note`), so no read can
go unrecorded by a resolver forgetting to. Entries are written after the response, in batches,
by `AccessLog`: a read costs a set insertion, never a database round trip.

A response-cache hit is a read again and gets its entry, so queuing one must cost next to
nothing beside the hit itself (a warm hit is well under a millisecond): `record` keeps who,
when and the operation's `SscReads` as they are. While entries come, a batch is written every
`delay` (`CPL_SSC_ACCESS_LOG_DELAY_MS`, 200 ms), in one statement however many entries it
holds: they go as one JSON array, which the database unpacks (`json_each`,
`json_array_elements`); an executemany would be a statement a row (on SQLite each row's step
hands the GIL between aiosqlite's thread and the event loop). An operation's fields and devices
are sorted and encoded once: every hit on a cached answer shares its `SscReads`. Measured under
load (1,300 warm SSC answers a second): when each batch was written as soon as the last one was,
the batches held a few entries each, each paying a transaction, and an SSC answer cost 14-18 %
more CPU than a Supplier's, 1 % with the log patched out; now 0-5 %.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from models.access import SscAccess
from models.database import RequestSession
from models.tables import utcnow
from permissions.principal import Principal
from resolvers.paging import Page, page_of

logger = logging.getLogger("cpl_pathways")

COMPACT = (",", ":")
MAX_PENDING = 10_000  # if the database is down this long, older entries are dropped (logged)
# By dialect; ids are given in the array's order, as the entries came. An entry's fields and
# device ids come as JSON text inside a JSON string (see `SscReads.encoded_columns`), stored as
# they are: the database scans one string instead of parsing 50 numbers twice (halves SQLite's
# work an entry).
INSERT_ENTRIES = {
    "sqlite": text(
        "INSERT INTO ssc_access "
        "(occurred_at, actor_sub, actor_party_id, operation_name, fields, device_ids) "
        "SELECT json_extract(value, '$[0]'), "
        "json_extract(value, '$[1]'), json_extract(value, '$[2]'), json_extract(value, '$[3]'), "
        "json_extract(value, '$[4]'), json_extract(value, '$[5]') "
        "FROM json_each(:entries) ORDER BY key"
    ),
    "postgresql": text(
        "INSERT INTO ssc_access "
        "(occurred_at, actor_sub, actor_party_id, operation_name, fields, device_ids) "
        "SELECT (e ->> 0)::timestamp AT TIME ZONE 'UTC', "
        "e ->> 1, e ->> 2, e ->> 3, CAST(e ->> 4 AS JSON), CAST(e ->> 5 AS JSON) "
        "FROM json_array_elements(CAST(:entries AS JSON)) WITH ORDINALITY AS t(e, n) ORDER BY n"
    ),
}


@dataclass
class SscReads:
    """What one operation read of the SSC-only values: field names and device ids."""

    fields: set[str] = field(default_factory=set)
    device_ids: set[int] = field(default_factory=set)
    operation_name: str | None = None
    filtered: bool = False
    _encoded: str | None = field(default=None, init=False, repr=False, compare=False)

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

    def encoded_columns(self) -> str:
        """The fields and the device ids, sorted, as the last two elements of an entry in
        `INSERT_ENTRIES`' array: each a JSON string holding the JSON of its column. Encoded
        once: by the time an entry is written the reads are complete (see `Pending`), and every
        hit on a cached answer shares them (50 device ids cost more to encode than the rest of
        the entry)."""
        if self._encoded is None:
            columns = (sorted(self.fields), sorted(self.device_ids))
            self._encoded = ",".join(json.dumps(json.dumps(c, separators=COMPACT)) for c in columns)
        return self._encoded


class Pending(NamedTuple):
    """An entry queued: who read, when, and what (an `SscReads` is not changed once recorded:
    the context starts a new one, and a cached answer's is shared by all its hits)."""

    occurred_at: datetime
    actor_sub: str
    actor_party_id: str
    reads: SscReads

    def encoded(self) -> str:
        """The entry as an element of the JSON array `INSERT_ENTRIES` unpacks (the time, which
        `utcnow` gave, as SQLAlchemy stores it on SQLite: UTC, without the zone)."""
        name = self.reads.operation_name
        head = json.dumps([
            self.occurred_at.replace(tzinfo=None).isoformat(" ", "microseconds"),
            self.actor_sub,
            self.actor_party_id,
            (name or None) and name[:200],
        ])  # fmt: skip
        return f"{head[:-1]},{self.reads.encoded_columns()}]"


class AccessLog:
    """Collects entries in memory and writes them a moment later in one transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], delay: float) -> None:
        self._sessions = sessions
        self.delay = delay
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
        """A batch every `delay` seconds while entries come. Writing the next batch as
        soon as one was written would, under load, write a few entries at a time back to back,
        each paying a transaction (about 2.5 ms on either database)."""
        while self._pending:
            await asyncio.sleep(self.delay)
            if not await self._write_pending():
                return

    async def flush(self) -> None:
        """Write what is queued, now; on failure keep it for the next attempt."""
        while self._pending and await self._write_pending():
            pass

    async def _write_pending(self) -> bool:
        batch, self._pending = self._pending, []
        try:
            entries = f"[{','.join(entry.encoded() for entry in batch)}]"
            async with self._sessions() as session, session.begin():
                statement = INSERT_ENTRIES[session.get_bind().dialect.name]
                await session.exec(statement, params={"entries": entries})
        except Exception:
            logger.exception("SSC access log: writing %d entries failed", len(batch))
            self._pending[:0] = batch
            return False
        return True

    async def drain(self) -> None:
        """Wait until everything queued so far is written: at shutdown, and in tests."""
        if self._task is not None:
            await self._task
        await self.flush()


async def search_access(db: RequestSession, first: int, before_id: int | None) -> Page[SscAccess]:
    return await page_of(db, SscAccess, [], first, before_id, newest_first=True)
