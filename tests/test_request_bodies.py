"""Request bodies against a real server process (issue 24, row 2): a caller without a token gets
401 with none of its body read, and its connection closed; a body over the limit is refused on
its declared size; a body dripped slowly gets 408 once `CPL_BODY_READ_TIMEOUT_SECONDS` is up.
What is asserted is counted: status lines, the server's resident memory from /proc, log lines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import server.body_limit as body_limit
from config.settings import load_settings
from server.body_limit import BodyLimit, Deadlines
from tests.harness import count_calls, fresh_database
from tests.live import ServerProcess, cli, cli_env, cli_server

SOCKETS = 40
SENT_EACH = 2_000_000  # bytes of body each socket sends before it waits: 80 MB in all
DECLARED = 15_000_000  # under CPL_MAX_BODY_BYTES, so only the token can refuse it
RSS_BOUND_KB = 24_000  # the server may grow by this much, far below what was sent
GUARD_SECONDS = 60  # only so that a regression fails instead of hanging


@pytest.fixture(scope="module")
async def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bodies")
    async with fresh_database(tmp) as url:
        env = cli_env(url, tmp / "data", CPL_BODY_READ_TIMEOUT_SECONDS="1")
        token = await cli(env, "token", "LARGE_SUPPLIER")
        async with cli_server(env, tmp / "server.log") as running:
            yield running, token


def resident_kb(server: ServerProcess) -> int:
    """The server process's resident memory (VmRSS), in kB."""
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def open_request(
    server: ServerProcess, headers: dict[str, str], body: bytes
) -> socket.socket:
    """A POST /graphql with `headers` and the first `body` bytes sent, the rest never."""
    address = urlsplit(server.base)
    connection = socket.create_connection((address.hostname, address.port))
    connection.setblocking(False)
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = f"POST /graphql HTTP/1.1\r\nHost: {address.netloc}\r\n{head}\r\n".encode()
    with contextlib.suppress(ConnectionError):  # the server may answer and close meanwhile
        await asyncio.get_running_loop().sock_sendall(connection, request + body)
    return connection


async def answer(connection: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """The response's status, headers and body, read until the server ends the connection
    (with a reset when it closed with the rest of the body unread: what came before counts)."""
    raw = b""
    loop = asyncio.get_running_loop()
    with contextlib.suppress(ConnectionResetError):
        while chunk := await asyncio.wait_for(loop.sock_recv(connection, 65536), GUARD_SECONDS):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    return int(status_line.split()[1]), headers, body


def code(body: bytes) -> str:
    return json.loads(body)["errors"][0]["extensions"]["code"]


async def test_bodies_without_a_token_are_refused_unread_and_take_no_memory(server):
    running, _ = server
    unauthenticated = {"Content-Type": "application/json", "Content-Length": str(DECLARED)}
    with await open_request(running, unauthenticated, b"{") as warm_up:
        assert (await answer(warm_up))[0] == 401
    before = resident_kb(running)

    opened = [
        await open_request(running, unauthenticated, b" " * SENT_EACH) for _ in range(SOCKETS)
    ]
    answers = [await answer(connection) for connection in opened]
    grown = resident_kb(running) - before  # the clients have not left: nothing is held for them

    assert [status for status, _, _ in answers] == [401] * SOCKETS
    assert all(code(body) == "UNAUTHENTICATED" for _, _, body in answers)
    # The rest of each body is never drained: the server closed each connection (read() ended).
    assert all(headers.get("connection") == "close" for _, headers, _ in answers)
    assert grown < RSS_BOUND_KB, f"grew {grown} kB for {SOCKETS * SENT_EACH} bytes sent"
    for connection in opened:
        connection.close()


async def test_a_declared_length_over_the_limit_is_413_before_any_is_read(server):
    running, token = server
    headers = {"Authorization": f"Bearer {token}", "Content-Length": str(10**9)}
    with await open_request(running, headers, b"{") as connection:
        status, response_headers, body = await answer(connection)
    assert status == 413 and code(body) == "PAYLOAD_TOO_LARGE"
    assert response_headers["connection"] == "close"


async def test_a_body_dripped_slowly_gets_408_and_the_connection_ends(server):
    running, token = server
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Content-Length": "1000",
    }
    loop = asyncio.get_running_loop()
    with await open_request(running, headers, b'{"query": "') as connection:
        response = asyncio.ensure_future(answer(connection))
        while not response.done():  # a byte at a time, never the whole body
            with contextlib.suppress(ConnectionError):
                await loop.sock_sendall(connection, b" ")
            await asyncio.wait([response], timeout=0.2)
        status, response_headers, body = response.result()
    assert status == 408
    assert json.loads(body)["errors"] == [
        {
            "message": "The request body did not arrive within 1 s.",
            "extensions": {"code": "REQUEST_TIMEOUT"},
        }
    ]
    assert response_headers["connection"] == "close"
    assert any("request body not received within 1.0 s" in line for line in running.log_lines())
    assert not any("Traceback" in line for line in running.log_lines())


async def test_a_body_that_arrives_in_time_is_answered(server):
    running, token = server
    payload = json.dumps({"query": "{ viewer { partyCategory } }"}).encode()
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Content-Length": str(len(payload)),
        "Connection": "close",
    }
    with await open_request(running, headers, payload) as connection:
        status, _, body = await answer(connection)
    assert status == 200
    assert json.loads(body) == {"data": {"viewer": {"partyCategory": "LARGE_SUPPLIER"}}}


async def test_bodies_read_one_after_another_share_one_deadline_sweep(monkeypatch):
    """A body that arrives with its headers is forgotten before the sweep first looks: the
    sweep waits out its tick and watches the next bodies too, rather than one task being
    begun and ended for every request."""
    monkeypatch.setattr(body_limit, "SWEEP_SECONDS", 3600)  # one tick for the test
    sweeps = count_calls(monkeypatch, Deadlines, "_sweeping")
    answered = []

    async def app(scope, receive, send):
        answered.append((await receive())["body"])

    limit = BodyLimit(app, load_settings())
    scope = {"type": "http", "path": "/graphql", "headers": [(b"content-length", b"2")]}
    for _ in range(10):
        await limit(scope, _body(b"{}"), _never)
        await asyncio.sleep(0)  # a turn of the loop between requests, as a server's
    assert answered == [b"{}"] * 10
    assert sweeps[0] == 1 and limit.deadlines._sweep is not None
    limit.deadlines._sweep.cancel()


def _body(payload: bytes):
    async def receive():
        return {"type": "http.request", "body": payload, "more_body": False}

    return receive


async def _never(message):
    raise AssertionError("the app sent nothing")
