"""The `cpl-pathways` command: serve, token, seed, migrate, schema, import, export."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import errno
import gc
import os
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from config.settings import Settings, load_settings
from server.cli_files import data_commands, refuse

if TYPE_CHECKING:
    from starlette.applications import Starlette

DEMO_MANUFACTURER = "0A1B"
# prometheus-client's own variable; read here without importing it, which would make the
# parent process write metric files before the directory is ready.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


async def _prepare_database(settings: Settings, *, seed_if_empty: bool) -> bool:
    """Migrate to the newest schema (on PostgreSQL itself, `CPL_DATABASE_DIRECT_URL`); seed the
    demo CPL when asked and empty (through `CPL_DATABASE_URL`, as requests write). True if
    seeded."""
    from models.database import migrate_directly, pooled_engine, session_factory
    from models.demo import is_empty, seed_demo

    await migrate_directly(settings)
    if not seed_if_empty:
        return False
    engine = pooled_engine(settings)
    try:
        async with session_factory(engine)() as session, session.begin():
            if not await is_empty(session):
                return False
            await seed_demo(session)
            return True
    finally:
        await engine.dispose()


def _token(settings: Settings, category: str, **claims: object) -> str:
    from permissions.dev_keys import issue_token, load_or_create_dev_key
    from permissions.principal import PartyCategory

    if not settings.dev_issuer:
        raise SystemExit("cpl-pathways token signs with the development key; CPL_JWKS_URL is set")
    key = load_or_create_dev_key(settings.dev_key_path)
    return issue_token(
        key,
        issuer=settings.issuer,
        audience=settings.audience,
        category=PartyCategory(category),
        **claims,  # type: ignore[arg-type]  # claims: issue_token's optional str claims
    )


# asyncio's own loop, not uvloop (uvicorn's "auto" choice): under 200 keep-alive clients uvloop
# left some connections' requests unread in the kernel for 1-10 s while it served the others
# (a p99 of 5 s, where asyncio's loop gives 210 ms), even for a bare ASGI app. uvloop is 15-20 %
# faster at saturation; a front-end waiting seconds is worse. Measured in bench/README.md.
EVENT_LOOP = "asyncio"


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from config.logs import configure_logging
    from models.database import is_sqlite
    from permissions.principal import PartyCategory

    settings = load_settings()
    configure_logging(settings)
    embedded = is_sqlite(settings.database_url)
    if args.workers < 1:
        refuse("--workers must be 1 or more")
    if args.workers > 1 and embedded:
        refuse(
            "--workers above 1 needs PostgreSQL (CPL_DATABASE_URL): on the embedded SQLite "
            "database a change reaches only the subscribers of the process that made it"
        )
    unavailable = _cannot_listen(args.host, args.port)
    if unavailable:  # before the banner and its tokens, which would promise a server
        refuse(unavailable)
    if args.workers > 1 or os.environ.get(MULTIPROCESS_DIR):
        _metrics_directory()
    # Once, before any worker starts: workers never race each other to migrate or seed.
    # Production never seeds the fictional demo CPL.
    seed = embedded and not settings.production
    seeded = asyncio.run(_prepare_database(settings, seed_if_empty=seed))
    url = f"http://{args.host}:{args.port}/graphql"
    print(f"cpl-pathways: GraphiQL at {url}" + (" (demo data seeded)" if seeded else ""))
    if settings.dev_issuer:
        print("Development tokens (header: Authorization: Bearer <token>), valid 12 hours:")
        for category in PartyCategory:
            manufacturer = DEMO_MANUFACTURER if category is PartyCategory.MANUFACTURER else None
            token = _token(
                settings, category.value, manufacturer_id=manufacturer, ttl_seconds=12 * 3600
            )
            print(f"  {category.value:<16} {token}")
    if settings.dev_sign_in or settings.oidc_issuer:
        site = settings.public_url or f"http://{args.host}:{args.port}"
        print(f"Sign in to GraphiQL: {site}/login")
    sys.stdout.flush()
    uvicorn.run(
        "server.cli:worker_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop=EVENT_LOOP,
        log_config=None,  # logs.configure_logging formats every record, uvicorn's too
        access_log=False,  # server.requests writes the access line, without the query string
    )


def _cannot_listen(host: str, port: int) -> str | None:
    """Why `host:port` cannot be listened on (in use, not this machine's, privileged), or None.
    Bound as uvicorn binds it, then let go: uvicorn binds it again a moment later."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            reason = "already in use" if error.errno == errno.EADDRINUSE else error.strerror
            return f"cannot listen on {host}:{port}: {reason} (choose another with --port)"
    return None


def worker_app() -> Starlette:
    """The app of one serving process (uvicorn calls this in each worker)."""
    from config.logs import configure_logging
    from server.app import create_app

    settings = load_settings()
    configure_logging(settings)
    app = create_app(settings)
    tune_garbage_collector()
    return app


def _metrics_directory() -> None:
    """prometheus-client's multiprocess mode: each worker writes its samples to files in one
    directory, which must start empty. An operator may name it (PROMETHEUS_MULTIPROC_DIR);
    otherwise a fresh temporary one is made, and removed at exit."""
    named = os.environ.get(MULTIPROCESS_DIR)
    if named:
        directory = Path(named)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
    else:
        directory = Path(tempfile.mkdtemp(prefix="cpl-pathways-metrics-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
    os.environ[MULTIPROCESS_DIR] = str(directory)


def tune_garbage_collector() -> None:
    """The server keeps large, long-lived caches (every device's pathway graph), and a fleet
    plan allocates hundreds of thousands of short-lived objects. With CPython's default
    thresholds that triggers full collections that walk the whole cache again and again
    (measured: a third of a 50,000-item fleet plan). Objects alive at start-up are frozen out
    of collection, and collections run less often; reference counting still frees garbage."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def cmd_token(args: argparse.Namespace) -> None:
    try:
        token = _token(
            load_settings(),
            args.category,
            party_id=args.party_id,
            manufacturer_id=args.manufacturer_id,
            ttl_seconds=args.ttl,
        )
    except ValueError as error:
        raise SystemExit(f"cpl-pathways token: {error}") from None
    print(token)


def cmd_seed(args: argparse.Namespace) -> None:
    if not args.demo:
        raise SystemExit("cpl-pathways seed: say what to seed (--demo)")
    settings = load_settings()
    if settings.production:
        raise SystemExit("cpl-pathways seed: the demo CPL is fictional; production never seeds it")
    if not asyncio.run(_prepare_database(settings, seed_if_empty=True)):
        raise SystemExit("cpl-pathways seed: the database already holds data; nothing seeded")
    print("Demo data seeded.")


def cmd_migrate(args: argparse.Namespace) -> None:
    if args.downgrade and args.revision:
        raise SystemExit("cpl-pathways migrate: give --revision or --downgrade, not both")
    target = args.downgrade or args.revision or "head"
    asyncio.run(_migrate(load_settings(), target, down=bool(args.downgrade)))
    print(
        "Database at the newest migration."
        if target == "head"
        else f"Database {'downgraded' if args.downgrade else 'upgraded'} to {target}."
    )


async def _migrate(settings: Settings, revision: str, *, down: bool) -> None:
    from alembic.util import CommandError

    from models.database import describe_outage, direct_engine, downgrade, migrate

    engine = direct_engine(settings)  # PostgreSQL itself: DDL and the lock in one session
    try:
        await (downgrade if down else migrate)(engine, revision)
    except CommandError as error:
        raise SystemExit(f"cpl-pathways migrate: {error}") from None
    except Exception as error:  # the database's answer, in one line: nothing was committed
        raise SystemExit(f"cpl-pathways migrate: failed ({describe_outage(error)})") from None
    finally:
        await engine.dispose()


def cmd_schema(_args: argparse.Namespace) -> None:
    from schema.build import sdl

    sys.stdout.write(sdl())


def parser() -> argparse.ArgumentParser:
    from permissions.principal import PartyCategory

    root = argparse.ArgumentParser(prog="cpl-pathways", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate, seed an empty embedded database, serve")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument(
        "--port",
        type=int,
        default=os.environ.get("CPL_PORT") or 8000,
        help="default: $CPL_PORT, 8000",
    )
    serve.add_argument(
        "--workers", type=int, default=1, help="processes to serve with (above 1: PostgreSQL)"
    )
    serve.set_defaults(run=cmd_serve)

    token = commands.add_parser("token", help="print one development JWT and nothing else")
    token.add_argument("category", choices=[c.value for c in PartyCategory])
    token.add_argument("--party-id")
    token.add_argument("--manufacturer-id")
    token.add_argument("--ttl", type=int, default=3600, help="seconds (default 3600)")
    token.set_defaults(run=cmd_token)

    seed = commands.add_parser("seed", help="load demo data into an empty database")
    seed.add_argument("--demo", action="store_true")
    seed.set_defaults(run=cmd_seed)

    migrate = commands.add_parser("migrate", help="upgrade (or downgrade) the database schema")
    migrate.add_argument("--revision", help="upgrade to this revision (default: the newest)")
    migrate.add_argument("--downgrade", metavar="REVISION", help="downgrade to this revision")
    migrate.set_defaults(run=cmd_migrate)
    commands.add_parser("schema", help="print the GraphQL SDL").set_defaults(run=cmd_schema)
    data_commands(commands)
    return root


# A command whose reader went away (`cpl-pathways export devices | head`) ends as one that
# SIGPIPE killed ends in a shell: quietly, status 128 + 13. Python ignores SIGPIPE (a closed
# database socket must stay an error, not end the process), so the BrokenPipeError is caught.
CLOSED_PIPE_STATUS = 128 + signal.SIGPIPE


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        refusal = load_settings().refusal()
    except ValueError as error:  # a setting's value, said by name in one line
        refusal = str(error)
    if refusal is not None:
        print(f"cpl-pathways: {refusal}", file=sys.stderr)
        raise SystemExit(2)
    try:
        args.run(args)
        sys.stdout.flush()  # a reader gone fails here, not in the interpreter's exit
    except BrokenPipeError:
        # Nothing more reaches the pipe, and nothing is said: what was read was all it wanted.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(CLOSED_PIPE_STATUS) from None


if __name__ == "__main__":
    main()
