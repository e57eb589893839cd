"""Logs as an operator reads them from a real server: JSON lines with request ids, one access
line per request, and never a token, a query-string value or an SSC-only value."""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import quote

import httpx
import pytest

from config.logs import Exchange, JsonFormatter, RequestIdFilter, TextFormatter
from tests.harness import BACKEND, asgi_client, fresh_database
from tests.live import cli, cli_env, cli_server, eventually

SSC_ONLY_VALUE = "Lumen Silicon"  # a chipset vendor of the demo data: SSC only
SSC_QUERY = '{ devices(filter: { zigbeeChipsetVendor: "Lumen Silicon" }) { totalCount } }'


@pytest.fixture(scope="module")
async def json_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("logs")
    async with fresh_database(tmp) as url:
        env = cli_env(url, tmp / "data", CPL_LOG_FORMAT="json")
        await cli(env, "seed", "--demo")
        ssc = await cli(env, "token", "SSC")
        async with cli_server(env, tmp / "server.log") as server:
            yield server, ssc


async def records(server, *request_ids: str) -> list[dict]:
    """The server's log, once the access lines of `request_ids` are in it (a server writes
    an access line just after the response's last byte, so a moment after the client has it)."""

    def written() -> list[dict]:
        lines = [json.loads(line) for line in server.log_lines()]
        done = {r["request_id"] for r in lines if r["logger"] == "cpl_pathways.access"}
        return lines if done >= set(request_ids) else []

    return await eventually(written, f"the access lines of {request_ids}")


async def test_access_log_never_holds_a_token_or_query_value(json_server):
    server, ssc = json_server
    async with httpx.AsyncClient(base_url=server.base) as client:
        # A careless client puts its token in the URL: refused, and not written down.
        leaked = await client.get(
            f"/graphql?query={quote('{ viewer { partyId } }')}&access_token={ssc}"
        )
        assert leaked.status_code == 401
        # An SSC analyst's GET filter on an SSC-only value: answered, and not written down.
        answer = await client.get(
            f"/graphql?query={quote(SSC_QUERY)}", headers={"Authorization": f"Bearer {ssc}"}
        )
        assert answer.status_code == 200
        assert answer.json()["data"]["devices"]["totalCount"] > 0
        # A token in an unknown path is cut short in the log.
        unknown = await client.get(f"/graphql/{ssc}")
        assert unknown.status_code == 404
        # A token offered as a request id is not taken as one.
        echoed = await client.post(
            "/graphql",
            json={"query": SSC_QUERY},
            headers={"Authorization": f"Bearer {ssc}", "X-Request-ID": ssc},
        )
        assert echoed.headers["x-request-id"] != ssc
    ids = [r.headers["x-request-id"] for r in (leaked, answer, echoed)]
    lines = await records(server, *ids, unknown.headers["x-request-id"])
    text = server.log.read_text()
    assert ssc not in text
    assert ssc.split(".")[2] not in text  # not even the signature alone
    assert SSC_ONLY_VALUE not in text
    assert "access_token" not in text and "zigbeeChipsetVendor" not in text
    access = {r["request_id"]: r for r in lines if r["logger"] == "cpl_pathways.access"}
    assert [(access[i]["method"], access[i]["path"], access[i]["status"]) for i in ids] == [
        ("GET", "/graphql", 401),
        ("GET", "/graphql", 200),
        ("POST", "/graphql", 200),
    ]


async def test_every_log_line_is_json_with_a_request_id_taken_or_made(json_server):
    server, ssc = json_server
    async with httpx.AsyncClient(base_url=server.base) as client:
        given = await client.post(
            "/graphql",
            json={"query": "query FleetCheck { viewer { partyId } }"},
            headers={"Authorization": f"Bearer {ssc}", "X-Request-ID": "portal-7.42"},
        )
        made = await client.post("/graphql", json={"query": "{ viewer { partyId } }"})
    assert given.headers["x-request-id"] == "portal-7.42"
    assert made.status_code == 401
    made_id = made.headers["x-request-id"]
    assert len(made_id) == 32
    lines = await records(server, "portal-7.42", made_id)
    assert all({"timestamp", "level", "logger", "message", "request_id"} <= set(r) for r in lines)
    line = next(r for r in lines if r["request_id"] == "portal-7.42")
    assert line == line | {
        "logger": "cpl_pathways.access",
        "level": "INFO",
        "method": "POST",
        "path": "/graphql",
        "status": 200,
        "party_category": "SSC",
        "operation_type": "query",
        "operation_name": "FleetCheck",
    }
    assert line["duration_ms"] > 0
    # The application's own lines carry the request id too (here: the rejected token).
    rejected = [r for r in lines if r["request_id"] == made_id]
    assert {r["logger"] for r in rejected} == {"cpl_pathways", "cpl_pathways.access"}
    assert not any(r["logger"] == "uvicorn.access" for r in lines)


