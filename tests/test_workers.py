"""`cpl-pathways serve`: its event loop, and `--workers N` (several processes on PostgreSQL,
refused on SQLite)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import ConnectionClosed

from tests.harness import BACKEND, fresh_database
from tests.live import DEADLINE, ROOT, cli, cli_env, cli_server, eventually, subscribe

VIEWER = {"query": "query Who { viewer { partyId } }"}


def test_serve_refuses_several_workers_on_sqlite(tmp_path):
    env = cli_env(f"sqlite+aiosqlite:///{tmp_path / 'cpl.db'}", tmp_path / "data")
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--workers", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "needs PostgreSQL" in result.stderr
    assert not (tmp_path / "cpl.db").exists()  # refused before the database was touched


def graphql_requests(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "cpl_http_requests_total" and sample.labels["route"] == "/graphql"
    )


@pytest.mark.skipif(BACKEND != "postgresql", reason="several workers need PostgreSQL")
async def test_two_workers_answer_count_in_one_metrics_and_shut_down_gracefully(tmp_path):
    async with fresh_database(tmp_path) as url:
        env = cli_env(url, tmp_path / "data", CPL_LOG_FORMAT="json")
        await cli(env, "seed", "--demo")
        token = await cli(env, "token", "NETWORK_PARTY")
        headers = {"Authorization": f"Bearer {token}"}
        async with cli_server(env, tmp_path / "server.log", "--workers", "2") as server:

            async def one() -> None:
                async with httpx.AsyncClient() as client:  # a connection of its own
                    response = await client.post(
                        server.base + "/graphql", json=VIEWER, headers=headers
                    )
                    assert response.status_code == 200

            sent = 0

            async def both_answered() -> bool:
                """Another round of 8 requests at once, until both workers' logs have one."""
                nonlocal sent
                async with asyncio.TaskGroup() as group:
                    for _ in range(8):
                        group.create_task(one())
                sent += 8
                pids = {
                    line["pid"]
                    for line in map(json.loads, server.log_lines())
                    if line.get("operation_name") == "Who"
                }
                return len(pids) == 2

            await eventually(both_answered, "both workers answering", every=0.2)
            async with httpx.AsyncClient() as client:
                scrapes = [
                    graphql_requests((await client.get(server.base + "/metrics")).text)
                    for _ in range(4)
                ]
            assert scrapes == [sent] * 4  # every scrape, whichever worker answers, counts all

            address = server.base.removeprefix("http://")
            query = "subscription { cplChanges { eventId } }"
            async with subscribe(address, token, query) as subscriber:
                server.process.terminate()
                with pytest.raises(ConnectionClosed) as closed:
                    await subscriber.next(within=15)
                assert closed.value.rcvd.code == 1012  # service restart: reconnect elsewhere
            assert await asyncio.wait_for(server.process.wait(), DEADLINE) == 0


def mapped_files(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


async def test_serve_runs_on_asyncios_own_event_loop(tmp_path):
    """uvloop, uvicorn's "auto" choice, left requests of some of 200 keep-alive clients unread
    for seconds (bench/README.md), so the serving process must not load it."""
    async with fresh_database(tmp_path) as url:
        env = cli_env(url, tmp_path / "data")
        async with cli_server(env, tmp_path / "server.log") as server:
            libraries = mapped_files(server.process.pid)
    assert "httptools" in libraries  # the serving process's own map, with the fast HTTP parser
    assert "uvloop" not in libraries
