"""Probes and metrics for whatever runs the processes (Kubernetes, compose, a load balancer).

`/livez` asks only whether the process serves: a database outage must not get every pod
restarted. `/readyz` asks whether it can answer GraphQL now: the database answers, its schema
is at the newest migration, and on PostgreSQL the change listener is connected (without it
subscribers of this process would miss changes). `/healthz` is kept, as `/readyz`.

An outage is expected weather, not a bug: while the database is down each probe writes one
warning line, never a traceback.
"""

from __future__ import annotations

import logging

from sqlalchemy import func
from sqlmodel import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from config import metrics
from models.database import describe_outage, is_outage, newest_revision, schema_revision
from models.tables import WebhookDelivery, WebhookStatus
from schema.context import Services

logger = logging.getLogger("cpl_pathways.probes")


async def livez(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    reason = await _not_ready(request.app.state.services)
    if reason is not None:
        return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
    return JSONResponse({"status": "ok"})


async def _not_ready(services: Services) -> str | None:
    try:
        async with services.engine.connect() as connection:
            revision = await schema_revision(connection)
    except Exception as error:
        if not is_outage(error):
            raise
        logger.warning("not ready: the database is unavailable (%s)", describe_outage(error))
        return "database unavailable"
    if revision != newest_revision():
        logger.warning("not ready: database at migration %s, not %s", revision, newest_revision())
        return "database not at the newest migration"
    if not services.bus.connected:
        logger.warning("not ready: the change listener is not connected")
        return "change listener not connected"
    return None


async def metrics_page(request: Request) -> Response:
    """Prometheus text; the outbox depth is read from the database at each scrape (and left
    out, with one warning line, while the database is down)."""
    services: Services = request.app.state.services
    snapshot = []
    try:
        async with services.db_sessions() as session:
            pending = await session.exec(
                select(func.count()).where(WebhookDelivery.status == WebhookStatus.PENDING)
            )
            snapshot.append(metrics.outbox_depth(pending.one()))
    except Exception as error:
        if not is_outage(error):
            raise
        logger.warning("metrics: outbox depth unavailable (%s)", describe_outage(error))
    return Response(metrics.exposition(snapshot), media_type=metrics.CONTENT_TYPE)
