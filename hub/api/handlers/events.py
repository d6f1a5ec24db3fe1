"""``/api/v1/events``: batch ingest (idempotent by id), filtered searchable pages, export."""

from __future__ import annotations

import contextlib
import logging

from aiohttp import web

from pilothouse.hub import clock
from pilothouse.hub.api import bodies
from pilothouse.hub.api.schemas import EventBatch, EventExportQuery, EventQuery, ExportFormat

log = logging.getLogger("pilothouse.hub.api")

EXPORT_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.JSONL: "application/x-ndjson",
}


async def ingest(request: web.Request) -> web.Response:
    """Store a batch of events; a retried batch adds nothing twice."""
    batch = await bodies.parse(request, EventBatch)
    result = await bodies.services(request).events.ingest(batch, bodies.principal(request))
    return bodies.respond(result)


async def page(request: web.Request) -> web.Response:
    """Events matching the filters, newest first, a page at a time."""
    query = bodies.query(request, EventQuery)
    return bodies.respond(await bodies.services(request).events.page(query))


async def export(request: web.Request) -> web.StreamResponse:
    """Every event matching the filters, newest first, as CSV or JSON lines, streamed.

    Columns, in order: ``id, time, prediction_environment_id, deployment_id,
    source, type, status, message, data`` (``data`` as compact JSON; times RFC
    3339 UTC). A JSON line is the event exactly as ``GET /events`` shows it.
    """
    query = bodies.query(request, EventExportQuery)
    stream = bodies.services(request).exports.stream(query)
    async with contextlib.aclosing(stream) as chunks:
        first = await anext(chunks)  # a bad query fails here, before anything is sent
        response = web.StreamResponse(headers=_export_headers(query.format))
        await response.prepare(request)
        try:
            await response.write(first)
            async for chunk in chunks:
                await response.write(chunk)
            await response.write_eof()
        except ConnectionError:  # reset, broken pipe, or "Connection lost" while draining
            log.info("export ended early: the client went away")
    return response


def _export_headers(fmt: ExportFormat) -> dict[str, str]:
    stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
    return {
        "Content-Type": EXPORT_TYPES[fmt],
        "Content-Disposition": f'attachment; filename="events-{stamp}.{fmt.value}"',
        "Cache-Control": "no-store",
    }
