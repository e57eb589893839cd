"""The request body's bounds: a size and a deadline, held as the body is read, not before.

Nothing here reads the body ahead of the app: the app reads it when it needs it, after it has
authenticated the caller from the headers, so a request without a valid token is answered 401
with none of its body read, and its connection is closed (`Connection: close`) so that the rest
is never drained either. What a connection holds meanwhile is uvicorn's own buffer, at most
64 KB before it stops reading the socket.

- A declared `Content-Length` over `CPL_MAX_BODY_BYTES` is refused with 413 before anything is
  read; a body that grows past it as it is read (chunked), with 413 when it does.
- A body must arrive within `CPL_BODY_READ_TIMEOUT_SECONDS` of the app's first read of it, or
  the request is answered 408 `REQUEST_TIMEOUT`. uvicorn has no deadline of its own for a body
  (its `timeout_keep_alive` runs only between requests), so without this a client dripping a
  byte now and then holds its connection, and what it sent, for as long as it likes.
- Paths in `streamed` read their body as it arrives and bound its size themselves (a fleet
  file is millions of rows, never held whole): for them the deadline is between one part of
  the body and the next, since the server plans and answers as it goes.

The deadlines are kept by one sweep a second for the whole process (`Deadlines`), which
interrupts a read that is past its deadline, not by a timer around each read: a timer per read
(`asyncio.timeout`) cost a warm answer 35-45 µs, its cancelled handles filling the event loop's
heap for the deadline's 20 s. A deadline is kept to within that second.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config.settings import Settings
from server.http_errors import request_timeout, too_large

logger = logging.getLogger("cpl_pathways")
CLOSE = (b"connection", b"close")
SWEEP_SECONDS = 1.0  # how often the deadlines are checked, and how long an idle sweep waits


class BodyRefused(Exception):
    """The body broke a bound while the app read it: answer `response` instead, if still can."""

    def __init__(self, response: Response) -> None:
        self.response = response


class BodyLimit:
    """Bound every request body's size and the time it takes to arrive (see the module)."""

    def __init__(
        self, app: ASGIApp, settings: Settings, streamed: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self.max_bytes = settings.max_body_bytes
        self.read_seconds = settings.body_read_timeout_seconds
        self.streamed = streamed
        self.deadlines = Deadlines()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        streamed = scope["path"] in self.streamed
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        pending = b"transfer-encoding" in headers or declared not in (None, b"0")
        limit = None if streamed else self.max_bytes
        body = _Body(receive, limit, self.read_seconds, pending, streamed, self.deadlines)
        started = False

        async def sending(message: Message) -> None:
            """A response sent before its request's body was read ends the connection."""
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if not body.complete:
                    message = {**message, "headers": [*message.get("headers", []), CLOSE]}
            await send(message)

        over = declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes)
        if over and not streamed:
            await too_large(self.max_bytes)(scope, receive, sending)
            return
        try:
            await self.app(scope, body.receive, sending)
        except BodyRefused as refused:
            if started:  # mid-answer (a fleet file): nothing to say but to end the connection
                logger.info("request body stopped arriving; connection closed mid-answer")
                return
            await refused.response(scope, receive, sending)
        finally:
            if not body.complete:  # else done when it completed
                body.done()


class Deadlines:
    """The bodies being read and when each must have arrived, checked once a second by one
    task: a read past its deadline is interrupted (`_Body.expire`). The task ends after a
    second with nothing to watch, not at once: a body mostly arrives with its headers and is
    forgotten before the task first runs, and a task begun and ended for every request cost
    more than the second's timer."""

    def __init__(self) -> None:
        self.reading: dict[_Body, float] = {}
        self._sweep: asyncio.Task[None] | None = None

    def watch(self, body: _Body, deadline: float) -> None:
        self.reading[body] = deadline
        if self._sweep is None or self._sweep.done():
            self._sweep = asyncio.get_running_loop().create_task(self._sweeping())

    def forget(self, body: _Body) -> None:
        self.reading.pop(body, None)

    async def _sweeping(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            if not self.reading:
                return
            now = loop.time()
            for body, deadline in list(self.reading.items()):
                if deadline <= now:
                    self.forget(body)
                    body.expire()


class _Body:
    """`receive`, counting the body's bytes against its limit and its parts against the clock."""

    def __init__(
        self,
        receive: Receive,
        max_bytes: int | None,
        seconds: float,
        pending: bool,
        each_part: bool,
        deadlines: Deadlines,
    ) -> None:
        self._receive = receive
        self.max_bytes = max_bytes
        self.seconds = seconds
        self.complete = not pending
        self.each_part = each_part  # a deadline for each part, not for the whole body
        self.received = 0
        self.deadlines = deadlines
        self._deadline: float | None = None
        self._waiter: asyncio.Task[object] | None = None
        self._expired = False

    def expire(self) -> None:
        """Past the deadline: a read waiting now is interrupted, and any later one refused."""
        self._expired = True
        if self._waiter is not None:
            self._waiter.cancel()

    def done(self) -> None:
        self.deadlines.forget(self)

    async def receive(self) -> Message:
        if self.complete:  # after the body: an app waiting for the client to leave
            return await self._receive()
        if self._deadline is None or self.each_part:
            self._deadline = asyncio.get_running_loop().time() + self.seconds
            self.deadlines.watch(self, self._deadline)
        message = None
        if not self._expired:
            self._waiter = asyncio.current_task()
            try:
                message = await self._receive()
            except asyncio.CancelledError:
                if not self._expired or self._waiter is None:
                    raise
                self._waiter.uncancel()  # our own interruption, not the request's cancellation
            finally:
                self._waiter = None
        if message is None:
            logger.info("request body not received within %s s", self.seconds)
            raise BodyRefused(request_timeout(self.seconds))
        if message["type"] != "http.request":
            self.complete = True  # the client left
            self.done()
            return message
        self.received += len(message.get("body", b""))
        if self.max_bytes is not None and self.received > self.max_bytes:
            raise BodyRefused(too_large(self.max_bytes))
        self.complete = not message.get("more_body", False)
        if self.complete:
            self.done()
        return message


async def read_at_most(request: Request, limit: int) -> bytes:
    """The whole body of a request that has no business being large (a sign-in form), or
    `BodyRefused` (413) as soon as it is over `limit`: nobody signed in yet, so little is read."""
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > limit:
        raise BodyRefused(too_large(limit))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyRefused(too_large(limit))
    return bytes(body)
