"""An export of 200,000 events streams: the hub process's memory stays flat while it runs.

The hub runs as its own process (``pilothouse hub run``) so its resident memory
can be read from ``/proc``, sampled every 20 ms during the export. The events
are written beforehand through the hub's store (one transaction, the ingest
code path without HTTP), which takes seconds instead of minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import orjson
import pytest

from pilothouse.foundation.domain.vocabulary import Source, Status
from pilothouse.hub.api.schemas import EventIn
from pilothouse.hub.settings import HubSettings
from pilothouse.hub.store.backends import open_store
from tests.hub.support import ADMIN, T0, V1, settings
from tests.process.support import free_port

pytestmark = pytest.mark.anyio

EVENTS = 200_000
MAX_GROWTH_MB = 40
"""Peak resident memory during the export, above what it was before. Holding the
export in memory would take well over this: its JSON lines alone are ~45 MB."""


async def test_exporting_200k_events_keeps_the_hub_memory_flat(
    tmp_path: Path, anyio_backend: str
) -> None:
    hub_settings = settings(tmp_path / "hub")
    await _store_events(hub_settings, EVENTS)
    async with _hub_process(hub_settings) as (url, pid):
        before = _rss_kb(pid)
        samples: list[int] = []
        stop = asyncio.Event()
        sampler = asyncio.create_task(_sample(pid, stop, samples))
        try:
            lines, size = await _export(url)
        finally:
            stop.set()
            await sampler
    growth_mb = (max(samples, default=before) - before) / 1024
    print(f"export of {lines:,} events ({size / 1e6:.0f} MB): hub VmRSS "
          f"{before / 1024:.0f} MB before, +{growth_mb:.1f} MB at its peak")  # fmt: skip
    assert lines == EVENTS
    assert size > MAX_GROWTH_MB * 1024 * 1024, "the export must outweigh the bound"
    assert len(samples) > 5, "sampled too rarely to see a peak"
    assert growth_mb <= MAX_GROWTH_MB, f"the hub grew by {growth_mb:.1f} MB during the export"


async def _store_events(hub_settings: HubSettings, count: int) -> None:
    """``count`` events of one PE, one second apart, written through the hub's store."""
    batch = [
        EventIn.model_construct(
            id=f"01J{i:023d}",  # time-ordered and valid, without paying for ULIDs
            time=T0 + timedelta(seconds=i),
            prediction_environment_id="pe-export",
            deployment_id=f"d{i % 50}",
            source=Source.AGENT,
            type="deployment.health_changed",
            status=Status.PASSING if i % 3 else Status.FAILING,
            message=f"d{i % 50} is passing: probe predicted 2 of 2 rows (round {i})",
            data={"round": i, "previous": "failing"},
        )
        for i in range(count)
    ]
    async with open_store(hub_settings, lambda _: None, lambda: None) as store:
        assert await store.add_events(batch) == count


@contextlib.asynccontextmanager
async def _hub_process(hub_settings: HubSettings) -> AsyncIterator[tuple[str, int]]:
    port = free_port()
    state, db_url = hub_settings.state_dir, hub_settings.database.url
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pilothouse", "hub", "run", "--port", str(port),
        "--state-dir", str(state), "--admin-token", ADMIN, "--log-level", "WARNING",
        *(["--database-url", db_url] if db_url else []),
        env=env, stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        await _until_ready(url)
        yield url, proc.pid
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-3000:]


async def _until_ready(url: str) -> None:
    async with asyncio.timeout(30), aiohttp.ClientSession() as http:
        while True:
            with contextlib.suppress(aiohttp.ClientConnectionError):
                async with http.get(f"{url}/readyz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.05)


async def _export(url: str) -> tuple[int, int]:
    """Read the whole JSON-lines export, keeping nothing; (lines, bytes)."""
    lines = size = 0
    last = b""
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with (
        aiohttp.ClientSession(url, headers=headers) as http,
        http.get(f"{V1}/events/export", params={"format": "jsonl"}) as resp,
    ):
        assert resp.status == 200, await resp.text()
        async for chunk in resp.content.iter_any():
            lines += chunk.count(b"\n")
            size += len(chunk)
            last = (last + chunk)[-4096:]
    oldest = orjson.loads(last.splitlines()[-1])
    assert oldest["id"] == f"01J{0:023d}", "newest first, down to the oldest"
    return lines, size


def _rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    (line,) = [ln for ln in status.splitlines() if ln.startswith("VmRSS:")]
    return int(line.split()[1])


async def _sample(pid: int, stop: asyncio.Event, samples: list[int]) -> None:
    while not stop.is_set():
        samples.append(_rss_kb(pid))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.02):
                await stop.wait()
