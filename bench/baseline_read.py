"""The read benchmark's baseline: a hand-written Starlette endpoint that answers the typical
Supplier query (and its SSC variants) with what a careful engineer would write by hand.

It verifies the same ES256 token with the same verifier, reads the same rows with three SQL
statements (the page with its total count, the page's firmware, their pathways) through
SQLAlchemy Core, applies the same field rule, and returns the same JSON. It is no API: one
query shape, no GraphQL; the benchmark checks its answers equal the API's after parsing.

Run as ``python -m bench.baseline_read PORT`` with the API's CPL_* environment.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from typing import Any

import uvicorn
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from models.database import create_engine
from models.tables import Device, Firmware, FirmwareStatus, Manufacturer, UpgradePathway
from permissions.auth_errors import AuthenticationError
from permissions.principal import PartyCategory
from permissions.tokens import bearer_token, verifier_for
from settings import load_settings

SSC_FIELDS = ("zigbeeStackVersion", "zigbeeChipsetVendor")
DENIED = "Forbidden: this field is readable by the SSC only."
PAGE = 50

device_t, firmware_t, pathway_t = Device.__table__, Firmware.__table__, UpgradePathway.__table__
manufacturer_t = Manufacturer.__table__
PAGE_ROWS = (
    select(
        device_t.c.id,
        device_t.c.model_name,
        device_t.c.zigbee_band,
        device_t.c.zigbee_stack_version,
        device_t.c.zigbee_chipset_vendor,
        manufacturer_t.c.name,
        func.count().over().label("total"),
    )
    .join(manufacturer_t, manufacturer_t.c.id == device_t.c.manufacturer_id)
    .order_by(device_t.c.id)
    .limit(PAGE)
)


def firmware_rows(device_ids: list[int]) -> Any:
    return (
        select(
            firmware_t.c.id,
            firmware_t.c.device_id,
            firmware_t.c.version,
            firmware_t.c.status,
            firmware_t.c.added_to_cpl_on,
        )
        .where(firmware_t.c.device_id.in_(device_ids))
        .order_by(firmware_t.c.device_id, firmware_t.c.added_to_cpl_on, firmware_t.c.id)
    )


def pathway_rows(device_ids: list[int]) -> Any:
    target = firmware_t.alias("target")
    return (
        select(pathway_t.c.from_firmware_id, pathway_t.c.status, target.c.version)
        .join(target, target.c.id == pathway_t.c.to_firmware_id)
        .where(pathway_t.c.device_id.in_(device_ids))
        .order_by(pathway_t.c.id)
    )


def denial(query: str, field: str) -> dict[str, Any]:
    return {
        "message": DENIED,
        "locations": [{"line": 1, "column": query.index(field) + 1}],
        "path": ["devices", "nodes", 0, field],
        "extensions": {"code": "FORBIDDEN"},
    }


def create_app() -> Starlette:
    settings = load_settings()
    engine = create_engine(settings.database_url)
    verifier = verifier_for(settings)

    async def graphql(request: Request) -> JSONResponse:
        try:
            principal = await verifier.verify(bearer_token(request.headers.get("authorization")))
        except AuthenticationError as error:
            return JSONResponse({"errors": [{"message": error.reason}]}, status_code=401)
        query = (await request.json())["query"]
        asked = [field for field in SSC_FIELDS if field in query]
        ssc = principal.party_category is PartyCategory.SSC
        async with engine.connect() as connection:
            page = (await connection.execute(PAGE_ROWS)).all()
            ids = [row.id for row in page]
            firmware = (await connection.execute(firmware_rows(ids))).all()
            pathways = (await connection.execute(pathway_rows(ids))).all()
        leaving = defaultdict(list)
        for pathway in pathways:
            leaving[pathway.from_firmware_id].append(
                {"to": {"version": pathway.version}, "status": pathway.status.name}
            )
        by_device = defaultdict(list)
        for row in firmware:
            by_device[row.device_id].append(row)
        nodes = []
        for device in page:
            listed = by_device[device.id]
            active = [f for f in listed if f.status is FirmwareStatus.ACTIVE]
            latest = max(active, key=lambda f: (f.added_to_cpl_on, f.id), default=None)
            node: dict[str, Any] = {
                "id": f"device:{device.id}",
                "modelName": device.model_name,
                "zigbeeBand": device.zigbee_band.name if device.zigbee_band else None,
                "manufacturer": {"name": device.name},
                "latestFirmware": {"version": latest.version} if latest else None,
                "firmware": [
                    {"version": f.version, "status": f.status.name, "upgradesTo": leaving[f.id]}
                    for f in listed
                ],
            }
            for field in asked:
                column = (
                    "zigbee_stack_version" if field == SSC_FIELDS[0] else "zigbee_chipset_vendor"
                )
                node[field] = getattr(device, column) if ssc else None
            nodes.append(node)
        total = page[0].total if page else 0
        body: dict[str, Any] = {"data": {"devices": {"totalCount": total, "nodes": nodes}}}
        if asked and not ssc and nodes:
            body["errors"] = [denial(query, field) for field in asked]
        return JSONResponse(body)

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"])])


if __name__ == "__main__":
    uvicorn.run(create_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
