"""PgBouncer in transaction mode, as operators put it in front of PostgreSQL: Debian's
`pgbouncer` (`make test` and `make bench` install it), run as a process of our own on a free
loopback port, with its own ini in a folder of its own, in front of the tests' PostgreSQL.
Free of pytest, so that `bench/pooler.py` runs on it too.

PgBouncer refuses to run as root; as root (here, and in CI) it is started with `-u nobody`,
which it switches to once it has read its files, so they live in a folder anyone may read
(never pytest's, which only its owner may enter), and hold no secret but the test server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.harness import PG_URL
from tests.live import eventually, free_port

CONNECTIONS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid()"
)
INSTALL = "`make test` installs it (Debian's pgbouncer, apt-get)"
UNPRIVILEGED = "nobody"  # the user a root-started PgBouncer switches to: on every Debian


def executable() -> str | None:
    """Debian puts pgbouncer in /usr/sbin, which a non-root PATH may lack."""
    found = shutil.which("pgbouncer")
    if found is None and os.access("/usr/sbin/pgbouncer", os.X_OK):
        found = "/usr/sbin/pgbouncer"
    return found


def missing() -> str | None:
    """Why nothing can run through PgBouncer here, or None."""
    if executable() is None:
        return f"PgBouncer is not installed: {INSTALL}"
    return None


@dataclass
class PgBouncer:
    """A running PgBouncer: any database of `server` is reached through it by its own name."""

    port: int
    pool_size: int
    server: str
    log: Path

    def url(self, direct: str) -> str:
        """`direct`'s database (a URL on `server`) through the pooler."""
        return (
            make_url(direct)
            .set(host="127.0.0.1", port=self.port)
            .render_as_string(hide_password=False)
        )

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def ini(server: str, port: int, pool_size: int, auth_file: Path) -> str:
    target = make_url(server)
    return (
        "[databases]\n"
        # Every database name a client asks for, the same name on the server.
        f"* = host={target.host or '127.0.0.1'} port={target.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        # The tests' PostgreSQL trusts loopback; a password in the URL is passed on from here.
        f"auth_type = trust\nauth_file = {auth_file}\n"
        f"pool_mode = transaction\ndefault_pool_size = {pool_size}\n"
        "min_pool_size = 0\nreserve_pool_size = 0\nmax_client_conn = 1000\n"
    )


def users(server: str) -> str:
    """auth_file: the server URL's user (asyncpg's default: the OS user) and its password."""
    target = make_url(server)
    user = target.username or os.environ.get("PGUSER") or getpass.getuser()
    secret = (target.password or "").replace('"', '""')
    return f'"{user}" "{secret}"\n'


@contextlib.asynccontextmanager
async def pgbouncer(
    server: str = PG_URL, pool_size: int = 4, log: Path | None = None
) -> AsyncIterator[PgBouncer]:
    """PgBouncer in transaction mode in front of `server`, keeping at most `pool_size`
    connections to each database, its log in `log` (kept) or its own folder (removed);
    stopped (SIGTERM: at once) when the block ends."""
    binary = executable()
    if binary is None:
        raise RuntimeError(f"PgBouncer is not installed: {INSTALL}")
    folder = Path(tempfile.mkdtemp(prefix="cpl-pgbouncer-"))
    try:
        port = free_port()
        _write_files(folder, server, port, pool_size)
        as_user = ["-u", UNPRIVILEGED] if os.geteuid() == 0 else []
        running = PgBouncer(port, pool_size, server, log or folder / "pgbouncer.log")
        with running.log.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                binary, *as_user, str(folder / "pgbouncer.ini"),
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            await _listening(process, running)
            yield running
        finally:
            if process.returncode is None:
                process.terminate()
            await asyncio.wait_for(process.wait(), 10)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _write_files(folder: Path, server: str, port: int, pool_size: int) -> None:
    """The ini and the auth_file, readable by the user PgBouncer switches to."""
    folder.chmod(0o755)
    (folder / "users.txt").write_text(users(server))
    (folder / "pgbouncer.ini").write_text(ini(server, port, pool_size, folder / "users.txt"))
    for path in folder.iterdir():
        path.chmod(0o644)


async def _listening(process: asyncio.subprocess.Process, running: PgBouncer) -> None:
    """Once its port takes connections, or its log says why not."""

    async def accepting() -> bool:
        if process.returncode is not None:
            raise RuntimeError(f"PgBouncer did not start: {running.log_text()[-2000:]}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", running.port)
        except OSError:
            return False
        writer.close()
        await writer.wait_closed()
        return True

    await eventually(accepting, "PgBouncer taking connections")


@contextlib.asynccontextmanager
async def most_connections(direct: str) -> AsyncIterator[list[int]]:
    """The most connections the server held to `direct`'s database while the block ran (the
    counting one left out), sampled every 10 ms on a connection of its own."""
    most = [0]
    admin = create_async_engine(direct)
    stop = asyncio.Event()

    async def sample() -> None:
        async with admin.connect() as connection:
            while not stop.is_set():
                most[0] = max(most[0], int((await connection.scalar(CONNECTIONS)) or 0))
                await connection.rollback()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.01)

    task = asyncio.create_task(sample())
    try:
        yield most
    finally:
        stop.set()
        await task
        await admin.dispose()
