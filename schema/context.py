"""What lives as long as the process (`Services`) and what every resolver gets (`Context`):
who is asking, the request's session and its DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.websockets import WebSocket

from models.database import RequestSession, RevisionClock
from permissions.principal import Principal
from permissions.tokens import TokenVerifier
from resolvers.bus import ChangeBus
from resolvers.loaders import Loaders
from resolvers.planning import GraphCache
from resolvers.webhooks import Dispatcher
from schema.response_cache import PersistedQueries, ResponseCache
from settings import Settings


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    verifier: TokenVerifier
    bus: ChangeBus
    dispatcher: Dispatcher
    graphs: GraphCache
    responses: ResponseCache
    revision: RevisionClock
    persisted_queries: PersistedQueries

    def write_session(self) -> AsyncSession:
        """A session for one mutation; the bus rides along for `resolvers.mutations.record`."""
        session = self.sessions()
        session.info["cpl.bus"] = self.bus
        return session

    def committed(self, event_ids: list[int]) -> None:
        """After a commit: answers are read afresh, subscribers told, the dispatcher woken."""
        self.revision.invalidate()
        if event_ids:
            self.bus.after_commit(event_ids)
            self.dispatcher.wake()


@dataclass
class Context:
    principal: Principal | None
    services: Services
    connection_params: dict[str, Any] | None = None  # set by graphql-transport-ws
    websocket: WebSocket | None = None  # the socket a subscription's context belongs to
    operations: int = 0
    db: RequestSession = field(init=False)
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.db = RequestSession(self.services.sessions)
        self.loaders = Loaders(self.db, self.services.graphs)

    async def begin_operation(self) -> None:
        """Called as each operation starts: the first uses what __post_init__ made."""
        if self.operations:
            await self.refresh()
        self.operations += 1

    async def refresh(self) -> None:
        """Start afresh between the events of a long-lived subscription: give the connection
        back and forget cached rows, so each event is read as it is now."""
        await self.db.close()
        self.loaders = Loaders(self.db, self.services.graphs)

    async def close(self) -> None:
        await self.db.close()
