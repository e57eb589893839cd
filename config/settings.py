"""Configuration, read once from the environment.

Every knob an operator can turn is here, with its default written once (a field's default in
`Settings`, and where `CPL_ENV=production` changes it, its production value in
`PRODUCTION_DEFAULTS`), so that the README's configuration table and the code cannot drift
apart silently: a test checks that every `CPL_` variable the code reads is in that table.
"""

from __future__ import annotations

import logging
import os
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from types import SimpleNamespace
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T", int, float)
LOG_FORMATS = ("json", "text")
# What sits between the API's pool and PostgreSQL (CPL_DATABASE_POOLER): nothing, or a pooler
# that hands a server connection to a client for one transaction only (README: Behind a pooler).
POOLERS = ("none", "transaction")


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _number(name: str, default: T) -> T:
    """`name` from the environment as the type of its default (int or float); unset: default."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = type(default)(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {value!r}") from None
    if number < 0:
        raise ValueError(f"{name} must not be negative")
    return number


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str  # the requests' pool: PostgreSQL itself, or a transaction pooler
    jwks_url: str | None
    issuer: str
    audience: str
    environment: str
    max_body_bytes: int = 16_000_000  # a fleet plan of 50,000 items is about 6 MB
    body_read_timeout_seconds: float = 20.0  # a body arrives within this of its first read
    max_query_depth: int = 12
    max_aliases: int = 30
    max_query_tokens: int = 4_000
    max_query_bytes: int = 100_000
    max_query_cost: int = 1_000_000
    response_cache_bytes: int = 64_000_000
    persisted_queries_bytes: int = 16_000_000
    revision_max_age_seconds: float = 1.0
    allow_insecure_webhooks: bool = True  # these two and log_format: see PRODUCTION_DEFAULTS
    block_private_webhooks: bool = False
    webhook_retry_schedule: tuple[float, ...] = (1, 5, 30, 120, 600, 1800, 3600)
    webhook_horizon_seconds: float = 86_400.0
    webhook_timeout_seconds: float = 10.0
    webhook_poll_seconds: float = 5.0
    listener_retry_seconds: float = 1.0  # the PostgreSQL listener's reconnect and check interval
    listener_retry_max_seconds: float = 30.0  # its reconnect delay doubles up to this
    ws_keep_alive_seconds: float = 15.0
    # Subscriptions held at once in this process: by one Party (all its sockets), and by all.
    max_subscriptions_per_party: int = 20
    max_subscriptions: int = 2_000
    db_pool_size: int = 5  # PostgreSQL connections each process keeps, and may add on top:
    db_max_overflow: int = 10
    # What needs a session of its own (migrations and their lock, the change listener, the
    # revision reader) connects here; unset: `database_url` (`direct_url`).
    database_direct_url: str | None = None
    # Said, not detected: a transaction pooler answers like PostgreSQL itself, and providers'
    # poolers announce themselves in no common way; what its absence breaks (prepared
    # statements' names taken by another client) shows only under concurrent load.
    database_pooler: str = "none"
    log_format: str = "text"
    log_level: str = "INFO"
    cors_origins: tuple[str, ...] = ()
    # SSC analysts' sign-in (server/signin.py): the OIDC provider, where this server is
    # reached from a browser, what signs the short-lived sign-in cookie, how long a session lasts.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    public_url: str | None = None
    session_secret: str | None = None
    session_ttl_seconds: int = 8 * 3600
    max_fleet_rows: int = 5_000_000  # rows of one POST /fleet-plan.csv that are planned
    fleet_batch_bytes: int = 4_000_000  # of rows' text one fleet-file batch holds
    max_token_lifetime_seconds: int = 86_400  # a token whose exp is further off is refused
    # Operations a Party may run, in each process (schema/rate_limit.py): sustained, and at once.
    rate_limit_per_second: float = 50.0  # 0: no limit
    rate_limit_burst: int = 200
    scheduler_poll_seconds: float = 60.0  # how often each process applies due withdrawals
    digest_hour_utc: int = 6  # the hour (UTC) from which each DIGEST webhook's digest is sent

    @property
    def direct_url(self) -> str:
        """PostgreSQL itself, never a pooler: for whatever holds a session (`database_url`
        when no other is given)."""
        return self.database_direct_url or self.database_url

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
        return self._database_refusal()

    def _database_refusal(self) -> str | None:
        embedded = self.database_url.startswith("sqlite")
        if embedded and self.database_direct_url not in (None, self.database_url):
            return "CPL_DATABASE_DIRECT_URL is for PostgreSQL: CPL_DATABASE_URL is SQLite's"
        if self.database_pooler == "none":
            return None
        if embedded:
            return "CPL_DATABASE_POOLER is for PostgreSQL: CPL_DATABASE_URL is SQLite's"
        if self.direct_url == self.database_url:
            return (
                "CPL_DATABASE_POOLER=transaction needs CPL_DATABASE_DIRECT_URL: migrations, the "
                "change listener and the revision reader need a session a pooler does not keep"
            )
        return None

    @property
    def dev_sign_in(self) -> bool:
        """With neither a JWKS nor an OIDC provider, `/login` offers the seven categories."""
        return self.dev_issuer and self.oidc_issuer is None

    @property
    def dev_key_path(self) -> Path:
        return self.data_dir / "dev-signing-key.json"


#: The defaults `CPL_ENV=production` changes, and what to: safe webhooks and machine-read logs.
PRODUCTION_DEFAULTS: dict[str, object] = {
    "allow_insecure_webhooks": False,
    "block_private_webhooks": True,
    "log_format": "json",
}


def _defaults(production: bool) -> SimpleNamespace:
    """The field defaults under this `CPL_ENV`, read as attributes: the dataclass's own, with
    production's changes over them."""
    written = {
        field.name: field.default for field in fields(Settings) if field.default is not MISSING
    }
    return SimpleNamespace(**{**written, **(PRODUCTION_DEFAULTS if production else {})})


