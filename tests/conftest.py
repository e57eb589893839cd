"""Test fixtures: a real database (SQLite or PostgreSQL, by CPL_TEST_BACKEND), migrated by
Alembic and seeded with the demo CPL, and an HTTP client on the real ASGI app.

The demo database is built once a run, as a template nobody connects to. The reading tests share
one copy of it; every test that writes gets a copy of its own (`own_database`, `isolated`), so
no test sees another's writes and the suite passes in any order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from config.settings import Settings
from permissions.principal import PartyCategory
from schema.context import Services
from server.app import create_app, create_services
from tests import harness
from tests.harness import (
    BACKEND,
    asgi_client,
    create_database,
    drop_databases,
    fresh_database,
    seed_demo_database,
)
from tests.live import DEADLINE, serve
from tests.twins import OTHER

CATEGORIES = [c.value for c in PartyCategory]


def pytest_report_header(config: pytest.Config) -> str:
    return f"cpl-pathways database backend: {BACKEND}"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cpl-data")


@pytest.fixture(scope="session")
async def template(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """The demo database, migrated and seeded once; only ever copied, never connected to (a
    PostgreSQL template must have no connections while it is copied)."""
    async with fresh_database(tmp_path_factory.mktemp("template")) as url:
        await seed_demo_database(url)
        yield url


@pytest.fixture(scope="session")
async def other_template(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """The demo CPL with other SSC-only values (`tests/twins.py`), the noninterference test's
    twin of `template`."""
    async with fresh_database(tmp_path_factory.mktemp("other-template")) as url:
        await seed_demo_database(url, **OTHER)
        yield url


@pytest.fixture(scope="session")
async def database_url(template: str, data_dir: Path) -> AsyncIterator[str]:
    """The demo database the reading tests share (see `shared_cpl_unchanged`)."""
    async with fresh_database(data_dir, template=template) as url:
        yield url


@pytest.fixture(scope="session")
async def spent() -> AsyncIterator[list[str]]:
    """The writing tests' databases, dropped together at the end of the run (see
    `drop_databases`)."""
    urls: list[str] = []
    yield urls
    await drop_databases(urls)


@pytest.fixture
async def own_database(template: str, tmp_path: Path, spent: list[str]) -> str:
    """A demo database of this test's own, for a test that writes."""
    url = await create_database(tmp_path, template=template)
    spent.append(url)
    return url


@pytest.fixture(scope="session")
def settings(data_dir: Path, database_url: str) -> Settings:
    return harness.own_settings(
        data_dir,
        database_url,
        issuer="cpl-pathways-test",
        audience="cpl-pathways",
        environment="test",
    )


@pytest.fixture(scope="session")
async def services(settings: Settings) -> AsyncIterator[Services]:
    services = create_services(settings)
    yield services
    await services.engine.dispose()


@pytest.fixture(autouse=True)
async def shared_cpl_unchanged(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """A test on the shared database that changed the CPL would change what the tests after it
    read: it fails here, by name, instead of some later test failing in some orders only."""
    if "services" not in request.fixturenames:
        yield
        return
    engine = request.getfixturevalue("services").engine
    revision = text("SELECT revision FROM data_revision")
    async with engine.connect() as connection:
        before = (await connection.execute(revision)).scalar()
    yield
    async with engine.connect() as connection:
        after = (await connection.execute(revision)).scalar()
    assert after == before, "this test writes: give it a database of its own (`isolated`)"


@pytest.fixture(scope="session")
def app(settings: Settings, services: Services):
    return create_app(settings, services)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as client:
        yield client


@pytest.fixture(scope="session")
def token(settings: Settings) -> Callable[..., str]:
    """`token("SSC")` or `token("MANUFACTURER", manufacturer_id="0A1B")`: a real signed JWT."""
    return harness.dev_tokens(settings)


@dataclass
class Caller:
    """GraphQL over `client` as a Party category, with a token of `token`'s."""

    client: httpx.AsyncClient
    token: Callable[..., str]

    async def gql(
        self, category: str, query: str, variables: dict | None = None, **claims: object
    ) -> dict:
        return await harness.gql(self.client, self.token(category, **claims), query, variables)


@pytest.fixture
def gql(client: httpx.AsyncClient, token: Callable[..., str]):
    """POST a GraphQL document as a Party category; returns the decoded JSON body."""
    return Caller(client, token).gql


@dataclass
class Isolated(Caller):
    """An app on a database of its own, for tests that write."""

    app: Any
    services: Services

    async def scalar(self, sql: str, **params: object) -> Any:
        async with self.services.engine.connect() as connection:
            return (await connection.execute(text(sql), params)).scalar()


@pytest.fixture
async def isolated(settings, token, own_database) -> AsyncIterator[Isolated]:
    own = replace(settings, database_url=own_database)
    services = create_services(own)
    app = create_app(own, services)
    async with asgi_client(app) as client:
        yield Isolated(client, token, app, services)
    await services.engine.dispose()


@pytest.fixture
async def live(isolated) -> AsyncIterator[str]:
    """The test's isolated app served by uvicorn on a loopback port (its address), once its
    change listener listens."""
    async with serve(isolated.app) as address:
        bus = isolated.services.bus
        if hasattr(bus, "listening"):
            await asyncio.wait_for(bus.listening.wait(), DEADLINE)
        yield address
