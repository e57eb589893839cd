"""The demo CPL holds what domain.md asks for, and the command line works end to end."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

from models.demo import MANUFACTURERS, demo_devices
from resolvers.planning.planner import FirmwareNode, PathwayEdge, PathwayGraph
from tests.live import eventually, free_port

CLI = [sys.executable, "-m", "server.cli"]
ROOT = Path(__file__).resolve().parent.parent
JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")


def graph(device) -> PathwayGraph:
    ids = {version: i for i, (version, _, _) in enumerate(device.firmware)}
    return PathwayGraph(
        [FirmwareNode(ids[v], v, not withdrawn, day) for v, day, withdrawn in device.firmware],
        [
            PathwayEdge(n, ids[a], ids[b], not withdrawn)
            for n, (a, b, withdrawn) in enumerate(device.pathways)
        ],
    )


def test_demo_data_has_every_shape_domain_md_asks_for() -> None:
    devices = demo_devices()
    assert len(MANUFACTURERS) >= 3 and len(devices) >= 12
    assert len({d.device_type for d in devices}) >= 4
    assert len({d.band for d in devices}) == 3
    assert all(d.stack and d.vendor for d in devices)
    assert all(len(d.firmware) >= 3 for d in devices)
    keys = Counter((d.manufacturer, d.model_identifier) for d in devices)
    assert max(keys.values()) == 1

    def routes_to_latest(device) -> int:
        g = graph(device)
        latest, oldest = g.latest(), device.firmware[0][0]
        edges = [(a, b) for a, b, withdrawn in device.pathways if not withdrawn]
        paths, stack = 0, [oldest]
        while stack:
            node = stack.pop()
            if node == latest.version:
                paths += 1
                continue
            stack += [b for a, b in edges if a == node]
        return paths

    assert any(routes_to_latest(d) >= 2 for d in devices)
    withdrawn_middle = [
        d
        for d in devices
        if any(w for _, _, w in d.firmware[1:-1]) and graph(d).plan(d.firmware[0][0]).reachable
    ]
    assert withdrawn_middle
    assert any(w for d in devices for _, _, w in d.pathways)
    assert any(not graph(d).plan(d.firmware[0][0]).reachable for d in devices)


def run_cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def cli_env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPL_")}
    env["CPL_DATA_DIR"] = str(tmp_path / "data")
    return env


def test_token_prints_one_jwt_and_nothing_else(cli_env) -> None:
    result = run_cli(
        "token", "MANUFACTURER", "--manufacturer-id", "0a1b", "--ttl", "60", env=cli_env
    )
    assert result.returncode == 0, result.stderr
    assert JWT.match(result.stdout.strip()) and result.stdout.count("\n") == 1
    key = Path(cli_env["CPL_DATA_DIR"]) / "dev-signing-key.json"
    assert key.stat().st_mode & 0o777 == 0o600


def test_token_refuses_a_manufacturer_without_its_identifier(cli_env) -> None:
    result = run_cli("token", "MANUFACTURER", env=cli_env)
    assert result.returncode != 0 and result.stdout == ""
    assert "manufacturer_id" in result.stderr


def test_schema_prints_the_committed_sdl(cli_env) -> None:
    result = run_cli("schema", env=cli_env)
    assert result.returncode == 0
    assert result.stdout == (ROOT / "schema.graphql").read_text()


def test_seed_demo_fills_an_empty_database_once(cli_env) -> None:
    first = run_cli("seed", "--demo", env=cli_env)
    assert first.returncode == 0, first.stderr
    second = run_cli("seed", "--demo", env=cli_env)
    assert second.returncode != 0 and "already holds data" in second.stderr


@pytest.mark.skipif(
    os.environ.get("CPL_TEST_BACKEND", "sqlite") != "sqlite", reason="the embedded default"
)
async def test_serve_migrates_seeds_and_prints_a_token_per_category_and_the_login(
    cli_env,
) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *CLI,
        "serve",
        "--port",
        str(port),
        cwd=ROOT,
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the log; what the command prints is on stdout
    )
    assert process.stdout is not None
    try:
        lines = [(await process.stdout.readline()).decode() for _ in range(10)]
        assert f"http://127.0.0.1:{port}/graphql" in lines[0]
        assert lines[9].strip() == f"Sign in to GraphiQL: http://127.0.0.1:{port}/login"
        tokens = dict(line.split() for line in lines[2:9])
        assert set(tokens) == {
            "LARGE_SUPPLIER", "SMALL_SUPPLIER", "NETWORK_PARTY", "OTHER_SEC_PARTY",
            "MANUFACTURER", "SSC", "SECAS",
        }  # fmt: skip
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

            async def healthy() -> bool:
                try:
                    return (await client.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(healthy, "the served demo answering /healthz", within=30)
            response = await client.post(
                "/graphql",
                json={"query": "{ devices { totalCount nodes { zigbeeStackVersion } } }"},
                headers={"Authorization": f"Bearer {tokens['SSC']}"},
            )
        devices = response.json()["data"]["devices"]
        assert devices["totalCount"] == len(devices["nodes"]) == 12
        assert all(n["zigbeeStackVersion"] for n in devices["nodes"])
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)
