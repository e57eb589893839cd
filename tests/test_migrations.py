"""The schema is created by Alembic alone: one head, and a migrated database equals the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

import models.tables  # noqa: F401
from models.database import alembic_config, create_engine, migrate, schema_revision
from tests.conftest import fresh_database


def test_one_head() -> None:
    assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1


async def test_upgrade_from_empty_matches_the_models(tmp_path) -> None:
    async with fresh_database(tmp_path) as url:
        engine = create_engine(url)
        try:
            await migrate(engine)
            await migrate(engine)  # a second run is a no-op, not an error
            async with engine.connect() as connection:
                head = ScriptDirectory.from_config(alembic_config()).get_current_head()
                assert await schema_revision(connection) == head
                diff = await connection.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync), SQLModel.metadata
                    )
                )
            assert diff == []
        finally:
            await engine.dispose()
