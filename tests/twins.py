"""Twin databases for the noninterference test: the demo CPL, and the same CPL seeded with other
SSC-only values (`OTHER`), so that they differ in nothing else; an app on each, and answers
compared byte for byte with only the wall-clock instants masked.

The other values are chosen so that a leak shows: the vendors are rotated (a vendor names
other devices), and one stack version of the demo is on no device of the twin while the twin
has one the demo lacks, of another length."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import select

from config.settings import Settings
from models.database import create_engine, session_factory
from models.demo import STACKS, VENDORS
from models.tables import AuditEvent
from notifications.payloads import encode_body, event_payloads
from schema.context import Services
from server.app import create_app, create_services
from tests.harness import asgi_client, create_database

OTHER = {
    "vendors": [VENDORS[2], VENDORS[0], VENDORS[1]],
    "stacks": [STACKS[1], STACKS[1], "ZB-PRO 2017 r22 (patched)"],
}
# By table: the devices' two, and the firmware's own stack version (the twins differ there too).
SSC_COLUMNS = {
    "device": ("zigbee_stack_version", "zigbee_chipset_vendor"),
    "firmware": ("zigbee_stack_version",),
}
SSC_FIELDS = ("zigbeeStackVersion", "zigbeeChipsetVendor")
INSTANT = re.compile(rb"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
MASK = "<instant>"
# What an answer is compared on: not x-request-id, which is new on every request.
HEADERS = ("content-type", "etag", "cache-control")


def without_instants(raw: bytes) -> bytes:
    """`raw` with every ISO date-time masked: the one thing twins seeded at two moments may not
    share (dates, ids and everything else they must)."""
    return INSTANT.sub(MASK.encode(), raw)


@dataclass(frozen=True)
class Answer:
    """What a caller can observe of an HTTP answer, instants masked."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def observed(response: httpx.Response) -> Answer:
    headers = tuple((name, response.headers[name]) for name in HEADERS if name in response.headers)
    return Answer(response.status_code, headers, without_instants(response.content))


@dataclass
class Twin:
    """One of the two: its database and an app serving it (and a client on the app)."""

    url: str
    services: Services
    app: Any
    client: httpx.AsyncClient


@asynccontextmanager
async def serving(settings: Settings, url: str) -> AsyncIterator[Twin]:
    own = replace(settings, database_url=url)
    services = create_services(own)
    app = create_app(own, services)
    try:
        async with asgi_client(app) as client:
            yield Twin(url, services, app, client)
    finally:
        await services.engine.dispose()


@asynccontextmanager
async def twins(
    settings: Settings, directory: Path, templates: tuple[str, str], spent: list[str]
) -> AsyncIterator[tuple[Twin, Twin]]:
    """Copies of both templates, each served by an app of its own."""
    urls = [await create_database(directory, template=template) for template in templates]
    spent.extend(urls)
    async with serving(settings, urls[0]) as demo, serving(settings, urls[1]) as other:
        yield demo, other


async def webhook_bodies(twin: Twin) -> dict[int, bytes]:
    """The webhook body of every audit event of `twin`, as the dispatcher would sign and send
    it, instants masked."""
    async with session_factory(twin.services.engine)() as session:
        ids = (await session.exec(select(AuditEvent.id))).all()
        payloads = await event_payloads(session, ids)
    return {key: without_instants(encode_body(body)) for key, body in payloads.items()}


# --- the databases, row by row --------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A cell as both backends give it: instants masked, JSON decoded."""
    if isinstance(value, datetime):
        return MASK
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return _plain(json.loads(value))
        except ValueError:
            return value
    if isinstance(value, str) and INSTANT.fullmatch(value.encode()):
        return MASK
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


async def rows(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, in primary-key order, as `_plain` cells."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            metadata = sa.MetaData()
            await connection.run_sync(metadata.reflect)
            found = {}
            for name, table in sorted(metadata.tables.items()):
                order = list(table.primary_key.columns) or list(table.columns)
                result = await connection.execute(sa.select(table).order_by(*order))
                found[name] = [
                    {key: _plain(value) for key, value in row.items()} for row in result.mappings()
                ]
            return found
    finally:
        await engine.dispose()


def ssc_values_hidden(tables: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """`tables` with the SSC-only values taken out: the device and firmware columns and the
    audit events' changes of those fields (their `before` and `after`)."""

    def change(entry: Any) -> Any:
        if isinstance(entry, dict) and entry.get("field") in SSC_FIELDS:
            return {**entry, "before": "<ssc>", "after": "<ssc>"}
        return entry

    hidden = dict(tables)
    for table, columns in SSC_COLUMNS.items():
        hidden[table] = [
            {key: value for key, value in row.items() if key not in columns}
            for row in tables[table]
        ]
    hidden["audit_event"] = [
        {**row, "changes": [change(entry) for entry in row["changes"] or []]}
        for row in tables["audit_event"]
    ]
    return hidden
