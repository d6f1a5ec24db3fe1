"""Prediction statistics: the agent's upload, the series, actuals; rollback and promotion."""

from __future__ import annotations

from aiohttp import web

from pilothouse.foundation.domain.monitoring import StatsBatch
from pilothouse.hub.api import bodies, keys
from pilothouse.hub.api.schemas import (
    ActualsUpload,
    MonitoringQuery,
    PromoteRequest,
    RollbackRequest,
)


async def ingest(request: web.Request) -> web.Response:
    """Store a batch of statistics windows (idempotent by window id)."""
    limit = request.app[keys.SETTINGS].monitoring.max_batch_bytes
    batch = await bodies.parse_large(request, StatsBatch, limit)
    result = await bodies.services(request).ingest.ingest(batch, bodies.principal(request))
    return bodies.respond(result)


async def series(request: web.Request) -> web.Response:
    """The deployment's statistics over a span, step by step."""
    query = bodies.query(request, MonitoringQuery)
    found = await bodies.services(request).statistics.series(request.match_info["id"], query)
    return bodies.respond(found)


async def actuals(request: web.Request) -> web.Response:
    """Join actuals to the predictions the deployment made."""
    body = await bodies.parse(request, ActualsUpload)
    statistics = bodies.services(request).statistics
    return bodies.respond(await statistics.record_actuals(request.match_info["id"], body))


async def rollback(request: web.Request) -> web.Response:
    """Record a rollback in the desired state (the agent's, or the admin's)."""
    body = await bodies.parse(request, RollbackRequest)
    deployments = bodies.services(request).deployments
    done = await deployments.rollback(request.match_info["id"], body, bodies.principal(request))
    return bodies.respond(done)


async def promote(request: web.Request) -> web.Response:
    """Make a challenger the champion."""
    body = await bodies.parse(request, PromoteRequest)
    deployments = bodies.services(request).deployments
    return bodies.respond(await deployments.promote(request.match_info["id"], body))
