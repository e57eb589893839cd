"""The servers a benchmark measures: a fresh database (PostgreSQL or SQLite), the API in
process, ``cpl-pathways serve`` as a process of its own, and one timed request to it."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from config.settings import Settings
from models.database import create_engine, is_sqlite
from permissions.principal import Principal
from schema.context import Context, Services
from tests.harness import fresh_database
from tests.live import ServerProcess, cli_env, cli_server

PG_URL = os.environ.get("CPL_BENCH_DATABASE_URL", "postgresql+asyncpg://127.0.0.1:5432/test")


async def postgres_version() -> str | None:
    """The server's version, or None when PostgreSQL cannot be reached."""
    engine = create_async_engine(PG_URL, connect_args={"timeout": 5})
    try:
        async with engine.connect() as connection:
            return str((await connection.execute(text("SHOW server_version"))).scalar())
    except Exception as error:  # any failure to connect means "skip PostgreSQL"
        print(f"note: PostgreSQL at {PG_URL} unreachable ({type(error).__name__}: {error})")
        return None
    finally:
        await engine.dispose()


def bench_database(backend: str, directory: Path) -> contextlib.AbstractAsyncContextManager[str]:
    """A new, empty database on the benchmark's PostgreSQL (dropped after) or in ``directory``."""
    return fresh_database(directory, backend, server=PG_URL, prefix="cpl_bench")


async def execute_sql(url: str, *statements: str) -> None:
    engine = create_engine(url, **({} if is_sqlite(url) else {"isolation_level": "AUTOCOMMIT"}))
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
            await connection.commit()
    finally:
        await engine.dispose()


BUMP_REVISION = "UPDATE data_revision SET revision = revision + 1 WHERE id = 1"


@dataclass
class InProcess:
    schema: Any
    services: Services
    principal: Principal

    async def execute(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        context = Context(principal=self.principal, services=self.services)
        result = await self.schema.execute(query, variable_values=variables, context_value=context)
        if result.errors:
            raise RuntimeError(f"GraphQL errors: {[e.message for e in result.errors[:3]]}")
        assert result.data is not None
        return result.data


def server(
    settings: Settings,
    log: Path,
    command: list[str] | None = None,
    ready_seconds: float = 30.0,
    **variables: str,
) -> contextlib.AbstractAsyncContextManager[ServerProcess]:
    """``cpl-pathways serve`` with ``settings`` (and the environment ``variables``) on a free
    loopback port, the way ``make run`` serves, or run by ``command`` (``[python, -m, cli]``
    behind a profiler); ready when entered, stopped after."""
    env = cli_env(
        settings.database_url,
        settings.data_dir,
        CPL_ENV=settings.environment,
        CPL_ISSUER=settings.issuer,
        CPL_AUDIENCE=settings.audience,
        CPL_RESPONSE_CACHE_SIZE=str(settings.response_cache_bytes / 1_000_000),
        **variables,
    )
    return cli_server(env, log, command=command, ready_seconds=ready_seconds)


def peak_kib(pid: int) -> int:
    """A process's peak resident set (VmHWM) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def post(client: httpx.AsyncClient, body: bytes) -> tuple[float, dict[str, Any], int]:
    """One timed request: from sending the (already encoded) body to the whole response read."""
    started = time.perf_counter()
    response = await client.post("/graphql", content=body)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
    payload = response.json()
    if payload.get("errors"):
        raise RuntimeError(f"GraphQL errors: {payload['errors'][:3]}")
    return elapsed, payload["data"], len(response.content)
