"""The async engine, sessions and migrations, for the embedded SQLite default and PostgreSQL.

Where each connection comes from (README: Behind a pooler): the requests' pool, their reads,
writes and the dispatcher's, on `CPL_DATABASE_URL` (`pooled_engine`), which may be a
transaction pooler and then holds no session state; the SSC access log's own connection on the
same URL (`models.appender`: by `connect_asyncpg`, one transaction in one message at a time, nothing
kept in its session); what needs a session of its own on `CPL_DATABASE_DIRECT_URL`: migrations
and their lock (`direct_engine`), the change listener (`notifications.bus`) and the revision
reader (`models.revision`), both by `connect_asyncpg`.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import event, func, insert, inspect, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from config.settings import Settings

T = TypeVar("T")
MIGRATIONS = Path(__file__).parent / "migrations"
IN_LIST_CHUNK = 5_000  # values per IN list: well under SQLite's and asyncpg's parameter limits


def chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    """`values` in slices small enough for one IN list on either database."""
    for start in range(0, len(values), IN_LIST_CHUNK):
        yield values[start : start + IN_LIST_CHUNK]


async def insert_rows(session: Any, table: Any, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert `rows` into `table` in a few statements and return their new ids, in order.

    PostgreSQL batches `RETURNING` in parameter order itself. SQLite would fall back to one
    statement a row for that, so there the ids are given explicitly, counting on from the
    largest: safe because every writer holds SQLite's write lock from its first statement
    (`resolvers.writes.unit_of_work.take_revision`) to its commit, so no other insert can come
    between."""
    if not rows:
        return []
    bind = session.get_bind()
    if bind.dialect.name != "sqlite" or len(rows) == 1:  # one row: one statement on both
        ids: list[int] = []
        for chunk in chunks(rows):
            statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
            ids += (await session.exec(statement, params=list(chunk))).scalars().all()
        return ids
    largest = (await session.exec(select(func.max(table.c.id)))).scalar() or 0
    ids = list(range(largest + 1, largest + 1 + len(rows)))
    for start, chunk in zip(range(0, len(rows), IN_LIST_CHUNK), chunks(rows), strict=True):
        numbered = [{**row, "id": pk} for row, pk in zip(chunk, ids[start:], strict=False)]
        await session.exec(insert(table), params=numbered)
    return ids


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_pragmas(dbapi_connection: Any, busy_timeout_ms: int = 5000) -> None:
    """Every SQLite connection's settings (the pool's, the access log's): foreign keys, off by
    default in SQLite; WAL, which lets readers run beside a writer; how long a write waits for
    another's lock before it fails."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cursor.close()


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    sqlite_pragmas(dbapi_connection)


def create_engine(url: str, *, pooler: str = "none", **kwargs: Any) -> AsyncEngine:
    """An engine for `url`; for SQLite the database's folder is created first; behind a
    transaction `pooler`, with no statement kept between transactions (`TRANSACTION_POOLER`).

    Statement parameters are kept out of exception messages, so that no value (an SSC-only one
    included) can reach a log through a database error."""
    kwargs.setdefault("hide_parameters", True)
    if pooler == "transaction":
        kwargs["connect_args"] = {**kwargs.get("connect_args", {}), **TRANSACTION_POOLER}
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = _create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return _create_async_engine(url, **kwargs)


def _unnamed_statement() -> str:
    return ""


# Behind a transaction pooler a connection is a server connection for one transaction only, the
# next one's maybe another's: no prepared statement may outlive its transaction. SQLAlchemy's
# adapter prepares every statement, naming it (`__asyncpg_stmt_1__`, counted per connection)
# and keeping it: two clients' names collide on one server connection. So nothing is cached
# (asyncpg's cache, the adapter's), and every statement is PostgreSQL's unnamed one, which the
# next Parse replaces and which asyncpg, with its cache off, parses again at each execution.
# Unique names (a uuid each, SQLAlchemy's documented recipe) never collide but stay on whichever
# server connection the pooler handed out, until it closes: 92 were left on one after 400
# statements (measured behind PgBouncer 1.18); the unnamed statement leaves none.
TRANSACTION_POOLER: dict[str, Any] = {
    "statement_cache_size": 0,
    "prepared_statement_cache_size": 0,
    "prepared_statement_name_func": _unnamed_statement,
}


def pooled_engine(settings: Settings, **kwargs: Any) -> AsyncEngine:
    """The requests' engine (`CPL_DATABASE_URL`): PostgreSQL itself, with its prepared
    statements cached, or a transaction pooler, over which nothing relies on a session: no
    `SET`, no temporary table, no session lock, no statement kept (each transaction's
    `REPEATABLE READ`, row locks and `pg_notify` end with it)."""
    return create_engine(settings.database_url, pooler=settings.database_pooler, **kwargs)


def direct_engine(settings: Settings) -> AsyncEngine:
    """An engine on PostgreSQL itself (`CPL_DATABASE_DIRECT_URL`, else `CPL_DATABASE_URL`),
    never through a pooler: for migrations, whose DDL and lock want one session throughout."""
    return create_engine(settings.direct_url)


# Options of SQLAlchemy's asyncpg adapter in a URL's query, which asyncpg.connect does not take.
ADAPTER_OPTIONS = (
    "async_creator_fn",
    "prepared_statement_cache_size",
    "prepared_statement_name_func",
)


async def connect_asyncpg(
    url: str | URL, application_name: str, **options: Any
) -> asyncpg.Connection:
    """A connection of our own (the change listener's, the revision's: each needs a session, so
    its URL is `Settings.direct_url`; the access log's, which needs none, on `database_url`:
    `models.appender`) to a PostgreSQL URL's database, made from the URL as
    SQLAlchemy's asyncpg dialect makes the pool's: its query options (`?ssl=require`, ...)
    included, so that it is secured as the pool's connections are."""
    url = make_url(url)
    _, arguments = url.get_dialect()().create_connect_args(url)
    for option in ADAPTER_OPTIONS:
        arguments.pop(option, None)
    settings = {**arguments.pop("server_settings", {}), "application_name": application_name}
    return await asyncpg.connect(**{**arguments, **options, "server_settings": settings})


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: objects stay readable after commit without a lazy reload,
    # which async SQLAlchemy cannot do implicitly.
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database to `revision`, by default the newest migration (the only way its
    schema is created)."""
    await _alembic(engine, command.upgrade, revision)


async def migrate_directly(settings: Settings) -> None:
    """Bring the configured database to the newest migration on PostgreSQL itself
    (`direct_engine`), as every command does before it reads or writes."""
    engine = direct_engine(settings)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Take the database back to `revision` (operators: take a backup first)."""
    await _alembic(engine, command.downgrade, revision)


