"""A real server for tests that need one: uvicorn on a free loopback port, in the test's loop,
and a graphql-transport-ws client on real WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from websockets.asyncio.client import ClientConnection, connect


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DEADLINE = 30.0
"""Seconds a test waits for what must happen before it fails: generous, for a machine busy
with other work; a condition met sooner ends the wait at once, so it costs nothing when met."""


async def eventually(
    check: Callable[[], Any], what: str, within: float = DEADLINE, every: float = 0.025
) -> Any:
    """Poll `check()` (a function or a coroutine function) until it gives something true, and
    return that; fail naming `what` if it has not within `within` seconds. The way to wait for
    something to happen: never a sleep of a guessed length."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        found = check()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {within:g} s")
        await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def serve(app: Any, port: int | None = None) -> AsyncIterator[str]:
    """Serve `app` (with its lifespan) until the block ends; yields the base URL once it
    accepts connections."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started or task.done(), "the server starting")
    if not server.started:
        task.result()  # its error, if it raised one
        raise AssertionError(f"the server on port {port} did not start")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, DEADLINE)


class Subscriber:
    """One graphql-transport-ws connection with one subscription on it."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def next(self, within: float = DEADLINE) -> dict:
        """The next message that is not a ping (answered); fails if none within `within`."""
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), within))
            if message["type"] == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
                continue
            return message

    async def events_until(self, last: Callable[[dict], bool]) -> list[dict]:
        """The messages up to and including the first for which `last` is true. A test that
        shows something was sent once (or not at all) makes one more change after it, a
        marker, and reads up to the marker's event: events come in the order of their
        commits, so whatever else was sent is among them. No waiting for silence."""
        found = [await self.next()]
        while not last(found[-1]):
            found.append(await self.next())
        return found


async def heard_after(
    subscriber: Subscriber, change: Callable[[int], Awaitable[object]], within: float = DEADLINE
) -> dict:
    """The first event `subscriber` hears of `change(1)`, `change(2)`, ... made one after the
    other, a little longer apart each time, until one is heard. For a subscription on a server
    in another process, whose bus the test cannot see: a change committed before that server
    has set the subscription up is, rightly, never sent to it. Events of the later changes may
    follow this one; tell them apart by what they say."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    attempt = 0
    while True:
        attempt += 1
        await change(attempt)
        try:
            return await subscriber.next(max(0.1, min(0.25 * attempt, deadline - loop.time())))
        except TimeoutError:  # websockets' recv() may be cancelled: nothing is lost
            if loop.time() >= deadline:
                raise AssertionError(f"no event within {within:g} s of {attempt} changes") from None


@contextlib.asynccontextmanager
async def subscribe(
    address: str,
    token: str | None,
    query: str,
    variables: dict | None = None,
    bus: Any = None,
) -> AsyncIterator[Subscriber]:
    """Subscribe. With the server's `bus` at hand, return only once it feeds the subscription,
    so a change made next is never made before it listens; without it (a server in another
    process) as soon as the subscription is sent: use `heard_after` for its first event."""
    before = bus.subscribers if bus is not None else 0
    async with connect(f"ws://{address}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
        assert ack["type"] == "connection_ack", ack
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": query, "variables": variables or {}},
                }
            )
        )
        if bus is not None:
            await eventually(lambda: bus.subscribers > before, "the bus feeding the subscription")
        yield Subscriber(ws)


ROOT = Path(__file__).resolve().parent.parent


def cli_env(database_url: str, data_dir: Path, **variables: str) -> dict[str, str]:
    """The environment of a `cpl-pathways` process: this one's without any CPL_ setting, then
    the database, the data directory and `variables`. No rate limit unless `variables` set
    one: the benchmarks send ~1,300 operations a second from one token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CPL_", "PROMETHEUS_"))}
    own = {"CPL_DATABASE_URL": database_url, "CPL_DATA_DIR": str(data_dir)}
    return env | own | {"CPL_RATE_LIMIT_PER_SECOND": "0", **variables}


CLI_PROCESS = (sys.executable, "-m", "server.cli")
"""`cpl-pathways` as a process of its own (`cli(..., command=CLI_PROCESS)`)."""


def run_main(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`cpl-pathways ARGS` run to its end by `server.cli.main` in this process, with `env` as
    the environment and its standard output and error captured: what `subprocess.run` gives,
    without a fresh interpreter importing the whole application again for every command (a
    second or more each on a busy machine). The command runs its own event loop, so it runs
    in a thread of its own while the caller's thread, the test's event loop with it, waits:
    nothing else in this process runs, or reads the environment, meanwhile. An exit by
    `SystemExit` is its status (a message: printed, status 1), an uncaught error a traceback
    on standard error and status 1, as in a process. Each command keeps one test that runs it
    as a real process too (`cpl-pathways import` and `export`: tests/test_cpl_import.py)."""
    from server.cli import main

    status: list[int] = []

    def command() -> None:
        try:
            main(list(args))
            status.append(0)
        except SystemExit as exited:
            if exited.code is None or isinstance(exited.code, int):
                status.append(exited.code or 0)
            else:
                print(exited.code, file=sys.stderr)
                status.append(1)

    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            thread = threading.Thread(target=command, name="cpl-pathways " + " ".join(args))
            thread.start()
            thread.join()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    code = status[0] if status else 1
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


async def cli(env: dict[str, str], *args: str, command: Sequence[str] | None = None) -> str:
    """Run `cpl-pathways ARGS` to its end; its standard output. In this process
    (`run_main`), unless `command` names a program to run as a process (`command ARGS`)."""
    if command is None:
        result = run_main(env, *args)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()
    process = await asyncio.create_subprocess_exec(
        *command,
        *args,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, stderr.decode()
    return stdout.decode().strip()


@dataclass
class ServerProcess:
    """A `cpl-pathways serve` process; its standard error (the log) goes to `log`."""

    base: str
    process: asyncio.subprocess.Process
    log: Path

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def tail(self) -> str:
        return "\n".join(self.log_lines()[-40:])


@contextlib.asynccontextmanager
async def cli_server(
    env: dict[str, str],
    log: Path,
    *args: str,
    command: Sequence[str] | None = None,
    probe: str = "/readyz",
    ready_seconds: float = DEADLINE,
) -> AsyncIterator[ServerProcess]:
    """`cpl-pathways serve --port <free> ARGS` until the block ends (SIGTERM, then waited for);
    yields once `probe` answers 200, which it must within `ready_seconds` (and the server end
    within as long after SIGTERM)."""
    port = free_port()
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            *(command or CLI_PROCESS),
            "serve",
            "--port",
            str(port),
            *args,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    server = ServerProcess(f"http://127.0.0.1:{port}", process, log)
    try:
        async with httpx.AsyncClient() as client:

            async def ready() -> bool:
                if process.returncode is not None:
                    raise AssertionError(f"server exited: {server.tail()}")
                try:
                    return (await client.get(server.base + probe)).status_code == 200
                except httpx.TransportError:
                    return False

            try:
                await eventually(ready, "the server ready", within=ready_seconds, every=0.1)
            except AssertionError as error:
                raise AssertionError(f"{error}: {server.tail()}") from None
        yield server
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), max(20.0, ready_seconds))
