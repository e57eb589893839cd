"""The `cpl-pathways` commands that move the CPL in and out as files: `import` and `export`
(README: Importing the CPL), and the checks of what a command records as its actor."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from config.settings import Settings, load_settings

if TYPE_CHECKING:
    from permissions.ssc_access import Operator


def refuse(message: str, command: str = "serve") -> NoReturn:
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
            refuse(f"the actor the file's name makes must be {rule}; give --actor", command)
        refuse(f"--actor must be {rule}", command)
    return actor


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
    for warning in result.warnings:
        print(f"cpl-pathways import: {name}: {warning}", file=sys.stderr)
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
    from permissions.ssc_access import Operator

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        user = f"uid-{os.getuid()}"
    where = Path(args.output).name if args.output is not None else "stdout"
    return Operator(f"cli:{user}", checked_actor("export", args.actor, f"export:{where}"))


def cmd_export(args: argparse.Namespace) -> None:
    from models.database import create_engine, migrate, session_factory
    from permissions.ssc_access import AccessLogUnavailable
    from resolvers.files.cpl_export import export

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


def data_commands(commands: Any) -> None:
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
