"""What the tests and the benchmarks share: databases of either backend (empty, seeded with the
demo CPL, or copies of one), development tokens, and GraphQL over an in-process HTTP client.
Free of pytest, so that `bench/` runs on the same helpers as the suite."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from config.settings import Settings, load_settings
from models.appender import appender_for
from models.database import create_engine, is_sqlite, migrate, session_factory
from models.demo import seed_demo
from permissions.dev_keys import issue_token, load_or_create_dev_key
from permissions.principal import PartyCategory
from permissions.ssc_access import AccessLog

BACKEND = os.environ.get("CPL_TEST_BACKEND", "sqlite")
PG_URL = os.environ.get("CPL_TEST_DATABASE_URL", "postgresql+asyncpg://127.0.0.1:5432/test")
DROPPING = 8  # databases dropped at once
HEAVY = os.environ.get("CPL_TEST_HEAVY", "") not in ("", "0")
"""`CPL_TEST_HEAVY=1`: the tests that show a property on a smaller load by default show it at
the documented size too (a 50,000-item fleet plan; 400 fleet rows of 900 KB): seconds of CPU
each that `make test` on a busy 2-core machine need not pay every run (`make test-heavy`)."""


@asynccontextmanager
async def fresh_database(
    directory: Path, backend: str = BACKEND, **options: Any
) -> AsyncIterator[str]:
    """The URL of a new database (`create_database`, with its `options`), dropped when the
    block ends."""
    url = await create_database(directory, backend, **options)
    try:
        yield url
    finally:
        await drop_databases([url], options.get("server", PG_URL))


async def create_database(
    directory: Path,
    backend: str = BACKEND,
    *,
    template: str | None = None,
    server: str = PG_URL,
    prefix: str = "cpl_test",
) -> str:
    """The URL of a new database, empty or a copy of `template` (a database of the same backend
    that nobody is connected to); SQLite's is a file in `directory`.

    Copying is how a test gets a seeded database of its own cheaply: PostgreSQL copies the
    template below SQL (CREATE DATABASE ... TEMPLATE), SQLite's backup copies its pages."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        path = directory / f"{name}.db"
        if template is not None:
            _copy_sqlite(make_url(template).database or "", path)
        return f"sqlite+aiosqlite:///{path}"
    clone = f' TEMPLATE "{make_url(template).database}"' if template else ""
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"{clone}'))
    finally:
        await admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


async def drop_databases(urls: list[str], server: str = PG_URL) -> None:
    """Drop the PostgreSQL databases among `urls` (SQLite's files stay where they are).

    Each DROP DATABASE waits for a checkpoint, and the next CREATE DATABASE for it too: dropping
    each test's copy right after the test cost about 0.2 s a test. Dropped together at the end,
    eight at once (they share checkpoints), 16 take 0.6-1 s where one by one they take 1.5 s."""
    names = [make_url(url).database for url in urls if not is_sqlite(url)]
    if not names:
        return
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT", pool_size=DROPPING)
    slots = asyncio.Semaphore(DROPPING)

    async def drop(name: str | None) -> None:
        async with slots, admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    try:
        await asyncio.gather(*(drop(name) for name in names))
    finally:
        await admin.dispose()


def _copy_sqlite(source: str, target: Path) -> None:
    """Copy through SQLite itself: a copy of the file would miss pages still in its WAL."""
    target.parent.mkdir(parents=True, exist_ok=True)
    original, copy = sqlite3.connect(source), sqlite3.connect(target)
    try:
        original.backup(copy)
    finally:
        original.close()
        copy.close()


async def seed_demo_database(url: str, **options: Sequence[str]) -> None:
    """Migrate the empty database at `url` to the newest revision and fill it with the demo CPL,
    as `cpl-pathways seed --demo` does (`options` go to `seed_demo`)."""
    engine = create_engine(url)
    try:
        await migrate(engine)
        async with session_factory(engine)() as session, session.begin():
            await seed_demo(session, **options)
    finally:
        await engine.dispose()


def own_settings(data_dir: Path, database_url: str, **changes: Any) -> Settings:
    """This environment's settings for a server of our own on `database_url`, trusting only the
    development key in `data_dir` (no identity provider's keys fetched)."""
    # The suite and the benchmarks send far more than a Party's production budget from one
    # token: the rate limit is off unless a test turns it on (tests/test_rate_limit.py).
    changes.setdefault("rate_limit_per_second", 0.0)
    return replace(
        load_settings(), data_dir=data_dir, database_url=database_url, jwks_url=None, **changes
    )


def dev_tokens(settings: Settings) -> Callable[..., str]:
    """`make("SSC")` or `make("MANUFACTURER", manufacturer_id="0C2D", ttl_seconds=60)`: a JWT
    signed by the development key in `settings.data_dir`, which a server with those settings
    accepts. A Manufacturer is 0A1B's unless it says otherwise."""
    key = load_or_create_dev_key(settings.dev_key_path)

    def make(category: str, **claims: Any) -> str:
        if category == "MANUFACTURER":
            claims.setdefault("manufacturer_id", "0A1B")
        return issue_token(
            key,
            issuer=settings.issuer,
            audience=settings.audience,
            category=PartyCategory(category),
            **claims,
        )

    return make


async def scalar(url: str, sql: str) -> object:
    """One value read from the database at `url` on an engine of its own (a server's database
    seen from outside it)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return (await connection.execute(text(sql))).scalar()
    finally:
        await engine.dispose()


def noted_reads(monkeypatch: Any) -> list[tuple[list[str], list[int]]]:
    """From now on, the fields and device ids (sorted) of every entry the SSC access log is
    asked to record, in order; each is still recorded."""
    noted: list[tuple[list[str], list[int]]] = []
    record = AccessLog.record

    def noting(self: AccessLog, principal: Any, reads: Any) -> Any:
        noted.append((sorted(reads.fields), sorted(reads.device_ids)))
        return record(self, principal, reads)

    monkeypatch.setattr(AccessLog, "record", noting)
    return noted


def asgi_client(app: Any, base_url: str = "http://testserver") -> httpx.AsyncClient:
    """An HTTP client on `app` in this process: no socket, and no lifespan run."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


async def gql(
    client: httpx.AsyncClient, token: str, query: str, variables: dict | None = None
) -> dict:
    """POST a GraphQL document with `token` as its bearer; the decoded body of the 200 answer."""
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def count_calls(monkeypatch: Any, owner: object, name: str) -> list[int]:
    """Count the calls of `owner.name` (a module's function or a class's method) from now on,
    for the tests that show a cost does not grow with the rows: `[calls]`."""
    calls = [0]
    original = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


@asynccontextmanager
async def log_unreachable(isolated: Any) -> AsyncIterator[None]:
    """The access log's database unreachable (nothing listens on port 1), the rest working."""
    working = isolated.services.access_log
    engine = create_engine("postgresql+asyncpg://127.0.0.1:1/cpl")
    isolated.services.access_log = AccessLog(appender_for(engine))
    try:
        yield
    finally:
        isolated.services.access_log = working
        await engine.dispose()
