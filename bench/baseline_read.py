"""The read benchmark's baseline: a hand-written Starlette endpoint that answers the typical
Supplier query (and its SSC variants) with what a careful engineer would write by hand.

It verifies the same ES256 token with the same verifier, reads the same rows with three SQL
statements (the page with the total count, the page's firmware, their pathways), applies the
same field rule, and returns the same JSON. It is no API: one query shape, no GraphQL; the
benchmark checks its answers equal the API's after parsing.

It is meant as the speed of the wire, so it does nothing a fast hand-written endpoint would not:
the statements are built and compiled by SQLAlchemy Core once, at start, and each runs on the
pooled driver connection in one call (aiosqlite: one thread hop a statement, where SQLAlchemy's
adapter makes four; asyncpg: one round trip, no pre-ping). The page reads its 50 rows in id
order with the total as a scalar subquery (a window `count() over ()` would join and sort every
device first); the two others select the page's ids as a subquery, so no id list is bound and
no statement is rebuilt per request; enum columns arrive as the plain names they are stored as.

Run as ``python -m bench.baseline_read PORT`` with the API's CPL_* environment.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import uvicorn
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from config.settings import load_settings
from models.database import create_engine, is_sqlite
from models.tables import Device, Firmware, Manufacturer, UpgradePathway
from permissions.auth_errors import AuthenticationError
from permissions.principal import PartyCategory
from permissions.tokens import bearer_token, verifier_for

SSC_FIELDS = ("zigbeeStackVersion", "zigbeeChipsetVendor")
DENIED = "Forbidden: this field is readable by the SSC only."
PAGE = 50

device_t, firmware_t, pathway_t = Device.__table__, Firmware.__table__, UpgradePathway.__table__
manufacturer_t = Manufacturer.__table__
target_t = firmware_t.alias("target")
PAGE_IDS = select(device_t.c.id).order_by(device_t.c.id).limit(PAGE).scalar_subquery()
PAGE_ROWS = (
    select(
        device_t.c.id,
        device_t.c.model_name,
        device_t.c.zigbee_band,
        device_t.c.zigbee_stack_version,
        device_t.c.zigbee_chipset_vendor,
        manufacturer_t.c.name,
        select(func.count()).select_from(device_t).scalar_subquery(),
    )
    .join(manufacturer_t, manufacturer_t.c.id == device_t.c.manufacturer_id)
    .order_by(device_t.c.id)
    .limit(PAGE)
)
FIRMWARE_ROWS = (  # oldest on the CPL first: the last ACTIVE one is the latest
    select(firmware_t.c.id, firmware_t.c.device_id, firmware_t.c.version, firmware_t.c.status)
    .where(firmware_t.c.device_id.in_(PAGE_IDS))
    .order_by(firmware_t.c.device_id, firmware_t.c.added_to_cpl_on, firmware_t.c.id)
)
PATHWAY_ROWS = (
    select(pathway_t.c.from_firmware_id, pathway_t.c.status, target_t.c.version)
    .join(target_t, target_t.c.id == pathway_t.c.to_firmware_id)
    .where(pathway_t.c.device_id.in_(PAGE_IDS))
    .order_by(pathway_t.c.id)
)


class Rows:
    """The three statements as SQL text for the engine's dialect, run on the driver itself."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sqlite = is_sqlite(str(engine.url))
        self.sql = [sql_text(s, engine) for s in (PAGE_ROWS, FIRMWARE_ROWS, PATHWAY_ROWS)]

    async def read(self) -> list[Sequence[Sequence[Any]]]:
        async with self.engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            if self.sqlite:
                return [await driver.execute_fetchall(sql) for sql in self.sql]
            return [await driver.fetch(sql) for sql in self.sql]


def sql_text(statement: Select[Any], engine: AsyncEngine) -> str:
    """No parameters: the page size is a literal, the ids a subquery."""
    return str(statement.compile(engine, compile_kwargs={"literal_binds": True}))


def denial(query: str, field: str) -> dict[str, Any]:
    return {
        "message": DENIED,
        "locations": [{"line": 1, "column": query.index(field) + 1}],
        "path": ["devices", "nodes", 0, field],
        "extensions": {"code": "FORBIDDEN"},
    }


def answer(query: str, ssc: bool, rows: list[Sequence[Sequence[Any]]]) -> dict[str, Any]:
    """The GraphQL answer's JSON from the three statements' rows (tuples in select order)."""
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
    total = page[0][-1] if page else 0
    body: dict[str, Any] = {"data": {"devices": {"totalCount": total, "nodes": nodes}}}
    if asked and not ssc and nodes:
        body["errors"] = [denial(query, SSC_FIELDS[index]) for index in asked]
    return body


def create_app() -> Starlette:
    settings = load_settings()
    # The pool hands out driver connections that never open a transaction (plain SELECTs on
    # both drivers run in autocommit), so nothing needs resetting when one comes back.
    engine = create_engine(settings.database_url, pool_reset_on_return=None, pool_pre_ping=False)
    rows = Rows(engine)
    verifier = verifier_for(settings)

    async def graphql(request: Request) -> JSONResponse:
        try:
            principal = await verifier.verify(bearer_token(request.headers.get("authorization")))
        except AuthenticationError as error:
            return JSONResponse({"errors": [{"message": error.reason}]}, status_code=401)
        query = (await request.json())["query"]
        ssc = principal.party_category is PartyCategory.SSC
        return JSONResponse(answer(query, ssc, await rows.read()))

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"])])


if __name__ == "__main__":
    uvicorn.run(create_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
