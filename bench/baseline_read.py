"""The read benchmark's baseline: the speed of the wire, a hand-written Starlette endpoint as
lean as a careful engineer would write it for the typical Supplier query (and its SSC variants,
and its pages: ``first``, ``after``).

It verifies the same ES256 token with the same verifier, reads the rows with three plain SQL
statements on the database driver itself (the page of devices with its manufacturer's name and
the total count; the page's firmware, oldest on the CPL first, whose last ACTIVE one is the
latest; their pathways with the target's version), applies the same field rule (the SSC sees
the SSC-only fields; a Supplier asking for them gets null and one FORBIDDEN error each) and
returns the same JSON, by ``json.dumps``. It is no API: one query shape, no GraphQL, no policy
table, no cache; ``bench.read`` checks that its answers equal the API's after parsing.

Nothing stands between a request and the driver: no SQLAlchemy, no ORM, no per-request
statement building. On PostgreSQL an asyncpg pool (each statement prepared once a connection by
asyncpg's statement cache, one round trip each; no pre-ping, and no reset query when a
connection comes back: the endpoint only reads, outside any transaction). On SQLite the stdlib
``sqlite3``: one thread hop a request, in which the statements run on that thread's own
connection (each prepared once, by sqlite3's statement cache). The firmware and the pathways
select the page's ids as a subquery, so every statement's text is fixed and its parameters are
the cursor's device id and the page size; the total rides on the page's rows as a scalar
subquery, and a page with no rows (after the last device) counts in a fourth statement.

A cursor is the API's (``schema.ids``): a row's is ``after:<id>`` and an empty page's ``gap:<id>``,
base64url without padding; both mean "the rows whose id is above <id>", so the endpoint takes
the number. It trusts what it is sent (the benchmark's own cursors): an invalid one is a 500.

Run as ``python -m bench.baseline_read PORT`` with the API's CPL_* environment.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sqlite3
import sys
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from config.settings import Settings, load_settings
from permissions.auth_errors import AuthenticationError
from permissions.principal import PartyCategory
from permissions.tokens import bearer_token, verifier_for

SSC_FIELDS = ("zigbeeStackVersion", "zigbeeChipsetVendor")
DENIED = "Forbidden: this field is readable by the SSC only."
PAGE = 50  # `first` when the query names none (the typical query says 50)

# {after}: the device id the cursor names (0: from the start); {first}: the page size. The
# page's ids, a subquery of the two last, are the first's.
STATEMENTS = (
    "SELECT d.id, d.model_name, d.zigbee_band, d.zigbee_stack_version, d.zigbee_chipset_vendor,"
    " m.name, (SELECT count(*) FROM device) FROM device d"
    " JOIN manufacturer m ON m.id = d.manufacturer_id"
    " WHERE d.id > {after} ORDER BY d.id LIMIT {first}",
    "SELECT f.id, f.device_id, f.version, f.status FROM firmware f"
    " WHERE f.device_id IN (SELECT id FROM device WHERE id > {after} ORDER BY id LIMIT {first})"
    " ORDER BY f.device_id, f.added_to_cpl_on, f.id",
    "SELECT p.from_firmware_id, p.status, t.version FROM upgrade_pathway p"
    " JOIN firmware t ON t.id = p.to_firmware_id"
    " WHERE p.device_id IN (SELECT id FROM device WHERE id > {after} ORDER BY id LIMIT {first})"
    " ORDER BY p.id",
)
COUNT = "SELECT count(*) FROM device"  # a page with no rows has none to carry the total
Rows = tuple[Sequence[Any], Sequence[Any], Sequence[Any]]  # each statement's, in select order


def no_rows(total: int) -> list[tuple[Any, ...]]:
    """A page with no rows, as one row of nulls but the total."""
    return [(None, None, None, None, None, None, total)]


class Postgres:
    """An asyncpg pool of as many connections as the API's pool may hold."""

    SQL = [s.format(after="$1", first="$2") for s in STATEMENTS]

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def open(cls, settings: Settings) -> Postgres:
        url = settings.database_url
        dsn = "postgresql" + url[url.index("://") :]  # postgresql+asyncpg:// as asyncpg reads it
        pool = await asyncpg.create_pool(
            dsn,
            min_size=settings.db_pool_size,
            max_size=settings.db_pool_size + settings.db_max_overflow,
            reset=_nothing_to_reset,
        )
        return cls(pool)

    async def read(self, first: int, after: int) -> Rows:
        async with self.pool.acquire() as connection:
            page, firmware, pathways = [await connection.fetch(s, after, first) for s in self.SQL]
            return page or no_rows(await connection.fetchval(COUNT)), firmware, pathways