async def _alembic(engine: AsyncEngine, run: Any, revision: str) -> None:
    def _run(connection: Any) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        run(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(_run)


@functools.cache
def newest_revision() -> str | None:
    """The head of the migration scripts shipped with this code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def schema_revision(connection: AsyncConnection) -> str | None:
    """The migration the database is at, read from Alembic's table directly (Alembic's own
    reader logs two lines each time, which a probe every few seconds would repeat)."""

    def _has_table(sync_connection: Any) -> bool:
        return inspect(sync_connection).has_table("alembic_version")

    if not await connection.run_sync(_has_table):
        return None
    return (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar()


class RequestSession:
    """One request's reads: a single session, lazily opened, used by one query at a time.

    DataLoaders of one request dispatch their batches concurrently; an AsyncSession allows only
    one operation at a time, so the batches queue on a lock rather than each taking a pool
    connection of its own.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._session: AsyncSession | None = None
        self._lock = asyncio.Lock()

    async def fetch(self, statement: Any) -> list[Any]:
        """Every result: model objects for `select(Model)`, values for a one-column select,
        rows for a select of several columns (sqlmodel's `exec`)."""
        async with self._lock:
            if self._session is None:
                self._session = self._sessions()
            return list((await self._session.exec(statement)).all())

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


class DatabaseUnavailable(Exception):
    """An outage found inside an operation's answer (a resolver's or an extension's error),
    raised again so that the request is answered as an outage: 503, one warning line."""


# Failures of the database itself, not of the code: the server is down, restarting, refusing
# connections, or the configured database is missing.
_OUTAGES: tuple[type[BaseException], ...] = (
    DatabaseUnavailable,
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.OperatorInterventionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
)
_SQLITE_OUTAGES = ("unable to open database", "database is locked", "disk i/o error")
# PostgreSQL's own word for it, by SQLSTATE class or code: a connection lost or refused (08),
# too many connections or no disk (53), an administrator's or a failover's shutdown or a
# terminated backend (57), a system error (58), a database that is gone (3D) or refuses the
# role (28), a server that is read-only after a failover (25006).
_OUTAGE_STATES = ("08", "53", "57", "58", "3D", "28", "25006")
_NOT_ACCEPTING = "is not currently accepting connections"  # 55000, ALLOW_CONNECTIONS false


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack: list[BaseException | None] = [error]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        stack += [getattr(item, "orig", None), item.__cause__, item.__context__]


def _outage_cause(error: BaseException) -> BaseException | None:
    for cause in _causes(error):
        if isinstance(cause, _OUTAGES):
            return cause
        if isinstance(cause, sqlite3.OperationalError) and any(
            text in str(cause).lower() for text in _SQLITE_OUTAGES
        ):
            return cause
        if getattr(cause, "connection_invalidated", False):
            return cause
        if _postgresql_outage(cause):
            return cause
    return None


def _postgresql_outage(error: BaseException) -> bool:
    state = getattr(error, "sqlstate", None)
    if isinstance(state, str) and state.startswith(_OUTAGE_STATES):
        return True
    if state == "55000" and _NOT_ACCEPTING in str(error):
        return True
    # asyncpg's own word for a connection that went away under it.
    return isinstance(error, asyncpg.InterfaceError) and "connection is closed" in str(error)


def is_outage(error: BaseException) -> bool:
    """Whether `error` says the database is unreachable (an outage, to log as one warning
    line), rather than a bug (to log with its traceback)."""
    return _outage_cause(error) is not None


def describe_outage(error: BaseException) -> str:
    """One line for the log: the cause's type and the first line of its message (never a
    statement's parameters: the engines are made with hide_parameters)."""
    cause = _outage_cause(error) or error
    first_line = (str(cause).splitlines() or [""])[0][:200]
    return f"{type(cause).__name__}: {first_line}" if first_line else type(cause).__name__
