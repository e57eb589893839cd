"""`PUT /fleet`: a Supplier stores its fleet from the fleet file's CSV or an XLSX workbook of the
same columns, all or nothing, and reads it back with `myFleet`; any other caller is refused
before its body is read."""

from __future__ import annotations

import io
import logging
from dataclasses import replace

import pytest
from openpyxl import Workbook
from sqlalchemy import text

from bench.generate import load_synthetic_cpl
from server.app import create_app, create_services
from server.fleet_upload import XLSX
from tests.conftest import CATEGORIES
from tests.harness import asgi_client, fresh_database
from tests.test_planning_api import counting

FLEET = """manufacturer_identifier,model_identifier,hardware_version,firmware_version,meter_count
0A1B,1000,0100,7F000000,1200
0a1b,1000,0100,7f000000,34

0A1B,1111,0100,7F010000,300
"""
MY_FLEET = """{ myFleet { meters groups { device { id } firmwareVersion meterCount }
  plan { summary { meters upToDate upgradable blocked } } } }"""
GROUPS = [
    {"device": {"id": "device:1"}, "firmwareVersion": "7F000000", "meterCount": 1234},
    {"device": {"id": "device:2"}, "firmwareVersion": "7F010000", "meterCount": 300},
]


async def put(client, body: bytes | str, token: str | None, media: str = "text/csv"):
    headers = {"Content-Type": media}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return await client.put("/fleet", content=body, headers=headers)


def supplier(token, party: str = "P-NORTH") -> str:
    return token("LARGE_SUPPLIER", party_id=party)


async def test_a_csv_is_stored_as_groups_and_read_back(isolated) -> None:
    response = await put(isolated.client, FLEET, supplier(isolated.token))
    assert response.status_code == 200, response.text
    summary = response.json()
    assert {k: summary[k] for k in ("rows", "groups", "meters")} == {
        "rows": 3,
        "groups": 2,
        "meters": 1534,
    }
    body = await isolated.gql("LARGE_SUPPLIER", MY_FLEET, party_id="P-NORTH")
    fleet = body["data"]["myFleet"]
    assert fleet["groups"] == GROUPS and fleet["meters"] == 1534
    plan = fleet["plan"]["summary"]
    assert {k: summary[k] for k in ("upToDate", "upgradable", "blocked")} == {
        "upToDate": plan["upToDate"],
        "upgradable": plan["upgradable"],
        "blocked": plan["blocked"],
    }


async def test_an_xlsx_of_the_same_rows_stores_the_same_fleet(isolated) -> None:
    workbook = Workbook()
    sheet = workbook.active
    header, *rows = FLEET.splitlines()
    sheet.append(header.split(","))
    for row in rows:  # meter counts as numbers, identifiers as text cells
        cells = row.split(",") if row else []
        sheet.append([*cells[:-1], int(cells[-1])] if cells else [])
    data = io.BytesIO()
    workbook.save(data)
    response = await put(isolated.client, data.getvalue(), supplier(isolated.token), XLSX)
    assert response.status_code == 200, response.text
    assert response.json()["meters"] == 1534
    body = await isolated.gql("LARGE_SUPPLIER", MY_FLEET, party_id="P-NORTH")
    assert body["data"]["myFleet"]["groups"] == GROUPS


async def test_problems_are_reported_by_row_and_nothing_is_stored(isolated) -> None:
    assert (await put(isolated.client, FLEET, supplier(isolated.token))).status_code == 200
    bad = (
        "device_id,firmware_version,meter_count\n"
        "device:1,7F000000,10\n"
        "device:1,DEADBEEF,5\n"  # not on the CPL for the device
        "device:999,7F000000,5\n"
        "device:2,7F010000,many\n"
        "device:2,7F010000,0\n"
        "device:2,7F010000\n"
        "device:1,DEADBEEF,6\n"  # the same problem on a second row
    )
    response = await put(isolated.client, bad, supplier(isolated.token))
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert error["extensions"]["problemCount"] == 6
    assert error["extensions"]["problems"] == [
        {"row": 3, "problem": "firmware_version is not on the CPL for this device"},
        {"row": 4, "problem": "no device has this device_id"},
        {"row": 5, "problem": "meter_count must be a whole number"},
        {"row": 6, "problem": "meter_count must be at least 1"},
        {"row": 7, "problem": "the row has 2 cells and the header 3"},
        {"row": 8, "problem": "firmware_version is not on the CPL for this device"},
    ]
    body = await isolated.gql("LARGE_SUPPLIER", MY_FLEET, party_id="P-NORTH")
    assert body["data"]["myFleet"]["groups"] == GROUPS  # the earlier fleet, untouched


