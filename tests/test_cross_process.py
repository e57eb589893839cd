"""Several API processes on one PostgreSQL: a change made through one reaches subscribers of
another, also after the listener's connection was cut; a write is in the other's answers within
a second, also after its revision connection was cut, and once its listener hears of it even
when the other trusts its revision for a minute."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from models.revision import REVISION_CONNECTION_NAME
from notifications.bus import LISTENER_NAME
from tests.harness import BACKEND, fresh_database
from tests.live import cli_env, free_port, subscribe

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="LISTEN/NOTIFY is PostgreSQL's")
ROOT = Path(__file__).resolve().parent.parent
CHANGES = "subscription { cplChanges { eventId kind firmware { version } } }"
ADD = """mutation($v: String!) { addFirmware(input: { deviceId: "device:2", version: $v }) {
  __typename } }"""


async def cli(env: dict, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", *args, cwd=ROOT, env=env, stdout=subprocess.PIPE
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    return stdout.decode().strip()


async def wait_healthy(port: int) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(100):
            try:
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"server on {port} never became healthy")


@contextlib.asynccontextmanager
async def two_api_processes(
    tmp_path: Path, **second: str
) -> AsyncIterator[tuple[dict, str, list[int]]]:
    """Two `serve` processes on one fresh, seeded PostgreSQL database: (env, url, ports); the
    second with `second` in its environment too."""
    async with fresh_database(tmp_path) as url:
        env = cli_env(url, tmp_path / "data")
        await cli(env, "seed", "--demo")
        ports = [free_port(), free_port()]
        servers = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "server.cli", "serve", "--port", str(port), cwd=ROOT,
                env=env | (second if index else {}),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            for index, port in enumerate(ports)
        ]  # fmt: skip
        try:
            for port in ports:
                await wait_healthy(port)
            yield env, url, ports
        finally:
            for server in servers:
                server.terminate()
            for server in servers:
                await asyncio.wait_for(server.wait(), 10)


async def test_a_change_through_one_process_reaches_subscribers_of_another(tmp_path):
    async with two_api_processes(tmp_path) as (env, url, ports):
        await asyncio.sleep(0.5)  # let each process's listener connect
        secas = await cli(env, "token", "SECAS")
        supplier = await cli(env, "token", "SMALL_SUPPLIER")

        async def add(version: str) -> None:
            added = await ask(ports[0], secas, ADD, version)
            assert added["data"]["addFirmware"]["__typename"] == "AddFirmwareSuccess"

        async with subscribe(f"127.0.0.1:{ports[1]}", supplier, CHANGES) as remote:
            await add("C1000001")
            change = (await remote.next(10))["payload"]["data"]["cplChanges"]
            assert (change["kind"], change["firmware"]["version"]) == (
                "FIRMWARE_ADDED",
                "C1000001",
            )

            # Cut every listener's connection: they reconnect, re-listen and catch up.
            assert await cut_connections(url, LISTENER_NAME) == 2
            await add("C1000002")
            change = (await remote.next(15))["payload"]["data"]["cplChanges"]
            assert change["firmware"]["version"] == "C1000002"
            assert await remote.nothing_within(1.5)  # once, not twice


COUNT_NAMED = text(
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND application_name = :name"
)
TERMINATE_NAMED = text(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = current_database() AND application_name = :name"
)


async def cut_connections(url: str, name: str) -> int:
    """Terminate the connections named `name`, once there is one at least: how many."""
    admin = create_async_engine(url)
    try:
        for _ in range(100):
            async with admin.connect() as connection:
                if await connection.scalar(COUNT_NAMED, {"name": name}):
                    return len((await connection.execute(TERMINATE_NAMED, {"name": name})).all())
            await asyncio.sleep(0.05)
        raise AssertionError(f"no connection named {name}")
    finally:
        await admin.dispose()


LISTED = '{ device(id: "device:2") { firmware { version } } }'


async def ask(port: int, token: str, query: str, version: str = "") -> dict:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"http://127.0.0.1:{port}/graphql",
            json={"query": query, "variables": {"v": version}},
            headers={"Authorization": f"Bearer {token}"},
        )
    return response.json()


async def seen_within(ports: list[int], tokens: tuple[str, str], version: str, seconds: float):
    """Add firmware `version` through the first process (a SECAS token), then ask the second (a
    Supplier's) until its answer lists it: fail if that takes `seconds` or more."""
    secas, supplier = tokens
    added = await ask(ports[0], secas, ADD, version)
    assert added["data"]["addFirmware"]["__typename"] == "AddFirmwareSuccess"
    written = asyncio.get_running_loop().time()
    while True:
        after = await ask(ports[1], supplier, LISTED)
        if version in [f["version"] for f in after["data"]["device"]["firmware"]]:
            return
        elapsed = asyncio.get_running_loop().time() - written
        assert elapsed < seconds, f"still stale after {seconds} s"
        await asyncio.sleep(0.05)


async def test_a_write_through_one_process_is_in_the_next_cached_answer_of_another(tmp_path):
    async with two_api_processes(tmp_path) as (env, url, ports):
        tokens = (await cli(env, "token", "SECAS"), await cli(env, "token", "SMALL_SUPPLIER"))
        before = await ask(ports[1], tokens[1], LISTED)
        assert await ask(ports[1], tokens[1], LISTED) == before  # now in process B's cache
        # Within a second at most (CPL_REVISION_MAX_AGE_MS), at once when B's listener hears it.
        await seen_within(ports, tokens, "C2000001", 1.0)
        # Cut the revision connections: the pool answers while they are replaced.
        await cut_connections(url, REVISION_CONNECTION_NAME)
        await seen_within(ports, tokens, "C2000002", 1.0)


async def test_the_change_listener_tells_another_process_its_revision_is_out_of_date(tmp_path):
    # B trusts the revision it read for a minute: only its listener can tell it of A's write.
    async with two_api_processes(tmp_path, CPL_REVISION_MAX_AGE_MS="60000") as (env, url, ports):
        await asyncio.sleep(0.5)  # let each process's listener connect
        tokens = (await cli(env, "token", "SECAS"), await cli(env, "token", "SMALL_SUPPLIER"))
        before = await ask(ports[1], tokens[1], LISTED)
        assert await ask(ports[1], tokens[1], LISTED) == before  # now in process B's cache
        await seen_within(ports, tokens, "C3000001", 1.0)
        # A write while B's listener is down is caught up when it reconnects (1 s later).
        assert await cut_connections(url, LISTENER_NAME) == 2
        await seen_within(ports, tokens, "C3000002", 5.0)
