"""Alembic environment: runs on a connection handed over by `models.database.migrate`."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlmodel import SQLModel

import models.access  # these two register the tables on SQLModel.metadata
import models.tables  # noqa: F401

target_metadata = SQLModel.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone() -> None:
    from models.database import create_engine
    from settings import load_settings

    engine = create_engine(os.environ.get("CPL_DATABASE_URL") or load_settings().database_url)
    async with engine.begin() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_standalone())
