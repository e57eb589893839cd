"""Nested relations go through per-request DataLoaders: the statement count of a page does not
grow with the page's size."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import httpx
import pytest
from sqlalchemy import event, insert

from models.database import create_engine, migrate
from models.tables import (
    Device,
    DeviceType,
    Firmware,
    FirmwareStatus,
    Manufacturer,
    PathwayStatus,
    UpgradePathway,
    utcnow,
)
from schema.app import create_app, create_services
from tests.conftest import fresh_database

NOW = utcnow()
QUERY = """query($first: Int!) { devices(first: $first) { nodes {
  manufacturer { name } firmware { upgradesTo { to { version } } } } } }"""


async def fill(url: str, devices: int) -> None:
    engine = create_engine(url)
    await migrate(engine)
    async with engine.begin() as connection:
        await connection.execute(
            insert(Manufacturer),
            [{"id": m, "identifier": f"{m:04X}", "name": f"M{m}"} for m in (1, 2, 3)],
        )
        await connection.execute(
            insert(Device),
            [
                {
                    "id": d,
                    "manufacturer_id": 1 + d % 3,
                    "device_type": DeviceType.ESME,
                    "model_identifier": f"{d:04X}",
                    "model_name": f"Model {d}",
                    "hardware_version": "0001",
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for d in range(1, devices + 1)
            ],
        )
        await connection.execute(
            insert(Firmware),
            [
                {
                    "id": d * 3 + i,
                    "device_id": d,
                    "version": f"{d:04X}{i:04X}",
                    "added_to_cpl_on": date(2020, 1, 1 + i),
                    "status": FirmwareStatus.ACTIVE,
                    "created_at": NOW,
                }
                for d in range(1, devices + 1)
                for i in range(3)
            ],
        )
        await connection.execute(
            insert(UpgradePathway),
            [
                {
                    "id": d * 3 + i,
                    "device_id": d,
                    "from_firmware_id": d * 3 + i,
                    "to_firmware_id": d * 3 + i + 1,
                    "published_by": "test",
                    "status": PathwayStatus.PUBLISHED,
                    "revision": 1,
                    "published_at": NOW,
                    "updated_at": NOW,
                }
                for d in range(1, devices + 1)
                for i in range(2)
            ],
        )
    await engine.dispose()


@pytest.fixture(scope="module")
async def counted(settings, tmp_path_factory):
    async with fresh_database(tmp_path_factory.mktemp("count")) as url:
        await fill(url, 200)
        big = replace(settings, database_url=url)
        services = create_services(big)
        statements: list[str] = []
        event.listen(
            services.engine.sync_engine,
            "before_cursor_execute",
            lambda conn, cursor, sql, *args: statements.append(sql),
        )
        yield create_app(big, services), statements
        await services.engine.dispose()


async def run(app, token, first: int, statements: list[str]) -> int:
    statements.clear()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post(
            "/graphql",
            json={"query": QUERY, "variables": {"first": first}},
            headers={"Authorization": f"Bearer {token('SMALL_SUPPLIER')}"},
        )
    body = response.json()
    assert "errors" not in body
    nodes = body["data"]["devices"]["nodes"]
    assert len(nodes) == first
    assert all(len(n["firmware"]) == 3 for n in nodes)
    assert all(n["firmware"][0]["upgradesTo"][0]["to"]["version"] for n in nodes)
    return len([s for s in statements if s.lstrip().upper().startswith("SELECT")])


async def test_statements_do_not_grow_with_the_page(counted, token):
    app, statements = counted
    small = await run(app, token, 20, statements)
    large = await run(app, token, 200, statements)
    assert small == large
    assert large <= 6  # count, page, manufacturers, firmware, pathways, target firmware
