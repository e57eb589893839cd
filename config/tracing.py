"""OpenTelemetry traces, only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set: one span per request
and one per GraphQL operation inside it, exported over OTLP/HTTP (`pip install
cpl-pathways[otel]`). Never a span per field: a resolver hook costs microseconds on every row,
and a fleet plan has hundreds of thousands.

Unset, nothing of OpenTelemetry is imported, and each request pays for one `nullcontext`.
The exporter reads the standard `OTEL_*` variables itself (endpoint, headers, service name).
"""

from __future__ import annotations

import contextlib
import os
from contextlib import AbstractContextManager as ContextManager
from typing import Any

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
_state: dict[str, Any] = {}


def _tracer() -> Any | None:
    """The process's tracer, made on first use; None when tracing is off."""
    if "tracer" not in _state:
        _state["tracer"] = _start() if os.environ.get(ENDPOINT) else None
    return _state["tracer"]


def _start() -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME") or "cpl-pathways"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _state["provider"] = provider
    return provider.get_tracer("cpl_pathways")


NO_SPAN = contextlib.nullcontext()  # what `span` is when tracing is off: it yields None


def span(name: str, *, server: bool = False, **attributes: Any) -> ContextManager[Any]:
    """A span around the block (the current span's child), or nothing when tracing is off.
    Yields the span (or None) so that what is learnt during the block can be added."""
    tracer = _tracer()
    if tracer is None:
        return NO_SPAN
    from opentelemetry.trace import SpanKind

    kind = SpanKind.SERVER if server else SpanKind.INTERNAL
    return tracer.start_as_current_span(name, kind=kind, attributes=attributes)


def shutdown() -> None:
    """Export what is still buffered (at the end of the process's lifespan)."""
    provider = _state.get("provider")
    if provider is not None:
        provider.shutdown()
