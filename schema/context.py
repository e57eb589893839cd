"""What every resolver gets: who is asking, the request's session and its DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from models.database import RequestSession
from permissions.principal import Principal
from resolvers.loaders import Loaders


@dataclass
class Context:
    principal: Principal
    sessions: async_sessionmaker[AsyncSession]
    db: RequestSession = field(init=False)
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.db = RequestSession(self.sessions)
        self.loaders = Loaders(self.db)

    async def close(self) -> None:
        await self.db.close()
