"""The `cpl-pathways` command: serve, token, seed, migrate, schema, import, export."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import gc
import getpass
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from config.settings import Settings, load_settings

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from resolvers.ssc_access import Operator

DEMO_MANUFACTURER = "0A1B"
# prometheus-client's own variable; read here without importing it, which would make the
# parent process write metric files before the directory is ready.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


async def _prepare_database(settings: Settings, *, seed_if_empty: bool) -> bool:
    """Migrate to the newest schema; seed the demo CPL when asked and empty. True if seeded."""
    from models.database import create_engine, migrate, session_factory
    from models.demo import is_empty, seed_demo

    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        if not seed_if_empty:
            return False
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
        **claims,  # type: ignore[arg-type]
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
        _refuse("--workers must be 1 or more")
    if args.workers > 1 and embedded:
        _refuse(
            "--workers above 1 needs PostgreSQL (CPL_DATABASE_URL): on the embedded SQLite "
            "database a change reaches only the subscribers of the process that made it"
        )
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


def worker_app() -> Starlette:
    """The app of one serving process (uvicorn calls this in each worker)."""
    from config.logs import configure_logging
    from server.app import create_app

    settings = load_settings()
    configure_logging(settings)
    app = create_app(settings)
    tune_garbage_collector()
    return app


def _refuse(message: str, command: str = "serve") -> NoReturn:
    """A usage error, as argparse exits for one (2), in one line."""
    print(f"cpl-pathways {command}: {message}", file=sys.stderr)
    raise SystemExit(2)


def checked_actor(command: str, given: str | None, default: str) -> str:
    """The party id a command records (`--actor`, else one made of a file's name), checked as
    a token's `party_id` is: a newline in it would forge a log line, and text wider than the
    audit columns would fail on PostgreSQL after the work was done. Never echoed back."""
    from permissions.claims import MAX_PARTY_ID_LENGTH, is_party_id

    actor = default if given is None else given
    if not is_party_id(actor):
        rule = f"printable text of 1 to {MAX_PARTY_ID_LENGTH} characters"
        if given is None:
            _refuse(f"the actor the file's name makes must be {rule}; give --actor", command)
        _refuse(f"--actor must be {rule}", command)
    return actor


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

    from models.database import create_engine, describe_outage, downgrade, migrate

    engine = create_engine(settings.database_url)
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


async def _import(settings: Settings, args: argparse.Namespace) -> Any:
    from models.database import create_engine, migrate, session_factory
    from notifications.bus import change_bus
    from notifications.channels import consumers
    from resolvers.files.cpl_import import import_file, importer

    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        sessions = session_factory(engine)
        path = Path(args.path)
        return await import_file(
            sessions,
            consumers(change_bus(settings.database_url, sessions)),
            path,
            importer(path, args.actor),
            dry_run=args.dry_run,
        )
    finally:
        await engine.dispose()


def _counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{count:,} {what}" for what, count in counts.items() if count)


def cmd_import(args: argparse.Namespace) -> None:
    """Exit 0 with counts, or 1 with a line per bad row (on stderr) and nothing written."""
    from resolvers.files.cpl_files import FileProblem

    name = Path(args.path).name
    args.actor = checked_actor("import", args.actor, f"import:{name}")
    try:
        result = asyncio.run(_import(load_settings(), args))
    except FileProblem as problem:
        raise SystemExit(f"cpl-pathways import: {name}: {problem}; nothing written") from None
    except OSError as error:
        raise SystemExit(f"cpl-pathways import: cannot read {name}: {error.strerror}") from None
    what = f"{name} ({'a CPL file' if result.kind == 'cpl' else 'a pathways file'}, "
    what += f"{result.rows:,} rows)"
    if result.problems:
        for line in result.problems:
            print(line, file=sys.stderr)
        raise SystemExit(
            f"cpl-pathways import: {len(result.problems):,} bad rows in {what}; nothing written"
        )
    if args.dry_run:
        for line in result.changes:
            print(line)
        print(f"Dry run of {what}: would make {_counted(result.counts) or 'no changes'}.")
    elif result.written:
        print(f"Imported {what}: {_counted(result.counts)}.")
    else:
        print(f"Nothing to change: the database already holds {what}.")


def export_operator(args: argparse.Namespace) -> Operator:
    """Whom the SSC access log names for an export with the SSC-only columns: the operating
    system's user who ran it (`cli:<user>`, as the sub) and the party id `--actor` gives, else
    where the values went (`export:<file name>`, or `export:stdout`), as an import names its
    file."""
    from resolvers.ssc_access import Operator

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        user = f"uid-{os.getuid()}"
    where = Path(args.output).name if args.output is not None else "stdout"
    return Operator(f"cli:{user}", checked_actor("export", args.actor, f"export:{where}"))


def cmd_export(args: argparse.Namespace) -> None:
    from models.database import create_engine, migrate, session_factory
    from resolvers.files.cpl_export import export
    from resolvers.ssc_access import AccessLogUnavailable

    actor = export_operator(args)  # checked before anything is opened

    async def run(out: Any) -> int:
        engine = create_engine(load_settings().database_url)
        try:
            await migrate(engine)  # as import and serve do: an empty database exports nothing
            return await export(
                session_factory(engine),
                args.what,
                out,
                include_ssc=args.include_ssc,
                actor=actor,
            )
        except AccessLogUnavailable:
            raise SystemExit(
                "cpl-pathways export: the SSC access log cannot be written; nothing exported"
            ) from None
        finally:
            await engine.dispose()

    if args.output is None:
        asyncio.run(run(sys.stdout))
        return
    if Path(args.output).suffix.lower() != ".csv":
        raise SystemExit("cpl-pathways export: writes CSV; name the output file .csv")
    try:
        out = Path(args.output).open("w", encoding="utf-8", newline="")  # noqa: SIM115
    except OSError as error:
        message = f"cpl-pathways export: cannot write {args.output}: {error.strerror}"
        raise SystemExit(message) from None
    with out:
        count = asyncio.run(run(out))
    print(f"Exported {count:,} rows to {args.output}.", file=sys.stderr)


def _data_commands(commands: Any) -> None:
    """`import` and `export`: the CPL in and out as files (README: Importing the CPL)."""
    load = commands.add_parser("import", help="import a CPL or pathways file (CSV or XLSX)")
    load.add_argument("path")
    load.add_argument("--dry-run", action="store_true", help="print the changes, write nothing")
    load.add_argument("--actor", help="party id recorded as the changes' actor (SECAS)")
    load.set_defaults(run=cmd_import)

    dump = commands.add_parser("export", help="export devices (a CPL file) or pathways as CSV")
    dump.add_argument("what", choices=["devices", "pathways"])
    dump.add_argument("--output", help="file to write (default: standard output)")
    dump.add_argument("--include-ssc", action="store_true", help="fill the SSC-only Zigbee columns")
    dump.add_argument(
        "--actor", help="party id the SSC access log records for --include-ssc (export:<file>)"
    )
    dump.set_defaults(run=cmd_export)


def parser() -> argparse.ArgumentParser:
    from permissions.principal import PartyCategory

    root = argparse.ArgumentParser(prog="cpl-pathways", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate, seed an empty embedded database, serve")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
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
    _data_commands(commands)
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    refusal = load_settings().refusal()
    if refusal is not None:
        print(f"cpl-pathways: {refusal}", file=sys.stderr)
        raise SystemExit(2)
    args.run(args)


if __name__ == "__main__":
    main()