def load_settings() -> Settings:
    data_dir = Path(os.environ.get("CPL_DATA_DIR") or "./var").resolve()
    environment = os.environ.get("CPL_ENV", "development")
    production = environment == "production"
    default = _defaults(production)
    retry = os.environ.get("CPL_WEBHOOK_RETRY_SCHEDULE", "").strip()
    return Settings(
        data_dir=data_dir,
        database_url=os.environ.get("CPL_DATABASE_URL")
        or f"sqlite+aiosqlite:///{data_dir / 'cpl-pathways.db'}",
        jwks_url=os.environ.get("CPL_JWKS_URL") or None,
        issuer=os.environ.get("CPL_ISSUER", "cpl-pathways-dev"),
        audience=os.environ.get("CPL_AUDIENCE", "cpl-pathways"),
        environment=environment,
        max_body_bytes=_number("CPL_MAX_BODY_BYTES", default.max_body_bytes),
        body_read_timeout_seconds=_number(
            "CPL_BODY_READ_TIMEOUT_SECONDS", default.body_read_timeout_seconds
        ),
        max_query_bytes=_number("CPL_MAX_QUERY_BYTES", default.max_query_bytes),
        max_query_depth=_number("CPL_MAX_QUERY_DEPTH", default.max_query_depth),
        max_aliases=_number("CPL_MAX_ALIASES", default.max_aliases),
        max_query_tokens=_number("CPL_MAX_QUERY_TOKENS", default.max_query_tokens),
        max_query_cost=_number("CPL_MAX_QUERY_COST", default.max_query_cost),
        response_cache_bytes=_megabytes("CPL_RESPONSE_CACHE_SIZE", default.response_cache_bytes),
        persisted_queries_bytes=_megabytes(
            "CPL_PERSISTED_QUERIES_SIZE", default.persisted_queries_bytes
        ),
        revision_max_age_seconds=_number(
            "CPL_REVISION_MAX_AGE_MS", default.revision_max_age_seconds * 1000
        )
        / 1000,
        allow_insecure_webhooks=_flag(
            "CPL_ALLOW_INSECURE_WEBHOOKS", default.allow_insecure_webhooks
        ),
        block_private_webhooks=_flag("CPL_BLOCK_PRIVATE_WEBHOOKS", default.block_private_webhooks),
        webhook_retry_schedule=_seconds(retry) if retry else default.webhook_retry_schedule,
        webhook_horizon_seconds=_number(
            "CPL_WEBHOOK_HORIZON_SECONDS", default.webhook_horizon_seconds
        ),
        webhook_timeout_seconds=_number(
            "CPL_WEBHOOK_TIMEOUT_SECONDS", default.webhook_timeout_seconds
        ),
        webhook_poll_seconds=_number("CPL_WEBHOOK_POLL_SECONDS", default.webhook_poll_seconds),
        listener_retry_seconds=_number(
            "CPL_LISTENER_RETRY_SECONDS", default.listener_retry_seconds
        ),
        listener_retry_max_seconds=_number(
            "CPL_LISTENER_RETRY_MAX_SECONDS", default.listener_retry_max_seconds
        ),
        ws_keep_alive_seconds=_number("CPL_WS_KEEPALIVE_SECONDS", default.ws_keep_alive_seconds),
        max_subscriptions_per_party=_number(
            "CPL_MAX_SUBSCRIPTIONS_PER_PARTY", default.max_subscriptions_per_party
        ),
        max_subscriptions=_number("CPL_MAX_SUBSCRIPTIONS", default.max_subscriptions),
        db_pool_size=_number("CPL_DB_POOL_SIZE", default.db_pool_size),
        db_max_overflow=_number("CPL_DB_MAX_OVERFLOW", default.db_max_overflow),
        database_direct_url=os.environ.get("CPL_DATABASE_DIRECT_URL") or None,
        database_pooler=_pooler(os.environ.get("CPL_DATABASE_POOLER") or default.database_pooler),
        log_format=_log_format(os.environ.get("CPL_LOG_FORMAT") or default.log_format),
        log_level=_log_level(os.environ.get("CPL_LOG_LEVEL") or default.log_level),
        cors_origins=_origins(os.environ.get("CPL_CORS_ORIGINS", "")),
        oidc_issuer=os.environ.get("CPL_OIDC_ISSUER") or None,
        oidc_client_id=os.environ.get("CPL_OIDC_CLIENT_ID") or None,
        oidc_client_secret=_secret("CPL_OIDC_CLIENT_SECRET", "CPL_OIDC_CLIENT_SECRET_FILE"),
        public_url=(os.environ.get("CPL_PUBLIC_URL") or "").rstrip("/") or None,
        session_secret=_secret("CPL_SESSION_SECRET", "CPL_SESSION_SECRET_FILE"),
        session_ttl_seconds=_number("CPL_SESSION_TTL_SECONDS", default.session_ttl_seconds),
        max_fleet_rows=_number("CPL_MAX_FLEET_ROWS", default.max_fleet_rows),
        fleet_batch_bytes=_number("CPL_FLEET_BATCH_BYTES", default.fleet_batch_bytes),
        max_token_lifetime_seconds=_number(
            "CPL_MAX_TOKEN_LIFETIME_SECONDS", default.max_token_lifetime_seconds
        ),
        rate_limit_per_second=_number("CPL_RATE_LIMIT_PER_SECOND", default.rate_limit_per_second),
        rate_limit_burst=_number("CPL_RATE_LIMIT_BURST", default.rate_limit_burst),
        scheduler_poll_seconds=_number(
            "CPL_SCHEDULER_POLL_SECONDS", default.scheduler_poll_seconds
        ),
        digest_hour_utc=_hour("CPL_DIGEST_HOUR_UTC", default.digest_hour_utc),
    )


