"""A per-Party rate limit on GraphQL operations: a token bucket per caller, in each process.

Every operation costs one token: a POST or GET of `/graphql` (a response-cache hit too: it is
an operation, and a cheap one is still the caller's), a subscription's `subscribe` message and
a `POST /fleet-plan.csv`. A bucket holds up to `CPL_RATE_LIMIT_BURST` tokens and refills at
`CPL_RATE_LIMIT_PER_SECOND`; an operation finding it empty is refused before anything runs:
HTTP 429 with `Retry-After` and the code `RATE_LIMITED` (`server.http_errors.over_budget`). 0 turns
the limit off.

In each process, not in the database: a check costs a dictionary lookup, where a shared bucket
would cost a round trip on every operation (the very load the limit protects). The price is
that N processes give a Party N times the budget: size the setting per process.

The buckets are keyed by the caller's Party (its id, its category, and a Manufacturer's
manufacturer id), and their map is bounded: at most `MAX_PARTIES` buckets, the one touched
least recently dropped first. A dropped bucket had refilled unless the map turned over within
`burst / rate` seconds, so the bound costs nothing but to the busiest of attackers, and holds
the memory of a flood of distinct tokens.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from graphql import GraphQLFormattedError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ErrorMessage,
    SubscribeMessage,
)

from permissions.principal import Principal
from schema.errors import BAD_REQUEST, INTERNAL_SERVER_ERROR, RATE_LIMITED

if TYPE_CHECKING:
    from schema.context import Services  # which holds this module's RateLimit

__all__ = ["MAX_PARTIES", "RateLimit", "RateLimitedSockets", "refused"]

MAX_PARTIES = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimit:
    """The buckets of one process. `clock` (seconds, monotonic) is injectable for tests."""

    def __init__(
        self,
        per_second: float,
        burst: int,
        max_parties: int = MAX_PARTIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_second = per_second
        self.burst = max(burst, 1)
        self.max_parties = max_parties
        self.clock = clock
        self._buckets: OrderedDict[tuple[str, ...], _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.per_second > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def wait(self, principal: Principal) -> float:
        """Take a token for one operation of `principal`: 0 when taken, else the seconds until
        one is there (nothing taken)."""
        if not self.enabled:
            return 0.0
        key = (principal.party_id, principal.party_category.value, principal.manufacturer_id or "")
        now = self.clock()
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
            while len(self._buckets) >= self.max_parties:
                self._buckets.popitem(last=False)  # the least recently touched
        else:
            elapsed = max(now - bucket.updated, 0.0)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.per_second)
            bucket.updated = now
        self._buckets[key] = bucket  # now the most recently touched
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.per_second


def refused(wait: float) -> tuple[str, int]:
    """What a refused operation is told, and the whole seconds (at least 1) to wait."""
    seconds = max(1, math.ceil(wait))  # Retry-After is whole seconds
    return f"Too many operations from this Party; try again in {seconds} s.", seconds


class _ServingView(Protocol):
    """What this handler needs of its view (server's GraphQLApp, above this layer)."""

    services: Services


class RateLimitedSockets(BaseGraphQLTransportWSHandler[Any, Any]):
    """graphql-transport-ws with each `subscribe` an operation of the socket's Party: over the
    budget it is answered with an `error` message (code RATE_LIMITED, `retryAfter` seconds)
    and not run; the socket stays open for the Party's later operations."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        principal = getattr(self.context, "principal", None)
        if self.connection_acknowledged and principal is not None:
            wait = cast(_ServingView, self.view).services.rate_limit.wait(principal)
            if wait:
                text, seconds = refused(wait)
                extensions = {"code": RATE_LIMITED, "retryAfter": seconds}
                error = GraphQLFormattedError(message=text, extensions=extensions)
                await self.send_message(
                    ErrorMessage(id=message["id"], type="error", payload=[error])
                )
                return
        await super().handle_subscribe(message)

    async def send_message(self, message: Any) -> None:
        """Every error sent carries a code, the few the handler makes itself too: its limit of
        operations on one socket is RATE_LIMITED, any other refusal before running
        BAD_REQUEST; an error in an event that passed no error policy is the server's."""
        payload = message.get("payload")
        if message.get("type") == "error" and isinstance(payload, list):
            for error in payload:
                _give_code(error, RATE_LIMITED if error.get("message") == LIMIT else BAD_REQUEST)
        elif message.get("type") == "next" and isinstance(payload, dict):
            for error in payload.get("errors") or ():
                _give_code(error, INTERNAL_SERVER_ERROR)
        await super().send_message(message)


LIMIT = "Subscription limit reached"  # Strawberry's words for its limit of operations a socket


def _give_code(error: Any, code: str) -> None:
    extensions = error.get("extensions") or {}
    if "code" not in extensions:
        error["extensions"] = {**extensions, "code": code}
