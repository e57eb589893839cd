"""Answers kept in memory, keyed so that one Party can never be shown what another's policy
hides, and automatic persisted queries (Apollo's APQ protocol).

The key is (data revision, document hash, operation name, canonical variables, visibility,
own revision): visibility is the caller's capability (the rules its category is granted, so
every Supplier shares an entry and an SSC analyst never shares one with them), plus the
caller's identity when the document selects anything whose answer depends on who asks
(`viewer`, `myFleet`); the own revision is that of the caller's stored fleet when the document
reads it (`myFleet`), since replacing a fleet leaves the data revision alone. The revision is
read from the database as each request starts, so a committed write, from this process or any
other, changes every key at once and no answer older than the revision a request saw is
served. Only queries are kept, and only answers whose errors are all expected.

A key's ETag is an HMAC of it under a key the processes share (`server.app.etag_key`): equal
across processes for equal answers, so `If-None-Match` holds behind a load balancer, and
telling a client nothing it could work out for itself (a plain hash of the key gave away the
data revision, the one part a client does not know, by trying counters until one matched).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from config import metrics
from permissions.document_policy import Decision
from permissions.policy import capability
from permissions.principal import Principal
from permissions.ssc_access import SscReads

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# The variables' canonical JSON in a key: keys sorted, no spaces. One encoder, made once
# (`json.dumps` with options builds a new one on every call).
CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
NO_VARIABLES = sha256("{}")  # the hash of no variables' canonical JSON


@dataclass(frozen=True)
class Lookup:
    key: tuple[Any, ...]
    etag_key: bytes = field(repr=False)

    @property
    def etag(self) -> str:
        """Its answer's entity tag: an HMAC of the key (made for a GET's answer only)."""
        tag = hmac.new(self.etag_key, repr(self.key).encode(), hashlib.sha256).hexdigest()
        return f'"{tag[:32]}"'


def operation_key(
    digest: str,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    principal: Principal,
    decision: Decision,
) -> tuple[Any, ...]:
    """What an answer depends on besides the data: the operation (`digest`, its document's
    SHA-256) and the caller's visibility (also what groups a subscription event's subscribers,
    `schema.subscriptions`)."""
    visibility: tuple[Any, ...] = capability(principal.party_category)
    if decision.caller_scoped:
        visibility += (
            principal.sub,
            principal.party_id,
            principal.party_category.value,
            principal.manufacturer_id,
        )
    # Hashed: a key holding the variables themselves (up to the body limit) would let a caller
    # fill memory with keys the cache's byte budget never counted.
    canonical = NO_VARIABLES
    if variables:
        canonical = sha256(CANONICAL.encode(variables))
    return (digest, operation_name, canonical, visibility)


@dataclass(frozen=True)
class Cached:
    """An encoded answer, and what it read of the SSC-only values: a hit is logged as a read.
    A hit is counted as the operation that made it was: its name, outcome and denials."""

    body: bytes
    ssc_reads: SscReads | None = None
    operation_name: str | None = None
    outcome: str = "ok"
    denied: int = 0
    errors: bool = False  # whether the answer holds errors beside its data (a partial success)

    def __len__(self) -> int:
        return len(self.body)


ENTRY_BYTES = 512  # what an entry costs besides its value: its key (hashes), the dict's slot


class BoundedStore:
    """Least recently used entries, bounded by the bytes of their values (`len`), each counted
    with `ENTRY_BYTES` for its key and bookkeeping, so many tiny answers cannot outgrow it."""

    metric = "store"  # the `cache` label of its look-ups in `cpl_cache_lookups_total`

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Any, Any] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def get(self, key: Any) -> Any:
        value = self._entries.get(key)
        if value is None:
            self.misses += 1
            metrics.CACHE_LOOKUPS_BY[self.metric, "miss"].inc()
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        metrics.CACHE_LOOKUPS_BY[self.metric, "hit"].inc()
        return value

    def put(self, key: Any, value: Any) -> None:
        if len(value) + ENTRY_BYTES > self.max_bytes:
            return
        previous = self._entries.pop(key, None)
        if previous is not None:
            self.size -= len(previous) + ENTRY_BYTES
        self._entries[key] = value
        self.size += len(value) + ENTRY_BYTES
        while self.size > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.size -= len(evicted) + ENTRY_BYTES


class ResponseCache(BoundedStore):
    """Encoded answers by `Lookup.key`; entries of older revisions go first when a newer one
    is seen, since no request can ask for them again. `etag_key` keys the ETags."""

    metric = "responses"
    revision: int = -1

    def __init__(self, max_bytes: int, etag_key: bytes) -> None:
        super().__init__(max_bytes)
        self._etag_key = etag_key

    def lookup(
        self,
        revision: int,
        digest: str,
        operation_name: str | None,
        variables: dict[str, Any] | None,
        principal: Principal,
        decision: Decision,
        own_revision: int | None = None,
    ) -> Lookup:
        """The key of a query's answer (`digest`: its document's SHA-256), and its ETag;
        `own_revision` is the caller's stored fleet's when the document reads it
        (`Decision.fleet_scoped`)."""
        operation = operation_key(digest, operation_name, variables, principal, decision)
        return Lookup((revision, *operation, own_revision), self._etag_key)

    def get(self, key: tuple[Any, ...]) -> Cached | None:
        if key[0] > self.revision:
            self.revision = key[0]
            self._entries = OrderedDict((k, v) for k, v in self._entries.items() if k[0] >= key[0])
            self.size = sum(len(v) + ENTRY_BYTES for v in self._entries.values())
        return super().get(key)


class PersistedQueryError(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class PersistedQueries(BoundedStore):
    """Documents by their SHA-256, registered by the first request that sends both."""

    metric = "persisted_queries"

    def resolve(self, query: str | None, extensions: dict[str, Any] | None) -> str | None:
        """The document to run: the one sent, or the one registered under its hash."""
        persisted = (extensions or {}).get("persistedQuery")
        if not isinstance(persisted, dict):
            return query
        digest = persisted.get("sha256Hash")
        if persisted.get("version") != 1 or not isinstance(digest, str):
            raise PersistedQueryError("Unsupported persistedQuery.", "BAD_REQUEST")
        if query is None:
            stored = self.get(digest.lower())
            if stored is None:
                raise PersistedQueryError("PersistedQueryNotFound", PERSISTED_QUERY_NOT_FOUND)
            return stored.decode("utf-8", "surrogatepass")
        if sha256(query) != digest.lower():
            raise PersistedQueryError("provided sha does not match query", "BAD_REQUEST")
        self.put(digest.lower(), query.encode("utf-8", "surrogatepass"))
        return query