@pytest.mark.parametrize(
    ("body", "media", "status", "says"),
    [
        ("firmware_version\n7F000000\n", "text/csv", 400, "missing column(s)"),
        ("", "text/csv", 400, "the file is empty"),
        (b"\xff\xfe,,\n", "text/csv", 400, "not UTF-8"),
        (b"PK not a workbook", XLSX, 400, "not a readable XLSX workbook"),
        ("{}", "application/json", 415, "Content-Type"),
    ],
)
async def test_a_file_that_cannot_be_read_is_refused_whole(isolated, body, media, status, says):
    response = await put(isolated.client, body, supplier(isolated.token), media)
    assert response.status_code == status, response.text
    assert says in response.json()["errors"][0]["message"]
    assert await isolated.scalar("SELECT count(*) FROM stored_fleet") == 0


@pytest.mark.parametrize("category", [c for c in CATEGORIES if not c.endswith("SUPPLIER")])
async def test_any_other_category_is_refused_403(isolated, category) -> None:
    claims = {"manufacturer_id": "0A1B"} if category == "MANUFACTURER" else {}
    token = isolated.token(category, party_id="P-NORTH", **claims)
    response = await put(isolated.client, FLEET, token)
    assert response.status_code == 403
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await isolated.scalar("SELECT count(*) FROM stored_fleet") == 0


async def test_without_a_token_401(isolated) -> None:
    response = await put(isolated.client, FLEET, None)
    assert response.status_code == 401
    assert await isolated.scalar("SELECT count(*) FROM stored_fleet") == 0


async def test_the_body_has_the_usual_bound_and_the_rows_theirs(isolated, settings) -> None:
    own = replace(settings, database_url=isolated.services.settings.database_url)
    small = replace(own, max_body_bytes=len(FLEET) - 1, max_fleet_rows=2)
    services = create_services(small)
    try:
        async with asgi_client(create_app(small, services)) as client:
            response = await put(client, FLEET, supplier(isolated.token))
            assert response.status_code == 413
            rows = FLEET.replace("\n\n", "\n")[:-1]  # under the body bound, 3 rows
            response = await put(client, rows, supplier(isolated.token))
            assert response.status_code == 400
            assert "CPL_MAX_FLEET_ROWS" in response.json()["errors"][0]["message"]
    finally:
        await services.engine.dispose()
    assert await isolated.scalar("SELECT count(*) FROM stored_fleet") == 0


async def test_no_fleet_is_written_to_the_logs(isolated, caplog) -> None:
    """Not by the project's loggers at any level, nor by any at the server's (a driver's
    DEBUG lines echo every statement's parameters, whatever the table: not a level to run)."""
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="cpl_pathways")
    fleet = "device_id,firmware_version,meter_count\ndevice:1,7F000000,918273\n"
    bad = "device_id,firmware_version,meter_count\ndevice:1,5EC2E7AA,918273\n"
    for body in (fleet, bad):
        await put(isolated.client, body, supplier(isolated.token))
    items = [{"deviceId": "device:2", "firmwareVersion": "7F010000", "meterCount": 918273}]
    query = "mutation($i: [FleetItemInput!]!) { replaceFleet(input: {items: $i}) { __typename } }"
    await isolated.gql("SMALL_SUPPLIER", query, {"i": items})
    await isolated.gql("SMALL_SUPPLIER", MY_FLEET)
    logged = caplog.text + "".join(str(record.__dict__) for record in caplog.records)
    assert caplog.records  # the access lines were captured
    assert "918273" not in logged and "5EC2E7AA" not in logged and "7F010000" not in logged


async def test_ten_thousand_groups_are_stored_in_bulk_and_replaced_whole(
    settings, token, tmp_path
) -> None:
    async with fresh_database(tmp_path) as url:
        cpl = await load_synthetic_cpl(url, devices=2000, firmware_per_device=5)
        own = replace(settings, database_url=url)
        services = create_services(own)
        statements = counting(services.engine)
        rows = [
            f"device:{device.device_id},{version},{n + 1}"
            for device in cpl.devices
            for n, version in enumerate(device.firmware_versions)
        ]
        assert len(rows) == 10_000
        body = "device_id,firmware_version,meter_count\n" + "\n".join(rows) + "\n"
        try:
            async with asgi_client(create_app(own, services)) as client:
                response = await put(client, body, supplier(token))
                assert response.status_code == 200, response.text
                assert response.json()["groups"] == 10_000
                assert response.json()["meters"] == 2000 * (1 + 2 + 3 + 4 + 5)
                inserts = [s for s in statements if s.startswith("INSERT INTO fleet_group")]
                assert 1 <= len(inserts) <= 20  # bulk: a statement per thousands of groups
                # Replaced whole: the second fleet is all that is left.
                header = "device_id,firmware_version,meter_count\n"
                response = await put(client, header + rows[7], supplier(token))
                assert response.json()["groups"] == 1
                async with services.engine.connect() as connection:
                    count = await connection.execute(text("SELECT count(*) FROM fleet_group"))
                    assert count.scalar() == 1
        finally:
            await services.engine.dispose()
