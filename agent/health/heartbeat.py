"""The heartbeat: proof of life, every ``heartbeat_interval_s``.

In standalone mode the heartbeat is a small JSON file in the state directory,
replaced atomically, which a process manager or a person can read; the hub
intake adds a heartbeat to the hub. Heartbeats are not events: events are for
changes, and a heartbeat only says that nothing stopped.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

Beat = Callable[[Mapping[str, Any]], Awaitable[None]]


def file_beat(path: Path) -> Beat:
    """A heartbeat that writes ``path`` atomically (write a temporary file, rename)."""

    def write(payload: bytes) -> None:
        tmp = path.with_suffix(".tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(payload)
        os.replace(tmp, path)

    async def beat(status: Mapping[str, Any]) -> None:
        await asyncio.to_thread(write, orjson.dumps(dict(status), option=orjson.OPT_INDENT_2))

    return beat


async def run_heartbeat(
    started: Callable[[], None],
    interval_s: float,
    status: Callable[[], Mapping[str, Any]],
    beats: list[Beat],
) -> None:
    """Send a heartbeat with ``status()`` now and every ``interval_s`` until cancelled."""
    started()
    while True:
        payload = {"time": datetime.now(UTC).isoformat().replace("+00:00", "Z"), **status()}
        for beat in beats:
            await beat(payload)
        await asyncio.sleep(interval_s)
