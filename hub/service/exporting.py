"""Streaming an export of events: memory stays flat however many events match.

The export is a sequence of chunks, each one read transaction on a scanner
thread (:meth:`~pilothouse.hub.store.interface.Store.scan_events`) that renders
``CHUNK_ROWS`` events as CSV or JSON lines, newest first, starting strictly
after the last event of the chunk before (keyset pagination in the event
list's order). While the handler writes one chunk to the client — awaiting the
socket, which is the backpressure — the next chunk is already being read:
one read-ahead task, owned here and cancelled if the client goes away. At most
two chunks are in memory at a time.

The first chunk is read before anything is sent, so a bad query (an
unsearchable ``q``) is still answered 422; a failure later can only cut the
response short (the chunked transfer then lacks its last chunk, which every
HTTP client reports).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from pilothouse.foundation.aio.tasks import cancel_and_wait
from pilothouse.hub.api.schemas import EventExportQuery, ExportFormat
from pilothouse.hub.service import events
from pilothouse.hub.store.interface import Store
from pilothouse.hub.store.records import EXPORT_COLUMNS, Cursor, ExportChunk
from pilothouse.hub.telemetry import HubMetrics

CHUNK_ROWS = 4096


class Exports:
    """Events as CSV or JSON lines, a chunk at a time."""

    def __init__(self, store: Store, metrics: HubMetrics, chunk_rows: int | None = None) -> None:
        self._store = store
        self._metrics = metrics
        self._chunk_rows = chunk_rows

    async def stream(self, query: EventExportQuery) -> AsyncGenerator[bytes, None]:
        """The export's bytes: the header with the first chunk, then each further chunk."""
        chunk = await self._read(query, None)
        data = header(query.format) + chunk.data
        while True:
            self._metrics.events_exported.inc(chunk.count)
            ahead = None
            if chunk.last is not None:
                ahead = asyncio.create_task(self._read(query, chunk.last), name="export read-ahead")
            try:
                yield data  # the client is sent this chunk while the next one is read
                if ahead is None:
                    return
                chunk = await ahead
            finally:
                if ahead is not None and not ahead.done():
                    await cancel_and_wait(ahead)
                elif ahead is not None and not ahead.cancelled():
                    ahead.exception()  # a failure nobody waits for any more: dropped, not warned
            data = chunk.data

    async def _read(self, query: EventExportQuery, after: Cursor | None) -> ExportChunk:
        rows = self._chunk_rows or CHUNK_ROWS
        return await self._store.scan_events(events.filter_of(query, rows, after), query.format)


def header(fmt: ExportFormat) -> bytes:
    """What an export starts with: the CSV header line (JSON lines have none)."""
    return (",".join(EXPORT_COLUMNS) + "\n").encode() if fmt is ExportFormat.CSV else b""
