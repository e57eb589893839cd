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
    max_query_bytes: int = 100_000
    max_query_cost: int = 1_000_000
    response_cache_bytes: int = 64_000_000
    persisted_queries_bytes: int = 16_000_000
    revision_max_age_seconds: float = 0.25
    allow_insecure_webhooks: bool = True
    block_private_webhooks: bool = False
    webhook_retry_schedule: tuple[float, ...] = (1, 5, 30, 120, 600, 1800, 3600)
    webhook_horizon_seconds: float = 86_400
    webhook_timeout_seconds: float = 10
    webhook_poll_seconds: float = 5
    # SSC analysts' sign-in (schema/auth_routes.py): the OIDC provider, where this server is
    # reached from a browser, what signs the short-lived sign-in cookie, how long a session lasts.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    public_url: str | None = None
    session_secret: str | None = None
    session_ttl_seconds: int = 8 * 3600
    max_fleet_rows: int = 5_000_000  # rows of one POST /fleet-plan.csv that are planned

    @property
    def dev_issuer(self) -> bool:
        """With no JWKS configured, the server signs and verifies its own development tokens."""
        return self.jwks_url is None

    @property
    def production(self) -> bool:
        return self.environment == "production"

    def refusal(self) -> str | None:
        """Why this configuration must not start, or None. Checked before anything touches a
        file, a key or a database: a production server without an identity provider would
        otherwise mint its own keys and hand out tokens."""
        if self.production and self.dev_issuer:
            return "CPL_ENV=production needs CPL_JWKS_URL: production has no development issuer"
        if self.oidc_issuer and not (self.oidc_client_id and self.public_url):
            return "CPL_OIDC_ISSUER needs CPL_OIDC_CLIENT_ID and CPL_PUBLIC_URL"
        if self.production and self.oidc_issuer and not self.session_secret:
            return "CPL_ENV=production with CPL_OIDC_ISSUER needs CPL_SESSION_SECRET"
        return None

    @property
    def dev_sign_in(self) -> bool:
        """With neither a JWKS nor an OIDC provider, `/login` offers the seven categories."""
        return self.dev_issuer and self.oidc_issuer is None

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
        max_query_bytes=int(os.environ.get("CPL_MAX_QUERY_BYTES", "100000")),
        max_query_depth=int(os.environ.get("CPL_MAX_QUERY_DEPTH", "12")),
        max_aliases=int(os.environ.get("CPL_MAX_ALIASES", "30")),
        max_query_tokens=int(os.environ.get("CPL_MAX_QUERY_TOKENS", "4000")),
        max_query_cost=int(os.environ.get("CPL_MAX_QUERY_COST", "1000000")),
        response_cache_bytes=_megabytes("CPL_RESPONSE_CACHE_SIZE", "64"),
        persisted_queries_bytes=_megabytes("CPL_PERSISTED_QUERIES_SIZE", "16"),
        revision_max_age_seconds=float(os.environ.get("CPL_REVISION_MAX_AGE_MS", "250")) / 1000,
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
        oidc_issuer=os.environ.get("CPL_OIDC_ISSUER") or None,
        oidc_client_id=os.environ.get("CPL_OIDC_CLIENT_ID") or None,
        oidc_client_secret=os.environ.get("CPL_OIDC_CLIENT_SECRET") or None,
        public_url=(os.environ.get("CPL_PUBLIC_URL") or "").rstrip("/") or None,
        session_secret=os.environ.get("CPL_SESSION_SECRET") or None,
        session_ttl_seconds=int(os.environ.get("CPL_SESSION_TTL_SECONDS", str(8 * 3600))),
        max_fleet_rows=int(os.environ.get("CPL_MAX_FLEET_ROWS", "5000000")),
    )


def _megabytes(name: str, default: str) -> int:
    """A size given in MB (decimal, fractions allowed); 0 turns the thing it bounds off."""
    value = float(os.environ.get(name) or default)
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    return int(value * 1_000_000)


def _seconds(value: str) -> tuple[float, ...]:
    """A comma-separated retry schedule in seconds, e.g. `1,5,30`; the last step repeats."""
    steps = tuple(float(part) for part in value.split(",") if part.strip())
    if not steps or any(step < 0 for step in steps):
        raise ValueError("CPL_WEBHOOK_RETRY_SCHEDULE must list non-negative seconds")
    return steps
