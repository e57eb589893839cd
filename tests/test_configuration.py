"""Configuration: every variable the code reads is documented, with the default it has."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from config.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [
    path
    for folder in ("config", "models", "permissions", "resolvers", "schema", "server")
    for path in (ROOT / folder).rglob("*.py")
]
# Defaults that follow CPL_ENV (development here), set in load_settings.
ENVIRONMENT_DEPENDENT = {"allow_insecure_webhooks", "block_private_webhooks"}


def readme_table() -> dict[str, str]:
    """The README's configuration table: variable -> default column."""
    section = (ROOT / "README.md").read_text().split("## Configuration", 1)[1].split("\n## ")[0]
    rows = re.findall(r"^\| ([^|]+) \| ([^|]+) \|", section, re.MULTILINE)
    # A row may name several variables: `CPL_A`, `CPL_B`.
    return {
        name: default.strip()
        for names, default in rows
        for name in re.findall(r"`([A-Z][A-Z_]+)`", names)
    }


@pytest.fixture
def clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("CPL_"):
            monkeypatch.delenv(name)


def test_every_variable_the_code_reads_is_in_the_readme_table():
    read = set()
    for path in SOURCES:
        read |= set(re.findall(r"\"(CPL_[A-Z_]+)\"", path.read_text()))
    assert read, "the search found the variables"
    assert sorted(read - set(readme_table())) == []


def test_the_readme_gives_each_default_the_code_has(clean_environment):
    loaded = load_settings()
    table = readme_table()
    numbers = {
        "CPL_MAX_BODY_BYTES": loaded.max_body_bytes,
        "CPL_WEBHOOK_HORIZON_SECONDS": loaded.webhook_horizon_seconds,
        "CPL_WEBHOOK_TIMEOUT_SECONDS": loaded.webhook_timeout_seconds,
        "CPL_WEBHOOK_POLL_SECONDS": loaded.webhook_poll_seconds,
        "CPL_LISTENER_RETRY_SECONDS": loaded.listener_retry_seconds,
        "CPL_LISTENER_RETRY_MAX_SECONDS": loaded.listener_retry_max_seconds,
        "CPL_REVISION_MAX_AGE_MS": loaded.revision_max_age_seconds * 1000,
        "CPL_WS_KEEPALIVE_SECONDS": loaded.ws_keep_alive_seconds,
        "CPL_DB_POOL_SIZE": loaded.db_pool_size,
        "CPL_DB_MAX_OVERFLOW": loaded.db_max_overflow,
    }
    for name, value in numbers.items():
        assert float(table[name].strip("`").replace(",", "")) == value, name
    schedule = ",".join(f"{s:g}" for s in loaded.webhook_retry_schedule)
    assert table["CPL_WEBHOOK_RETRY_SCHEDULE"] == f"`{schedule}`"
    assert table["CPL_LOG_LEVEL"] == f"`{loaded.log_level}`"
    assert table["CPL_LOG_FORMAT"].startswith(f"`{loaded.log_format}`")
    assert table["CPL_DATABASE_POOLER"] == f"`{loaded.database_pooler}`"
    # Loading with nothing set gives the dataclass's own defaults: each is written once.
    for field in fields(Settings):
        if field.default is not MISSING and field.name not in ENVIRONMENT_DEPENDENT:
            assert getattr(loaded, field.name) == field.default, field.name


def test_production_defaults_to_json_logs(clean_environment, monkeypatch):
    monkeypatch.setenv("CPL_ENV", "production")
    assert load_settings().log_format == "json"
    monkeypatch.setenv("CPL_LOG_FORMAT", "text")
    assert load_settings().log_format == "text"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CPL_LOG_FORMAT", "xml", "CPL_LOG_FORMAT must be one of json, text"),
        ("CPL_LOG_LEVEL", "LOUD", "CPL_LOG_LEVEL must be"),
        ("CPL_CORS_ORIGINS", "https://ok.example,portal.example/app", "is not an origin"),
        # Refused here, not by the WebSocket origin check as the app starts.
        ("CPL_CORS_ORIGINS", "http://127.0.0.1:99999", "is not an origin"),
        ("CPL_CORS_ORIGINS", "https://:8443", "is not an origin"),
        ("CPL_CORS_ORIGINS", "https://portal.example?x=1", "is not an origin"),
        ("CPL_WEBHOOK_TIMEOUT_SECONDS", "ten", "must be a number"),
        ("CPL_DB_POOL_SIZE", "-1", "must not be negative"),
        ("CPL_DATABASE_POOLER", "session", "CPL_DATABASE_POOLER must be none or transaction"),
    ],
)
def test_a_bad_value_is_refused_by_name(clean_environment, monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        load_settings()


def test_cors_origins_are_read_as_a_list(clean_environment, monkeypatch):
    monkeypatch.setenv("CPL_CORS_ORIGINS", " https://portal.example/ , http://127.0.0.1:3000")
    assert load_settings().cors_origins == ("https://portal.example", "http://127.0.0.1:3000")


# Nothing listens on port 1: each refusal comes before any connection.
POOLER = "postgresql+asyncpg://127.0.0.1:1/cpl"
DIRECT = "postgresql+asyncpg://127.0.0.1:1/cpl?application_name=direct"


def test_the_direct_url_is_the_database_url_unless_given(clean_environment, monkeypatch):
    monkeypatch.setenv("CPL_DATABASE_URL", POOLER)
    assert load_settings().direct_url == POOLER
    monkeypatch.setenv("CPL_DATABASE_DIRECT_URL", DIRECT)
    monkeypatch.setenv("CPL_DATABASE_POOLER", " Transaction ")
    loaded = load_settings()
    assert (loaded.direct_url, loaded.database_pooler, loaded.refusal()) == (
        DIRECT,
        "transaction",
        None,
    )


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"CPL_DATABASE_URL": POOLER, "CPL_DATABASE_POOLER": "transaction"},
            "CPL_DATABASE_POOLER=transaction needs CPL_DATABASE_DIRECT_URL: migrations, the "
            "change listener and the revision reader need a session a pooler does not keep",
        ),
        (
            {"CPL_DATABASE_POOLER": "transaction"},
            "CPL_DATABASE_POOLER is for PostgreSQL: CPL_DATABASE_URL is SQLite's",
        ),
        (
            {"CPL_DATABASE_DIRECT_URL": DIRECT},
            "CPL_DATABASE_DIRECT_URL is for PostgreSQL: CPL_DATABASE_URL is SQLite's",
        ),
    ],
)
def test_a_pooler_configuration_that_cannot_work_is_refused(
    clean_environment, monkeypatch, variables, message
):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert load_settings().refusal() == message


def test_migrate_behind_a_pooler_without_a_direct_url_exits_2_with_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPL_")}
    env |= {"CPL_DATA_DIR": str(tmp_path), "CPL_DATABASE_URL": POOLER}
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "migrate"],
        cwd=ROOT,
        env=env | {"CPL_DATABASE_POOLER": "transaction"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "cpl-pathways: CPL_DATABASE_POOLER=transaction needs CPL_DATABASE_DIRECT_URL: "
        "migrations, the change listener and the revision reader need a session a pooler "
        "does not keep"
    ]
