"""The schema is created by Alembic alone: one head, and a migrated database equals the models."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

import models.access  # these four register the tables on SQLModel.metadata
import models.fleets
import models.notice
import models.tables  # noqa: F401
from models.database import (
    alembic_config,
    create_engine,
    migrate,
    newest_revision,
    schema_revision,
)
from tests.harness import BACKEND, fresh_database
from tests.live import CLI_PROCESS, ROOT, cli, cli_env


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


async def test_operators_migrate_up_to_a_revision_down_again_and_read_it_with_alembic(tmp_path):
    async with fresh_database(tmp_path) as url:
        env = cli_env(url, tmp_path / "data")
        upgraded = await cli(env, "migrate", "--revision", "0002", command=CLI_PROCESS)
        assert upgraded == "Database upgraded to 0002."
        alembic = [str(Path(sys.executable).with_name("alembic")), "-c", "alembic.ini"]
        assert "0002" in await cli(env, "current", command=alembic)
        assert await cli(env, "migrate") == "Database at the newest migration."
        assert f"{newest_revision()} (head)" in await cli(env, "current", command=alembic)
        assert await cli(env, "migrate", "--downgrade", "0001") == "Database downgraded to 0001."
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                assert await schema_revision(connection) == "0001"
        finally:
            await engine.dispose()


@pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite's file lock serialises migrators")
async def test_replicas_migrating_an_empty_database_at_once_both_succeed(tmp_path) -> None:
    async with fresh_database(tmp_path) as url:
        env = cli_env(url, tmp_path / "data")
        # Both start before either has created a table; the advisory lock makes one wait.
        migrating = [cli(env, "migrate", command=CLI_PROCESS) for _ in range(2)]  # two processes
        outputs = await asyncio.gather(*migrating)
        assert outputs == ["Database at the newest migration."] * 2
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                assert await schema_revision(connection) == newest_revision()
        finally:
            await engine.dispose()


def test_a_migration_that_fails_is_one_line_and_exit_1(tmp_path) -> None:
    env = cli_env("postgresql+asyncpg://127.0.0.1:1/cpl", tmp_path / "data")  # nothing listens
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("cpl-pathways migrate: failed (") and "Traceback" not in line