def _hour(name: str, default: int) -> int:
    hour = _number(name, default)
    if hour > 23:
        raise ValueError(f"{name} must be an hour of the day, 0 to 23")
    return hour


def _secret(name: str, file_name: str) -> str | None:
    """A secret from the environment (`name`), or from the file `file_name` names: a compose or
    Kubernetes secret, kept out of the environment that `docker inspect` and /proc show. The
    file's trailing line break is not part of the secret. Both set, an unreadable or an empty
    file is refused by name."""
    value, path = os.environ.get(name) or None, os.environ.get(file_name) or None
    if path is None:
        return value
    if value is not None:
        raise ValueError(f"set {name} or {file_name}, not both")
    try:
        secret = Path(path).read_text().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise ValueError(f"{file_name}: cannot read {path} ({reason})") from None
    if not secret:
        raise ValueError(f"{file_name}: {path} is empty")
    return secret


def _megabytes(name: str, default_bytes: int) -> int:
    """A size given in MB (decimal, fractions allowed); 0 turns the thing it bounds off."""
    return int(_number(name, default_bytes / 1_000_000) * 1_000_000)


def _seconds(value: str) -> tuple[float, ...]:
    """A comma-separated retry schedule in seconds, e.g. `1,5,30`; the last step repeats."""
    steps = tuple(float(part) for part in value.split(",") if part.strip())
    if not steps or any(step < 0 for step in steps):
        raise ValueError("CPL_WEBHOOK_RETRY_SCHEDULE must list non-negative seconds")
    return steps


def _log_format(value: str) -> str:
    value = value.strip().lower() or Settings.log_format
    if value not in LOG_FORMATS:
        raise ValueError(f"CPL_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {value!r}")
    return value


def _pooler(value: str) -> str:
    pooler = value.strip().lower()
    if pooler not in POOLERS:
        raise ValueError(f"CPL_DATABASE_POOLER must be {' or '.join(POOLERS)}, not {value!r}")
    return pooler


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ValueError(f"CPL_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {value!r}")
    return level


def _origins(value: str) -> tuple[str, ...]:
    """`https://a.example, http://127.0.0.1:3000`: each an origin (scheme, host, port), no path."""
    origins = tuple(part.strip().rstrip("/") for part in value.split(",") if part.strip())
    for origin in origins:
        if origin != "*" and not _is_origin(origin):
            raise ValueError(f"CPL_CORS_ORIGINS: {origin!r} is not an origin like https://host")
    return origins


def _is_origin(text: str) -> bool:
    """Scheme, host and an optional port, nothing more: what a browser sends as `Origin`, and
    what both CORS and the WebSocket handshake's origin check compare it with."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  # raises for a port that is not a number in range
    except ValueError:
        return False
    return (
        parts.scheme in {"http", "https"}
        and bool(parts.hostname)
        and not (parts.path or parts.query or parts.fragment or parts.username)
    )
