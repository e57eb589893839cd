"""Configuration, read once from the environment.

Every knob an operator can turn is here, with its default, so that the README's configuration
table and the code cannot drift apart silently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    jwks_url: str | None
    issuer: str
    audience: str
    environment: str
    max_body_bytes: int = 16_000_000  # a fleet plan of 50,000 items is about 6 MB
    max_query_depth: int = 12
    max_aliases: int = 30
    max_query_tokens: int = 4_000
    allow_insecure_webhooks: bool = True
    block_private_webhooks: bool = False
    webhook_retry_schedule: tuple[float, ...] = (1, 5, 30, 120, 600, 1800, 3600)
    webhook_horizon_seconds: float = 86_400
    webhook_timeout_seconds: float = 10
    webhook_poll_seconds: float = 5
    max_fleet_rows: int = 5_000_000  # rows of one POST /fleet-plan.csv that are planned

    @property
    def dev_issuer(self) -> bool:
        """With no JWKS configured, the server signs and verifies its own development tokens."""
        return self.jwks_url is None

    @property
    def dev_key_path(self) -> Path:
        return self.data_dir / "dev-signing-key.json"


def load_settings() -> Settings:
    data_dir = Path(os.environ.get("CPL_DATA_DIR") or "./var").resolve()
    environment = os.environ.get("CPL_ENV", "development")
    return Settings(
        data_dir=data_dir,
        database_url=os.environ.get("CPL_DATABASE_URL")
        or f"sqlite+aiosqlite:///{data_dir / 'cpl-pathways.db'}",
        jwks_url=os.environ.get("CPL_JWKS_URL") or None,
        issuer=os.environ.get("CPL_ISSUER", "cpl-pathways-dev"),
        audience=os.environ.get("CPL_AUDIENCE", "cpl-pathways"),
        environment=environment,
        max_body_bytes=int(os.environ.get("CPL_MAX_BODY_BYTES", "16000000")),
        allow_insecure_webhooks=_flag(
            "CPL_ALLOW_INSECURE_WEBHOOKS", default=environment != "production"
        ),
        block_private_webhooks=_flag(
            "CPL_BLOCK_PRIVATE_WEBHOOKS", default=environment == "production"
        ),
        webhook_retry_schedule=_seconds(
            os.environ.get("CPL_WEBHOOK_RETRY_SCHEDULE", "1,5,30,120,600,1800,3600")
        ),
        webhook_horizon_seconds=float(os.environ.get("CPL_WEBHOOK_HORIZON_SECONDS", "86400")),
        max_fleet_rows=int(os.environ.get("CPL_MAX_FLEET_ROWS", "5000000")),
    )


def _seconds(value: str) -> tuple[float, ...]:
    """A comma-separated retry schedule in seconds, e.g. `1,5,30`; the last step repeats."""
    steps = tuple(float(part) for part in value.split(",") if part.strip())
    if not steps or any(step < 0 for step in steps):
        raise ValueError("CPL_WEBHOOK_RETRY_SCHEDULE must list non-negative seconds")
    return steps