def test_a_path_cannot_forge_a_log_line():
    from server.requests import _where

    scope = {"method": "GET", "path": "/x\n2026-12-04T00:00:00.000Z INFO cpl_pathways.access FAKE"}
    method, route, path = _where(scope)
    assert (method, route) == ("GET", "other")
    assert path == "/x%0A2026-12-04T00:00:00.000Z%20INFO%20cpl_pathways.access%20FAKE"
    assert _where({"method": "GET", "path": "/graphql"})[2] == "/graphql"


def test_text_format_for_development_carries_the_request_id():
    from config.logs import EXCHANGE

    record = logging.LogRecord("cpl_pathways", logging.INFO, "", 0, "hello %s", ("there",), None)
    token = EXCHANGE.set(Exchange("req-1"))
    try:
        RequestIdFilter().filter(record)
    finally:
        EXCHANGE.reset(token)
    line = TextFormatter().format(record)
    assert line.endswith(" INFO cpl_pathways [req-1] hello there")
    assert json.loads(JsonFormatter().format(record))["request_id"] == "req-1"


OUTAGES = ["postgresql+asyncpg://127.0.0.1:1/cpl"]  # nothing listens on port 1
if BACKEND == "postgresql":
    from tests.harness import PG_URL

    OUTAGES.append(PG_URL.rsplit("/", 1)[0] + "/cpl_no_such_database")


def warnings_of(caplog) -> list[tuple[str, object]]:
    """Every record at WARNING or above, with its traceback if it has one."""
    return [(r.levelname, r.exc_info) for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("url", OUTAGES, ids=["refused", "no-database"][: len(OUTAGES)])
async def test_a_database_outage_logs_one_warning_line_not_a_traceback(
    url, settings, token, caplog
):
    from dataclasses import replace

    from server.app import create_app, create_services

    down = replace(settings, database_url=url)
    services = create_services(down)
    app = create_app(down, services)
    caplog.set_level(logging.INFO)
    try:
        async with asgi_client(app) as client:
            assert (await client.get("/livez")).status_code == 200
            for path in ("/readyz", "/healthz"):
                caplog.clear()
                probe = await client.get(path)
                assert probe.status_code == 503
                assert probe.json() == {"status": "unavailable", "reason": "database unavailable"}
                assert warnings_of(caplog) == [("WARNING", None)]
            caplog.clear()
            query = await client.post(
                "/graphql",
                json={"query": "{ devices { totalCount } }"},
                headers={"Authorization": f"Bearer {token('LARGE_SUPPLIER')}"},
            )
            # The data revision (for the response cache) is read first: the outage is a 503.
            assert (query.status_code, query.headers["retry-after"]) == (503, "5")
            assert query.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            assert warnings_of(caplog) == [("WARNING", None)]
            assert "database unavailable" in caplog.text
            assert "Traceback" not in caplog.text
    finally:
        await services.engine.dispose()


@pytest.mark.skipif(BACKEND != "postgresql", reason="the change listener is PostgreSQL's")
async def test_an_outage_is_two_lines_however_long_and_the_listener_backs_off(tmp_path, caplog):
    from sqlalchemy.engine import make_url

    from models.database import create_engine, migrate, session_factory
    from notifications.bus import PostgresChangeBus

    async with fresh_database(tmp_path) as url:
        engine = create_engine(url)
        await migrate(engine)
        bus = PostgresChangeBus(
            url, session_factory(engine), retry_seconds=0.5, retry_max_seconds=4
        )
        bus._url = make_url(OUTAGES[0])  # the database away: nothing listens there
        delays: list[float] = []

        async def pause(delay: float) -> None:  # counts the attempts, waits for none
            delays.append(delay)
            if len(delays) == 8:
                bus._url = make_url(url)  # the database back
            await asyncio.sleep(0)

        bus.pause = pause
        caplog.set_level(logging.INFO, logger="cpl_pathways.bus")
        try:
            await bus.start()
            await bus.listening.wait()
        finally:
            await bus.stop()
            await engine.dispose()
    assert delays == [0.5, 1, 2, 4, 4, 4, 4, 4]  # doubling from the first to the cap
    lines = [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0][0] == "WARNING" and "change listener: database unavailable" in lines[0][1]
    assert lines[1][:2] == ("INFO", "change listener: working again after 8 failed attempt(s)")
    assert lines[0][2] is None and "Traceback" not in caplog.text
