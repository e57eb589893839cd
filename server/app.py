"""The ASGI application: the process's services, and the routes and middleware around the
GraphQL endpoint (`server.graphql_view`), assembled once per worker."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute

from config import metrics, tracing
from config.settings import Settings, load_settings
from models.appender import appender_for
from models.database import is_sqlite, pooled_engine, session_factory
from models.revision import RevisionClock
from notifications.bus import change_bus
from notifications.channels import consumers
from notifications.dispatcher import Dispatcher
from notifications.scheduler import Scheduler
from permissions.dev_keys import load_or_create_dev_key
from permissions.signin_sessions import SignInFlows, SignInSessions
from permissions.ssc_access import AccessLog
from permissions.tokens import verifier_for
from resolvers.reads.snapshot import SnapshotCache
from resolvers.writes.unit_of_work import UnitOfWork
from schema.build import build_schema
from schema.context import Services
from schema.rate_limit import RateLimit
from schema.response_cache import PersistedQueries, ResponseCache
from schema.subscriptions import SharedEvents, SubscriptionBudget
from server.body_limit import BodyLimit
from server.cors import cors
from server.fleet_file import FleetPlanCsv
from server.fleet_upload import FleetUpload
from server.graphiql import GraphiQLPage
from server.graphql_view import GraphQLApp
from server.probes import livez, metrics_page, readyz
from server.requests import RequestLog
from server.signin import SignIn

logger = logging.getLogger("cpl_pathways")


def etag_key(settings: Settings) -> bytes:
    """What keys the ETags (`schema.response_cache`): derived (HMAC, labelled) from a secret the
    processes serving one database already share, so that they tag one answer alike and
    `If-None-Match` holds behind a load balancer, while a client, who holds none of it, can work
    out nothing from a tag. `CPL_SESSION_SECRET`, else the development issuer's signing key in
    the data directory (which its processes share to accept each other's tokens), else a key
    of this process's own: safe, but then a tag is confirmed only by the process that made it."""
    if settings.session_secret:
        shared = settings.session_secret.encode()
    elif settings.dev_issuer:
        shared = load_or_create_dev_key(settings.dev_key_path).as_pem(private=True)
    else:
        if settings.production:
            logger.warning(
                "CPL_SESSION_SECRET is not set: ETags are this process's own, so If-None-Match "
                "is confirmed only by the process that answered"
            )
        return secrets.token_bytes(32)
    return hmac.new(shared, b"cpl-pathways etag", hashlib.sha256).digest()


def create_services(settings: Settings) -> Services:
    """The process's services. Their connections: the requests' pool on `CPL_DATABASE_URL`
    (maybe a transaction pooler: `pooled_engine`), which every read, write, the dispatcher
    and sign-in use, and the access log's own connection there (`models.appender`); and two
    of their own on `CPL_DATABASE_DIRECT_URL`, the change listener's and the revision
    reader's, which hold a session (README: Behind a pooler)."""
    pool = {}
    if not is_sqlite(settings.database_url):
        pool = {"pool_size": settings.db_pool_size, "max_overflow": settings.db_max_overflow}
    engine = pooled_engine(settings, **pool)
    metrics.watch_pool(engine)
    db_sessions = session_factory(engine)
    revision = RevisionClock(
        engine, settings.revision_max_age_seconds, direct_url=settings.direct_url
    )
    bus = change_bus(
        settings.direct_url,
        db_sessions,
        settings.listener_retry_seconds,
        settings.listener_retry_max_seconds,
    )
    bus.watch(revision.invalidate)
    dispatcher = Dispatcher(db_sessions, settings)
    writes = UnitOfWork(db_sessions, consumers(bus, dispatcher.wake), revision)
    return Services(
        settings=settings,
        engine=engine,
        db_sessions=db_sessions,
        verifier=verifier_for(settings),
        bus=bus,
        dispatcher=dispatcher,
        responses=ResponseCache(settings.response_cache_bytes, etag_key(settings)),
        revision=revision,
        snapshots=SnapshotCache(engine, revision),
        persisted_queries=PersistedQueries(settings.persisted_queries_bytes),
        signin_sessions=SignInSessions(db_sessions, settings.session_ttl_seconds),
        access_log=AccessLog(appender_for(engine)),
        writes=writes,
        rate_limit=RateLimit(settings.rate_limit_per_second, settings.rate_limit_burst),
        subscriptions=SubscriptionBudget(settings),
        events=SharedEvents(db_sessions),
        scheduler=Scheduler(
            writes, db_sessions, settings.scheduler_poll_seconds, settings.digest_hour_utc
        ),
    )


FLEET_FILE_PATH = "/fleet-plan.csv"
STREAMED_PATHS = frozenset({FLEET_FILE_PATH})  # not `PUT /fleet`: its body has the usual bound


def fleet_file_routes(services: Services) -> list[Route]:
    """`POST /fleet-plan.csv` (server.fleet_file) and `PUT /fleet` (server.fleet_upload)."""
    return [
        Route(FLEET_FILE_PATH, FleetPlanCsv(services), methods=["POST"]),
        Route("/fleet", FleetUpload(services), methods=["PUT"]),
    ]


def create_app(settings: Settings | None = None, services: Services | None = None) -> Starlette:
    settings = settings or load_settings()
    services = services or create_services(settings)
    signin = SignIn(settings, services.signin_sessions, SignInFlows(services.db_sessions))
    page = GraphiQLPage()
    graphql = GraphQLApp(build_schema(settings), services, signin, page)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await services.bus.start()
        services.dispatcher.start()
        services.scheduler.start()
        try:
            yield
        finally:
            await services.scheduler.stop()
            await services.dispatcher.stop()
            await services.events.drain()
            await services.access_log.close()
            await services.bus.stop()
            services.revision.close()
            await services.engine.dispose()
            metrics.process_ended(os.getpid())
            tracing.shutdown()

    app = Starlette(
        routes=[  # the endpoint first: Starlette tries each route in turn, on every request
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),
            Route("/livez", livez, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/healthz", readyz, methods=["GET"]),
            Route("/metrics", metrics_page, methods=["GET"]),
            Route("/graphiql/{name}", page.asset, methods=["GET"]),
            *signin.routes(),
            *fleet_file_routes(services),
        ],
        middleware=[
            Middleware(RequestLog),
            *cors(settings),
            Middleware(BodyLimit, settings=settings, streamed=STREAMED_PATHS),
        ],
        lifespan=lifespan,
    )
    app.state.services = services
    return app
