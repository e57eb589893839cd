"""Several API processes on one PostgreSQL: a change made through one reaches subscribers of
another, also after the listener's connection was cut; a write is in the other's answers, also
after its revision connection was cut, and once its listener hears of it even when the other
trusts its revision for a minute. How soon is measured in `make bench`, not asserted here: a
test waits for what must happen (`tests.live.eventually`), it does not time it."""

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
from tests.harness import BACKEND, fresh_database, scalar
from tests.live import DEADLINE, cli, cli_env, eventually, free_port, heard_after, subscribe
from tests.test_fleet_upload import FLEET

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="LISTEN/NOTIFY is PostgreSQL's")
ROOT = Path(__file__).resolve().parent.parent
CHANGES = "subscription { cplChanges { eventId kind firmware { version } } }"
ADD = """mutation($v: String!) { addFirmware(input: { deviceId: "device:2", version: $v }) {
  __typename } }"""


async def wait_healthy(port: int) -> None:
    async def healthy() -> bool:
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    await eventually(healthy, f"the server on {port} healthy")


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
            # Each process's change listener connected: only then is a commit heard.
            await eventually(
                lambda: named_connections(url, LISTENER_NAME, 2), "both listeners connected"
            )
            yield env, url, ports
        finally:
            for server in servers:
                server.terminate()
            for server in servers:
                await asyncio.wait_for(server.wait(), DEADLINE)


@pytest.fixture(scope="module")
async def pair(tmp_path_factory) -> AsyncIterator[tuple[dict, str, list[int]]]:
    """Two processes with the default settings, shared by the tests that only add firmware
    (each its own versions) and cut connections that come back: starting two servers is most
    of what such a test costs."""
    async with two_api_processes(tmp_path_factory.mktemp("pair")) as running:
        yield running


async def test_a_change_through_one_process_reaches_subscribers_of_another(pair):
    env, url, ports = pair
    secas = await cli(env, "token", "SECAS")
    supplier = await cli(env, "token", "SMALL_SUPPLIER")

    async def add(version: str) -> None:
        added = await ask(ports[0], secas, ADD, version)
        assert added["data"]["addFirmware"]["__typename"] == "AddFirmwareSuccess"

    def version(message: dict) -> str:
        return message["payload"]["data"]["cplChanges"]["firmware"]["version"]

    async with subscribe(f"127.0.0.1:{ports[1]}", supplier, CHANGES) as remote:
        # Added until the other process's subscription, set up meanwhile, hears one.
        first = await heard_after(remote, lambda n: add(f"C10000{n:02d}"))
        change = first["payload"]["data"]["cplChanges"]
        assert change["kind"] == "FIRMWARE_ADDED" and version(first).startswith("C10000")

        # Cut every listener's connection: they reconnect, re-listen and catch up.
        await eventually(lambda: named_connections(url, LISTENER_NAME, 2), "both listeners")
        assert await cut_connections(url, LISTENER_NAME) == 2
        await add("C1000100")
        heard = await remote.events_until(lambda message: version(message) == "C1000100")
        # Once, not twice: up to a marker's event, C1000100's was sent once.
        await add("C1000101")
        heard += await remote.events_until(lambda message: version(message) == "C1000101")
        assert [version(m) for m in heard].count("C1000100") == 1


COUNT_NAMED = text(
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND application_name = :name"
)
TERMINATE_NAMED = text(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = current_database() AND application_name = :name"
)


async def named_connections(url: str, name: str, count: int = 1) -> bool:
    """Whether `url`'s database has at least `count` connections named `name`."""
    admin = create_async_engine(url)
    try:
        async with admin.connect() as connection:
            return await connection.scalar(COUNT_NAMED, {"name": name}) >= count
    finally:
        await admin.dispose()


async def cut_connections(url: str, name: str) -> int:
    """Terminate the connections named `name`, once there is one at least: how many."""
    await eventually(lambda: named_connections(url, name), f"a connection named {name}")
    admin = create_async_engine(url)
    try:
        async with admin.connect() as connection:
            return len((await connection.execute(TERMINATE_NAMED, {"name": name})).all())
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


