"""Alembic environment: runs on a connection handed over by `models.database.migrate`."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import text
from sqlmodel import SQLModel

import models.access  # these four register the tables on SQLModel.metadata
import models.fleets
import models.notice
import models.tables  # noqa: F401

target_metadata = SQLModel.metadata
# Any constant, the same in every process: pg_advisory_xact_lock's key for "migrating".
MIGRATION_LOCK_KEY = 0x63706C_6D6967  # "cpl", "mig"


def _run(connection) -> None:
    if connection.dialect.name == "postgresql":
        # Replicas starting together all migrate: the first holds this lock until its migration
        # commits, and the others then find the schema current, instead of creating the same
        # tables at once (a UniqueViolationError). SQLite's write lock already serialises.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone() -> None:
    from config.settings import load_settings
    from models.database import create_engine

    # PostgreSQL itself, never a transaction pooler: the DDL and its lock want one session.
    url = os.environ.get("CPL_DATABASE_DIRECT_URL") or os.environ.get("CPL_DATABASE_URL")
    engine = create_engine(url or load_settings().direct_url)
    async with engine.begin() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_standalone())
