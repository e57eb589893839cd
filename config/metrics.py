"""Prometheus metrics: the instruments, and the text `/metrics` answers with.

Under several worker processes (`cpl-pathways serve --workers N`) each process writes its
samples to files in `PROMETHEUS_MULTIPROC_DIR` (prometheus-client's multiprocess mode, chosen
when that variable is set before this module is imported) and a scrape of any worker adds them
up. Instruments are cheap on the hot path: the three a request touches cost about 5 µs
together (timeit). The whole of observing a request, access line included, is measured by
`bench/observability.py` (`make bench`); see bench/README.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Children(dict[tuple[str, ...], Any]):
    """An instrument's children by their label values (`REQUESTS_BY["/graphql", "POST",
    "200"]`), each asked of it once: its `labels()` checks and converts the values, under a
    lock, on every call, which was most of what counting a request cost; this is a dictionary
    look-up. Label values come from closed sets (routes, methods, statuses, outcomes), so
    there are as many children as the instrument has anyway."""

    def __init__(self, metric: Any) -> None:
        super().__init__()
        self.metric = metric

    def __missing__(self, values: tuple[str, ...]) -> Any:
        child = self[values] = self.metric.labels(*values)
        return child


REQUESTS = Counter(
    "cpl_http_requests",
    "HTTP requests answered (and WebSocket connections closed), by route, method and status",
    ["route", "method", "status"],
)
REQUESTS_BY = Children(REQUESTS)
REQUEST_SECONDS = Histogram(
    "cpl_http_request_duration_seconds",
    "Time from a request's arrival to its last byte, by route",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
REQUEST_SECONDS_BY = Children(REQUEST_SECONDS)
OPERATIONS = Counter(
    "cpl_graphql_operations",
    "GraphQL operations by type (query, mutation, subscription), outcome (ok, errors, rejected)"
    " and cache (hit: answered from the response cache, miss: looked up and executed, none)",
    ["type", "outcome", "cache"],
)
OPERATIONS_BY = Children(OPERATIONS)
DENIED_SELECTIONS = Counter(
    "cpl_graphql_denied_selections",
    "Field selections answered null with FORBIDDEN (once per selection, not per row; per event"
    " of a subscription; per answer from the cache)",
)
CACHE_LOOKUPS = Counter(
    "cpl_cache_lookups",
    "Look-ups in the response cache and the persisted queries, by cache and result (hit, miss)",
    ["cache", "result"],
)
CACHE_LOOKUPS_BY = Children(CACHE_LOOKUPS)
WEBHOOK_ATTEMPTS = Counter(
    "cpl_webhook_delivery_attempts",
    "Webhook delivery attempts by outcome (delivered, retrying, failed)",
    ["outcome"],
)
LISTENER_RECONNECTS = Counter(
    "cpl_listener_reconnects",
    "Times the PostgreSQL change listener lost its connection and connected again",
)
POOL_IN_USE = Gauge(
    "cpl_db_pool_connections_in_use",
    "Database connections checked out of the pools of the live processes",
    multiprocess_mode="livesum",
)


class _Snapshot:
    """A collector for values read at scrape time (from the database), not kept in a process."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics = list(metrics)

    def collect(self) -> Iterable[Metric]:
        return self._metrics


def outbox_depth(pending: int) -> Metric:
    return GaugeMetricFamily(
        "cpl_webhook_outbox_pending",
        "Webhook deliveries waiting in the outbox (read from the database at scrape time)",
        value=pending,
    )


def exposition(snapshot: Iterable[Metric] = ()) -> bytes:
    """Every process's instruments (all workers' in multiprocess mode), then `snapshot`."""
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    extra = CollectorRegistry(auto_describe=False)
    extra.register(_Snapshot(snapshot))
    return generate_latest(registry) + generate_latest(extra)


def watch_pool(engine: AsyncEngine) -> None:
    """Count `engine`'s connections in use as they are checked out and back in."""
    event.listen(engine.sync_engine, "checkout", lambda *_: POOL_IN_USE.inc())
    event.listen(engine.sync_engine, "checkin", lambda *_: POOL_IN_USE.dec())


def process_ended(pid: int) -> None:
    """In multiprocess mode, drop a finished worker's live gauges (its pool is gone)."""
    if os.environ.get(MULTIPROCESS_DIR):
        multiprocess.mark_process_dead(pid)
