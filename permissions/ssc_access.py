"""The SSC data-access log: one entry per operation that read, or filtered on, an SSC-only value.

Manufacturers worry that their commercially sensitive Zigbee details stay with the SSC; this log
answers who read them, when, with which operation, which fields and which devices. Its whole
recording is here, and every other place calls it with one line:

- **noticed**: each SSC-only field carries `NoteSscRead` (the policy table puts it there,
  `permissions.strawberry_adapter.policy_extensions`), so no read can go unrecorded by a
  resolver forgetting to; the device search notes an SSC-only filter and the devices it found
  (`SscReads.note_filter`), history notes an SSC-only change it shows, a subscription event
  adds its group's reads (`SscReads.add`), and a completed answer reused adds the reads it
  was made with (`SscReadObserver.replay`);
- **committed**: at the end of each operation and before each streamed result
  (`log_reads`, from `schema.extensions`), and again for each cache hit or 304 of an answer
  that held such values (`AccessLog.record` with the reads kept under `SSC_READS`), and by the
  export command (`Operator`).

An entry is committed before the answer that holds the values is sent (`AccessLog.record` is
awaited): if it cannot be written, the answer is refused (`AccessLogUnavailable`), so no read
escapes the log, whether the process is killed the next moment or the database is down. A write
that hangs (a locked table, a network stall) is given up after a few seconds
(`models.appender.WATCHDOG_SECONDS`) and its answers refused, rather than kept waiting.

Committing is made cheap (through the pool an entry cost twice a Supplier's whole cached
answer): each batch of entries is one INSERT in a transaction of its own, on the log's own
connection (`models.appender`: about a tenth of a session's BEGIN, statement and COMMIT
through the pool), sent by the caller's own task when nothing is being written (no task
switch). Entries still share statements (group commit): while one is written, the entries that
arrive wait together and are written next, in one statement however many they are. They go as
one JSON array, which the database unpacks (`json_each`, `json_array_elements`); an executemany
would be a statement a row. An operation's fields and devices are sorted and encoded once:
every hit on a cached answer shares its `SscReads`. The log's connection closes at shutdown,
once what is being written is (`AccessLog.close`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from json.encoder import encode_basestring_ascii as json_string
from typing import Any, NamedTuple

import orjson
from graphql import GraphQLError
from strawberry.extensions import FieldExtension
from strawberry.types import Info

from models.appender import Appender
from models.database import describe_outage, is_outage
from models.tables import utcnow
from permissions.principal import Principal

logger = logging.getLogger("cpl_pathways")
# Where a request keeps what its operation read, for the response cache: every hit is a read.
SSC_READS = "cpl.ssc_reads"

TIMESTAMP = "%04d-%02d-%02d %02d:%02d:%02d.%06d"  # a datetime's isoformat(" "), in half the time


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

    def add(self, other: SscReads) -> None:
        """What another execution read for this caller (a subscription event's group's), or
        what a reused answer was read with (`SscReadObserver.replay`): this caller's read as
        much as if it had read it itself. `other` is left as it is (a reused answer's is
        shared)."""
        self.fields |= other.fields
        self.device_ids |= other.device_ids

    def note_filter(self, field_name: str) -> None:
        """An SSC-only filter was used: the devices it found are noted too."""
        self.fields.add(field_name)
        self.filtered = True

    def note_filtered_devices(self, device_ids: Iterable[int | None]) -> None:
        if self.filtered:
            self.device_ids.update(i for i in device_ids if i is not None)

    def encoded_columns(self) -> str:
        """The fields and the device ids, sorted, as the last two elements of an entry in the array
        `models.appender` inserts: each a JSON string holding the JSON of its column. Encoded once:
        by the time an entry is written the reads are complete (see `Pending`), and every hit on a
        cached answer shares them (50 device ids cost more to encode than the rest of the entry;
        orjson, not a `json.dumps` that makes an encoder each call)."""
        if self._encoded is None:
            columns = (sorted(self.fields), sorted(self.device_ids))
            self._encoded = ",".join(json_string(orjson.dumps(c).decode()) for c in columns)
        return self._encoded


class SscReadObserver:
    """Notes an SSC-only value read, for the SSC data-access log: the field, and the device it
    is of (the row's own, or the one it belongs to: a firmware's). The compiled execution
    (`schema.completions`), which reads plain values itself, calls it directly; an answer it
    keeps for reuse keeps what its reads noted taken together (`summary`), noted again each
    time the answer is reused (`replay`): a set union, not a call a value read."""

    def __call__(self, context: Any, type_name: str | None, field_name: str, source: Any) -> None:
        context.ssc_reads.note(*_noted(type_name, field_name, source))

    def summary(self, observations: Iterable[tuple[str | None, str, Any]]) -> SscReads:
        reads = SscReads()
        for type_name, field_name, source in observations:
            reads.note(*_noted(type_name, field_name, source))
        return reads

    def replay(self, context: Any, reads: SscReads) -> None:
        context.ssc_reads.add(reads)


def _noted(type_name: str | None, field_name: str, source: Any) -> tuple[str, int | None]:
    device_id = getattr(source, "device_id", None)
    if device_id is None:
        device_id = getattr(source, "id", None)
    return f"{type_name}.{field_name}", device_id


class NoteSscRead(FieldExtension):
    """Notes each SSC-only value resolved, for the SSC data-access log. Only the SSC gets this
    far: for anyone else the policy pass has replaced the field before execution."""

    observe = SscReadObserver()  # all this extension does besides reading the value

    def resolve(self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any) -> Any:
        self.observe(info.context, info.path.typename, info.field_name, source)
        return next_(source, info, **kwargs)


class Operator(NamedTuple):
    """Who reads the values outside the API, by a command on the server (`cpl-pathways export
    --include-ssc`): no token, so no `Principal`; named as the command names them."""

    sub: str
    party_id: str


class Pending(NamedTuple):
    """An entry to write: who read, when, and what (an `SscReads` is not changed once recorded:
    the context starts a new one, and a cached answer's is shared by all its hits)."""

    occurred_at: datetime
    actor_sub: str
    actor_party_id: str
    reads: SscReads

    def encoded(self) -> str:
        """The entry as an element of the JSON array `models.appender` inserts: the time, which
        `utcnow` gave, as SQLAlchemy stores it on SQLite (UTC, without the zone), then the
        names as JSON strings, each by json's own escaping (`json_string`). Put together by
        hand: `json.dumps` of the list and `isoformat` cost 40,000 instructions an entry, a
        quarter of its whole write on PostgreSQL; this costs a fifth of that."""
        t, name = self.occurred_at, self.reads.operation_name
        occurred = TIMESTAMP % (t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond)
        named = json_string(name[:200]) if name else "null"
        return (
            f'["{occurred}",{json_string(self.actor_sub)},{json_string(self.actor_party_id)},'
            f"{named},{self.reads.encoded_columns()}]"
        )


class AccessLogUnavailable(GraphQLError):
    """An entry could not be written, so the answer holding what it records must not be sent:
    the HTTP app answers 503, a subscription's event is replaced by this error."""

    def __init__(self) -> None:
        super().__init__(
            "The SSC access log cannot be written; try again shortly.",
            extensions={"code": "SERVICE_UNAVAILABLE"},
        )


@dataclass
class Batch:
    """Entries written in one statement, and whether it committed, for all who wait on it."""

    entries: list[Pending] = field(default_factory=list)
    written: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class AccessLog:
    """Writes each entry before its caller goes on, in as few statements as it can (group
    commit): at once, by the caller's own task, when nothing is being written; else with the
    others that came meanwhile, by a task that writes batch after batch until none is left. No
    timer, no queue beyond the requests waiting: nothing is dropped, nothing waits unwritten for
    a process to be killed."""

    def __init__(self, appender: Appender) -> None:
        self.appender = appender
        self._next: Batch | None = None
        self._idle = asyncio.Event()  # nothing being written
        self._idle.set()
        self._writer: asyncio.Task[None] | None = None

    async def record(self, principal: Principal | Operator | None, reads: SscReads | None) -> bool:
        """Write the entry of an operation that read SSC-only values (nothing if it did not);
        True if there was one. Raises `AccessLogUnavailable` when it could not be written."""
        if principal is None or reads is None or not reads.fields:
            return False
        entry = Pending(utcnow(), principal.sub, principal.party_id, reads)
        if self._idle.is_set():
            self._idle.clear()
            try:
                written = await self._write([entry])
            finally:
                self._write_next()
        else:
            batch = self._next
            if batch is None:
                batch = self._next = Batch()
            batch.entries.append(entry)
            # Shielded: a caller that goes away meanwhile does not take its batch down with it.
            written = await asyncio.shield(batch.written)
        if not written:
            raise AccessLogUnavailable()
        return True

    def _write_next(self) -> None:
        """After a write: the entries that came meanwhile are written next, by a task of their
        own (their callers wait on them), or the log is idle."""
        if self._next is None:
            self._idle.set()
        else:
            self._writer = asyncio.get_running_loop().create_task(self._write_batches())

    async def _write_batches(self) -> None:
        batch = None
        try:
            while (batch := self._next) is not None:
                self._next = None
                batch.written.set_result(await self._write(batch.entries))
        finally:  # cancelled (the loop closing): its callers are refused, not left waiting
            for left in (batch, self._next):
                if left is not None and not left.written.done():
                    left.written.set_result(False)
            self._next = None
            self._idle.set()

    async def _write(self, entries: list[Pending]) -> bool:
        try:
            await self.appender.append(f"[{','.join(entry.encoded() for entry in entries)}]")
        except Exception as error:
            if not is_outage(error):
                logger.exception("SSC access log: writing %d entries failed", len(entries))
            else:
                logger.warning(
                    "SSC access log: %d entries not written, their answers refused (%s)",
                    len(entries),
                    describe_outage(error),
                )
            return False
        return True

    async def close(self) -> None:
        """At shutdown: wait for the entries being written (a batch whose callers went away
        included), then close the log's connection."""
        await self._idle.wait()
        await self.appender.close()


async def log_reads(context: Any) -> None:
    """Commit the access-log entry of what a GraphQL context read since the last one, before
    the answer or event holding it is sent (raises `AccessLogUnavailable` if it cannot be
    written); keep the reads with the request, where the response cache finds them (a cached
    answer's every hit is a read again). The next reads start a new entry at once: another
    operation on the same socket may read while this one is written."""
    reads = context.ssc_reads
    context.ssc_reads = SscReads(operation_name=reads.operation_name)
    if await context.services.access_log.record(context.principal, reads) and context.request:
        context.request.scope[SSC_READS] = reads
