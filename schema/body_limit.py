"""The request body limit: a body over the configured size is refused with 413 before anything
parses it, except on the routes that stream their body and bound it themselves."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schema.http_errors import too_large


class BodyLimit:
    """Refuse request bodies over the configured size with 413, before anything parses them.

    Paths in `streamed` are passed through unbuffered: their app reads the body as it arrives
    and bounds it itself (a fleet file is millions of rows, never held whole)."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, streamed: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streamed = streamed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.streamed:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await too_large(self.max_bytes)(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await too_large(self.max_bytes)(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)
