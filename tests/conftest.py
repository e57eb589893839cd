"""Test fixtures: a real database (SQLite or PostgreSQL, by CPL_TEST_BACKEND), migrated by
Alembic and seeded with the demo CPL, and an HTTP client on the real ASGI app."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from models.database import create_engine, migrate, session_factory
from models.demo import seed_demo
from permissions.dev_keys import issue_token, load_or_create_dev_key
from permissions.principal import PartyCategory
from schema.app import create_app, create_services
from schema.context import Services
from settings import Settings, load_settings
from tests.live import serve

BACKEND = os.environ.get("CPL_TEST_BACKEND", "sqlite")
PG_URL = os.environ.get("CPL_TEST_DATABASE_URL", "postgresql+asyncpg://127.0.0.1:5432/test")


def pytest_report_header(config: pytest.Config) -> str:
    return f"cpl-pathways database backend: {BACKEND}"


@asynccontextmanager
async def fresh_database(tmp: Path) -> AsyncIterator[str]:
    """The URL of a new, empty database of the backend under test, dropped afterwards."""
    if BACKEND == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp / f'{uuid.uuid4().hex}.db'}"
        return
    name = f"cpl_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cpl-data")


@pytest.fixture(scope="session")
async def database_url(data_dir: Path) -> AsyncIterator[str]:
    async with fresh_database(data_dir) as url:
        engine = create_engine(url)
        await migrate(engine)
        async with session_factory(engine)() as session, session.begin():
            await seed_demo(session)
        await engine.dispose()
        yield url


@pytest.fixture(scope="session")
def settings(data_dir: Path, database_url: str) -> Settings:
    base = load_settings()
    return replace(
        base,
        data_dir=data_dir,
        database_url=database_url,
        jwks_url=None,
        issuer="cpl-pathways-test",
        audience="cpl-pathways",
        environment="test",
    )


@pytest.fixture(scope="session")
async def services(settings: Settings) -> AsyncIterator[Services]:
    services = create_services(settings)
    yield services
    await services.engine.dispose()


@pytest.fixture(scope="session")
def app(settings: Settings, services: Services):
    return create_app(settings, services)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture(scope="session")
def token(settings: Settings) -> Callable[..., str]:
    """`token("SSC")` or `token("MANUFACTURER", manufacturer_id="0A1B")`: a real signed JWT."""
    key = load_or_create_dev_key(settings.dev_key_path)

    def make(category: str, **claims: object) -> str:
        if category == "MANUFACTURER":
            claims.setdefault("manufacturer_id", "0A1B")
        return issue_token(
            key,
            issuer=settings.issuer,
            audience=settings.audience,
            category=PartyCategory(category),
            **claims,  # type: ignore[arg-type]
        )

    return make


@pytest.fixture
def gql(client: httpx.AsyncClient, token: Callable[..., str]):
    """POST a GraphQL document as a Party category; returns the decoded JSON body."""

    async def run(category: str, query: str, variables: dict | None = None, **claims) -> dict:
        response = await client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token(category, **claims)}"},
        )
        assert response.status_code == 200, response.text
        return response.json()

    return run


CATEGORIES = [c.value for c in PartyCategory]


@dataclass
class Isolated:
    """An app on a database of its own, for tests that write."""

    app: Any
    services: Services
    client: httpx.AsyncClient
    token: Callable[..., str]

    async def gql(
        self, category: str, query: str, variables: dict | None = None, **claims: object
    ) -> dict:
        response = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {self.token(category, **claims)}"},
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def scalar(self, sql: str, **params: object) -> Any:
        async with self.services.engine.connect() as connection:
            return (await connection.execute(text(sql), params)).scalar()


@pytest.fixture(scope="module")
async def isolated(settings, token, tmp_path_factory) -> AsyncIterator[Isolated]:
    async with fresh_database(tmp_path_factory.mktemp("isolated")) as url:
        engine = create_engine(url)
        await migrate(engine)
        async with session_factory(engine)() as session, session.begin():
            await seed_demo(session)
        await engine.dispose()
        own = replace(settings, database_url=url)
        services = create_services(own)
        app = create_app(own, services)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Isolated(app, services, client, token)
        await services.engine.dispose()


@pytest.fixture(scope="module")
async def live(isolated) -> AsyncIterator[str]:
    """The module's isolated app served by uvicorn on a loopback port (its address), once its
    change listener listens."""
    async with serve(isolated.app) as address:
        bus = isolated.services.bus
        if hasattr(bus, "listening"):
            await asyncio.wait_for(bus.listening.wait(), 10)
        yield address
