"""A real server for tests that need one: uvicorn on a free loopback port, in the test's loop,
and a graphql-transport-ws client on real WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from websockets.asyncio.client import ClientConnection, connect


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def serve(app: Any, port: int | None = None) -> AsyncIterator[str]:
    """Serve `app` (with its lifespan) until the block ends; yields the base URL."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.025)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


class Subscriber:
    """One graphql-transport-ws connection with one subscription on it."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def next(self, within: float = 5) -> dict:
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), within))
            if message["type"] == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
                continue
            return message

    async def nothing_within(self, seconds: float) -> bool:
        try:
            message = await self.next(seconds)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected message: {message}")


@contextlib.asynccontextmanager
async def subscribe(
    address: str,
    token: str | None,
    query: str,
    variables: dict | None = None,
    bus: Any = None,
) -> AsyncIterator[Subscriber]:
    """Subscribe; with the server's `bus` at hand, return only once it feeds the subscription
    (otherwise wait a second), so a change made next is never made before it listens."""
    before = bus.subscribers if bus is not None else 0
    async with connect(f"ws://{address}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 5))
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
        for _ in range(200 if bus is not None else 40):
            if bus is not None and bus.subscribers > before:
                break
            await asyncio.sleep(0.025)
        yield Subscriber(ws)