async def seen(ports: list[int], tokens: tuple[str, str], version: str) -> None:
    """Add firmware `version` through the first process (a SECAS token), then ask the second (a
    Supplier's) until its answer lists it."""
    secas, supplier = tokens
    added = await ask(ports[0], secas, ADD, version)
    assert added["data"]["addFirmware"]["__typename"] == "AddFirmwareSuccess"

    async def listed() -> bool:
        after = await ask(ports[1], supplier, LISTED)
        return version in [f["version"] for f in after["data"]["device"]["firmware"]]

    await eventually(listed, f"{version} in the other process's answer")


async def test_a_write_through_one_process_is_in_the_next_cached_answer_of_another(pair):
    env, url, ports = pair
    tokens = (await cli(env, "token", "SECAS"), await cli(env, "token", "SMALL_SUPPLIER"))
    before = await ask(ports[1], tokens[1], LISTED)
    assert await ask(ports[1], tokens[1], LISTED) == before  # now in process B's cache
    # At once when B's listener hears of it, within CPL_REVISION_MAX_AGE_MS if it cannot.
    await seen(ports, tokens, "C2000001")
    # Cut the revision connections: the pool answers while they are replaced.
    await cut_connections(url, REVISION_CONNECTION_NAME)
    await seen(ports, tokens, "C2000002")


async def test_the_change_listener_tells_another_process_its_revision_is_out_of_date(tmp_path):
    # B trusts the revision it read for ten minutes, far longer than the test may wait
    # (`DEADLINE`): only its listener can tell it of A's write.
    assert DEADLINE < 600
    trusting = {"CPL_REVISION_MAX_AGE_MS": "600000"}
    async with two_api_processes(tmp_path, **trusting) as (env, url, ports):
        tokens = (await cli(env, "token", "SECAS"), await cli(env, "token", "SMALL_SUPPLIER"))
        before = await ask(ports[1], tokens[1], LISTED)
        assert await ask(ports[1], tokens[1], LISTED) == before  # now in process B's cache
        await seen(ports, tokens, "C3000001")
        # A write while B's listener is down is caught up when it reconnects.
        assert await cut_connections(url, LISTENER_NAME) == 2
        await seen(ports, tokens, "C3000002")


MY_FLEET = "{ myFleet { replacedAt meters } }"


async def test_processes_tag_alike_and_a_fleet_is_in_the_other_processs_next_answer(pair):
    """The processes share their ETag key (here the development issuer's, on one data
    directory), so one confirms the other's tag; a fleet replaced through one moves no data
    revision, yet is in the other's very next `myFleet`, whose key holds the fleet's own
    revision, read afresh."""
    env, url, ports = pair
    supplier = await cli(env, "token", "LARGE_SUPPLIER", "--party-id", "P-CROSS")
    auth = {"Authorization": f"Bearer {supplier}"}
    async with httpx.AsyncClient() as client:

        async def get(port: int, query: str, etag: str = "") -> httpx.Response:
            headers = auth | ({"If-None-Match": etag} if etag else {})
            address = f"http://127.0.0.1:{port}/graphql"
            return await client.get(address, params={"query": query}, headers=headers)

        async def alike() -> bool:  # once both have read the same revision
            tags = [(await get(port, LISTED)).headers["etag"] for port in ports]
            return tags[0] == tags[1]

        await eventually(alike, "one ETag for one answer from both processes")
        first = await get(ports[0], LISTED)
        assert (await get(ports[1], LISTED, first.headers["etag"])).status_code == 304

        async def put(fleet: str) -> None:
            headers = auth | {"Content-Type": "text/csv"}
            address = f"http://127.0.0.1:{ports[0]}/fleet"
            stored = await client.put(address, content=fleet, headers=headers)
            assert stored.status_code == 200, stored.text

        await put(FLEET)
        revision = await scalar(url, "SELECT revision FROM data_revision")
        seen = await get(ports[1], MY_FLEET)
        assert seen.json()["data"]["myFleet"]["meters"] == 1534
        assert (await get(ports[1], MY_FLEET)).content == seen.content  # now in B's cache
        await put(FLEET.replace("1200", "2200"))
        assert await scalar(url, "SELECT revision FROM data_revision") == revision
        after = await get(ports[1], MY_FLEET, seen.headers["etag"])
        assert after.status_code == 200 and after.json()["data"]["myFleet"]["meters"] == 2534
        # ...while the CPL's answers, and their tags, are as they were.
        assert (await get(ports[1], LISTED, first.headers["etag"])).status_code == 304
