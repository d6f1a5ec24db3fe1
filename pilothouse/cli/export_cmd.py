"""``pilothouse events export``: every matching event of a hub, as CSV or JSON lines, to a file.

The hub streams the export (``GET /api/v1/events/export``); this command writes
it as it arrives, a megabyte at a time, so memory stays flat however large
the export. Written to ``--output``, the data goes to ``FILE.part`` first and
is renamed when complete: an interrupted export never leaves a file that looks
whole. On a terminal, stderr shows the progress (events, megabytes, rate); in
a pipe or a script it stays quiet.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

from pilothouse.agent.hublink.client import API, HubClient
from pilothouse.cli import remote

_FLUSH_BYTES = 1024 * 1024
_REDRAW_S = 0.2


def register(cmds: Any) -> None:
    """Add ``events export`` to the ``events`` command."""
    export = cmds.add_parser(
        "export",
        help="export events as CSV or JSON lines",
        description="Write every event matching the filters, newest first. CSV columns: id, "
        "time, prediction_environment_id, deployment_id, source, type, status, message, data.",
    )
    export.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    export.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    remote.add_event_filters(export)
    remote.add_connection_flags(export)
    export.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    params = remote.event_filters(args)
    params["format"] = args.format
    path = f"{API}/events/export?{urlencode(params)}"
    progress = _Progress(args.format) if sys.stderr.isatty() else None

    async def work(out: IO[bytes], hub: HubClient) -> int:
        async with hub.stream("GET", path) as resp:
            pending: list[bytes] = []
            size = 0
            async for chunk in resp.content.iter_any():
                pending.append(chunk)
                size += len(chunk)
                if progress is not None:
                    progress.add(chunk)
                if size >= _FLUSH_BYTES:
                    await asyncio.to_thread(out.write, b"".join(pending))
                    pending, size = [], 0
            await asyncio.to_thread(out.write, b"".join(pending))
        if progress is not None:
            progress.done()
        return 0

    with _sink(args.output) as out:
        return remote.run(args, functools.partial(work, out))


@contextlib.contextmanager
def _sink(output: Path | None) -> Iterator[IO[bytes]]:
    """stdout, or ``output`` written as ``output.part`` and renamed once complete."""
    if output is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    partial = output.with_name(output.name + ".part")
    with partial.open("wb") as out:
        try:
            yield out
        except BaseException:
            out.close()
            partial.unlink(missing_ok=True)
            raise
    os.replace(partial, output)


class _Progress:
    """A one-line progress display on stderr (a terminal)."""

    def __init__(self, fmt: str) -> None:
        self._lines = -1 if fmt == "csv" else 0  # the CSV header is not an event
        self._about = "~" if fmt == "csv" else ""  # a CSV message may hold a line break
        self._bytes = 0
        self._began = time.monotonic()
        self._drawn = 0.0

    def add(self, chunk: bytes) -> None:
        self._lines += chunk.count(b"\n")
        self._bytes += len(chunk)
        now = time.monotonic()
        if now - self._drawn >= _REDRAW_S:
            self._drawn = now
            self._draw("exporting", "")

    def done(self) -> None:
        self._draw("exported", "\n")

    def _draw(self, verb: str, end: str) -> None:
        took = max(time.monotonic() - self._began, 1e-6)
        events = max(self._lines, 0)
        line = (
            f"\r{verb} {self._about}{events:,} events, {self._bytes / 1e6:,.1f} MB in {took:.1f} s"
            f" ({events / took:,.0f} events/s)"
        )
        sys.stderr.write(line + "\x1b[K" + end)
        sys.stderr.flush()
