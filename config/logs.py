"""Log records as operators read them: one JSON object a line (`CPL_LOG_FORMAT=json`, the
production default) or plain text (development).

One handler on the root logger formats every record, the application's, uvicorn's and
SQLAlchemy's alike, and stamps each with the id of the request it was written for (the
`Exchange` of `server.requests`, carried in a context variable), so that one request's lines
can be found among thousands.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from config.settings import Settings


@dataclass
class Exchange:
    """What one request's access line says beyond HTTP: filled in as the request runs."""

    request_id: str
    party_category: str | None = None
    operation_type: str | None = None
    operation_name: str | None = None
    # How the operation ended (`ok`, `errors`, `rejected`), the FORBIDDEN selections it
    # answered, and the response cache's part in it (`hit`, `miss`, None): what an answer kept
    # in the cache is counted as again when it is served (`schema.operation_record`).
    outcome: str | None = None
    denied: int = 0
    cache: str | None = None


EXCHANGE: ContextVar[Exchange | None] = ContextVar("cpl_exchange", default=None)

# Attributes every LogRecord has; whatever else a record carries came from `extra=` (less
# uvicorn's `color_message`, the message again with terminal colours).
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "color_message",
}


class RequestIdFilter(logging.Filter):
    """Gives every record the current request's id (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exchange = EXCHANGE.get()
        record.request_id = exchange.request_id if exchange is not None else None
        return True


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """`{"timestamp", "level", "logger", "message", "request_id", "pid", ...extra}` a line
    (`pid` tells the workers of `serve --workers N` apart)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "pid": record.process,
        }
        entry |= {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`2026-12-01T07:30:00.123Z INFO cpl_pathways.access [request id] message`."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        line = f"{_timestamp(record)} {record.levelname} {record.name} [{request_id or '-'}] "
        line += record.getMessage()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _Handler(logging.StreamHandler):
    """Ours, so that configuring again replaces it instead of adding a second."""


def configure_logging(settings: Settings) -> None:
    """Send every logger's records, at `CPL_LOG_LEVEL` and above, to stderr in the chosen
    format. uvicorn's own handlers are dropped so its lines take the same form, and its access
    log is silenced: `server.requests` writes one without the query string."""
    handler = _Handler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for existing in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # uvicorn writes its access line whenever this logger has a handler, its ancestors' too.
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