async def _nothing_to_reset(_connection: asyncpg.Connection) -> None:
    """Only SELECTs outside a transaction ran: no session state to undo on release."""


class Sqlite:
    """sqlite3 connections, one a thread of a pool as large as the API's may be."""

    SQL = [s.format(after=":after", first=":first") for s in STATEMENTS]

    def __init__(self, settings: Settings) -> None:
        self.path = settings.database_url.split(":///", 1)[1].split("?", 1)[0]
        self.threads = ThreadPoolExecutor(settings.db_pool_size + settings.db_max_overflow)
        self.own = threading.local()

    def _read(self, first: int, after: int) -> Rows:
        connection = getattr(self.own, "connection", None)
        if connection is None:
            connection = self.own.connection = sqlite3.connect(self.path, isolation_level=None)
        parameters = {"after": after, "first": first}
        page, firmware, pathways = [connection.execute(s, parameters).fetchall() for s in self.SQL]
        return page or no_rows(connection.execute(COUNT).fetchone()[0]), firmware, pathways

    async def read(self, first: int, after: int) -> Rows:
        return await asyncio.get_running_loop().run_in_executor(
            self.threads, self._read, first, after
        )


def device_after(cursor: str | None) -> int:
    """The device id an API cursor names (`after:<id>` or `gap:<id>`), 0 for none."""
    if cursor is None:
        return 0
    return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).partition(b":")[2])


def denial(query: str, field: str) -> dict[str, Any]:
    return {
        "message": DENIED,
        "locations": [{"line": 1, "column": query.index(field) + 1}],
        "path": ["devices", "nodes", 0, field],
        "extensions": {"code": "FORBIDDEN"},
    }


def answer(query: str, ssc: bool, rows: Rows) -> dict[str, Any]:
    """The GraphQL answer's JSON from the statements' rows."""
    page, firmware, pathways = rows
    asked = [index for index, field in enumerate(SSC_FIELDS) if field in query]
    leaving = defaultdict(list)
    for from_id, status, version in pathways:
        leaving[from_id].append({"to": {"version": version}, "status": status})
    by_device = defaultdict(list)
    latest: dict[int, str] = {}
    for firmware_id, device_id, version, status in firmware:
        by_device[device_id].append(
            {"version": version, "status": status, "upgradesTo": leaving[firmware_id]}
        )
        if status == "ACTIVE":
            latest[device_id] = version
    nodes = []
    for device_id, model_name, band, *zigbee, manufacturer, _total in page:
        if device_id is None:
            break
        node: dict[str, Any] = {
            "id": f"device:{device_id}",
            "modelName": model_name,
            "zigbeeBand": band,
            "manufacturer": {"name": manufacturer},
            "latestFirmware": {"version": latest[device_id]} if device_id in latest else None,
            "firmware": by_device[device_id],
        }
        for index in asked:
            node[SSC_FIELDS[index]] = zigbee[index] if ssc else None
        nodes.append(node)
    body: dict[str, Any] = {"data": {"devices": {"totalCount": page[0][-1], "nodes": nodes}}}
    if asked and not ssc and nodes:
        body["errors"] = [denial(query, SSC_FIELDS[index]) for index in asked]
    return body


async def open_database(settings: Settings) -> Postgres | Sqlite:
    if settings.database_url.startswith("sqlite"):
        return Sqlite(settings)
    return await Postgres.open(settings)


def create_app() -> Starlette:
    settings = load_settings()
    verifier = verifier_for(settings)
    database: Postgres | Sqlite | None = None

    async def graphql(request: Request) -> Response:
        try:
            principal = await verifier.verify(bearer_token(request.headers.get("authorization")))
        except AuthenticationError as error:
            return JSONResponse({"errors": [{"message": error.reason}]}, status_code=401)
        payload = json.loads(await request.body())
        variables = payload.get("variables") or {}
        assert database is not None  # opened before the first request
        rows = await database.read(
            variables.get("first", PAGE), device_after(variables.get("after"))
        )
        ssc = principal.party_category is PartyCategory.SSC
        body = json.dumps(answer(payload["query"], ssc, rows), separators=(",", ":"))
        return Response(body, media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        nonlocal database
        database = await open_database(settings)
        yield

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"])], lifespan=lifespan)


if __name__ == "__main__":
    uvicorn.run(create_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
