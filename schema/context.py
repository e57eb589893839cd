"""What lives as long as the process (`Services`) and what every resolver gets (`Context`):
who is asking, the request's session and its DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket

from config.settings import Settings
from models.database import RequestSession
from models.revision import RevisionClock
from notifications.bus import ChangeBus
from notifications.dispatcher import Dispatcher
from notifications.scheduler import Scheduler
from permissions.policy import capability
from permissions.principal import Principal
from permissions.signin_sessions import SignInSessions
from permissions.ssc_access import AccessLog, SscReads, log_reads
from permissions.tokens import TokenVerifier
from resolvers.reads.loaders import Loaders
from resolvers.reads.snapshot import SnapshotCache
from resolvers.writes.unit_of_work import UnitOfWork
from schema.rate_limit import RateLimit
from schema.response_cache import PersistedQueries, ResponseCache
from schema.subscriptions import SharedEvents, SubscriptionBudget


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    db_sessions: async_sessionmaker[AsyncSession]
    verifier: TokenVerifier
    bus: ChangeBus
    dispatcher: Dispatcher
    responses: ResponseCache
    revision: RevisionClock
    snapshots: SnapshotCache
    persisted_queries: PersistedQueries
    signin_sessions: SignInSessions
    access_log: AccessLog
    writes: UnitOfWork
    rate_limit: RateLimit
    subscriptions: SubscriptionBudget
    events: SharedEvents
    scheduler: Scheduler


class _NoCaller:
    """The loaders of a context whose caller is not known yet: any read is refused."""

    def __getattr__(self, name: str) -> Any:
        raise PermissionError("no caller: the CPL is read only through a caller's view")


NO_CALLER: Any = _NoCaller()


@dataclass
class Context:
    principal: Principal | None
    services: Services
    connection_params: dict[str, Any] | None = None  # set by graphql-transport-ws
    request: HTTPConnection | None = None  # a WebSocket signs in by its cookie and Origin
    event_group: tuple[Any, ...] | None = None  # a subscription's (`schema.subscriptions`)
    db: RequestSession = field(init=False)
    loaders: Loaders = field(init=False)
    ssc_reads: SscReads = field(init=False, default_factory=SscReads)
    fleet_impacts: Any = field(init=False, default=None)  # `schema.notifications.own_impact`'s

    def __post_init__(self) -> None:
        self.db = RequestSession(self.services.db_sessions)
        self.forget_reads()

    def sign_in(self, principal: Principal) -> None:
        """The caller of a socket, known once its `connection_init` is: reads from now on go
        through its capability's view."""
        self.principal = principal
        self.forget_reads()

    @property
    def socket(self) -> bool:
        """A WebSocket's context, which its operations share: each works in a `fork`."""
        return isinstance(self.request, WebSocket)

    def fork(self) -> Context:
        """The same caller with a session, loaders and reads of its own: a socket's operations
        run at once, and one ending (closing its session) must not close another's."""
        return Context(self.principal, self.services, self.connection_params, self.request)

    def forget_reads(self) -> None:
        """Loaders afresh (also after this request's own write: what it reads next is read as
        it is now), reading the CPL through the view of the caller's capability. A socket's
        context is made before its caller is known (`connection_init` names it): until then it
        has no loaders at all, so nothing can be read without a caller's view."""
        if self.principal is None:
            self.loaders = NO_CALLER
            return
        granted = capability(self.principal.party_category)
        self.loaders = Loaders(self.db, self.services.snapshots, granted)

    async def close(self) -> None:
        await self.db.close()
        await log_reads(self)
