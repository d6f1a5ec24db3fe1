"""A hub SIGKILLed while it ingests events: its database stays whole, no acknowledged event is lost.

A real hub process on 127.0.0.1 takes event batches from several writers at
once (as agents post them); it is killed with SIGKILL at random moments
(seeded) and started again on the same database. After each kill the database
passes ``PRAGMA integrity_check``, and at the end every event of every batch
the hub acknowledged is stored, exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pilothouse.foundation.domain.events import new_id
from tests.hub.support import ADMIN, V1
from tests.process.support import free_port

pytestmark = pytest.mark.anyio

SEED = int(os.environ.get("PILOTHOUSE_CRASH_SEED", "9"))
KILLS = 5
WRITERS = 4
BATCH = 50


@contextlib.asynccontextmanager
async def hubs(
    state: Path, port: int, log: Path
) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """Hub processes started during the block; any still running at its end is killed."""
    started: list[asyncio.subprocess.Process] = []
    try:
        yield started
    finally:
        for proc in started:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()


async def start_hub(state: Path, port: int, log: Path) -> asyncio.subprocess.Process:
    """``pilothouse hub run`` on ``state``, listening on ``port``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
    with log.open("ab") as err:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pilothouse", "hub", "run", "--state-dir", str(state),
            "--host", "127.0.0.1", "--port", str(port), "--admin-token", ADMIN,
            "--log-level", "WARNING", env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=err, stderr=err,
        )  # fmt: skip


async def until_up(http: aiohttp.ClientSession, proc: asyncio.subprocess.Process) -> None:
    for _ in range(600):
        assert proc.returncode is None, "the hub exited at start"
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"{V1}/prediction-environments") as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.05)
    raise AssertionError("the hub did not come up")


def batch(pe: str, writer: int, n: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    return [
        {
            "id": new_id(), "time": now, "prediction_environment_id": pe,
            "deployment_id": None, "source": "agent", "type": "test.ingested",
            "status": "informational", "message": f"writer {writer} batch {n}",
            "data": {"writer": writer, "batch": n},
        }
        for _ in range(BATCH)
    ]  # fmt: skip


async def writer(
    url: str, token: str, pe: str, index: int, acknowledged: list[str], stop: asyncio.Event
) -> int:
    """Post batches until ``stop``; record the ids of every batch the hub acknowledged."""
    posted = 0
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(url, headers=headers, timeout=timeout) as http:
        while not stop.is_set():
            events = batch(pe, index, posted)
            posted += 1
            try:
                async with http.post(f"{V1}/events", json={"events": events}) as resp:
                    if resp.status == 200:
                        acknowledged.extend(e["id"] for e in events)
                        continue
            except (aiohttp.ClientError, TimeoutError):
                pass  # the hub is down (killed): this batch was not acknowledged
            await asyncio.sleep(0.02)
    return posted


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as db:
        (result,) = db.execute("PRAGMA integrity_check").fetchone()
    return str(result)


def stored_ids(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT id FROM events")]


async def test_acknowledged_events_survive_hub_sigkills(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    state, port, log = tmp_path / "hub", free_port(), tmp_path / "hub.log"
    url = f"http://127.0.0.1:{port}"
    admin = aiohttp.ClientSession(url, headers={"Authorization": f"Bearer {ADMIN}"})
    acknowledged: list[str] = []
    stop = asyncio.Event()
    checks: list[str] = []
    writers: list[asyncio.Task[int]] = []
    posted = 0
    try:
        async with hubs(state, port, log) as started:
            started.append(await start_hub(state, port, log))
            await until_up(admin, started[-1])
            async with admin.post(f"{V1}/prediction-environments",
                                  json={"name": "ingest", "platform": "test"}) as resp:  # fmt: skip
                pe = (await resp.json())["id"]
            async with admin.post(f"{V1}/prediction-environments/{pe}/agent-tokens") as resp:
                token = (await resp.json())["token"]
            writers.extend(
                asyncio.create_task(writer(url, token, pe, i, acknowledged, stop))
                for i in range(WRITERS)
            )
            for _ in range(KILLS):
                await asyncio.sleep(rng.uniform(0.3, 1.2))
                started[-1].send_signal(signal.SIGKILL)
                await started[-1].wait()
                checks.append(await asyncio.to_thread(integrity, state / "hub.db"))
                started.append(await start_hub(state, port, log))
                await until_up(admin, started[-1])
            await asyncio.sleep(0.5)  # the writers post to the last hub too
            stop.set()
            posted = sum(await asyncio.gather(*writers))
            started[-1].send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(started[-1].wait(), 30) == 0
    finally:
        stop.set()
        await asyncio.gather(*writers, return_exceptions=True)
        await admin.close()
    assert checks == ["ok"] * KILLS
    assert await asyncio.to_thread(integrity, state / "hub.db") == "ok"
    stored = await asyncio.to_thread(stored_ids, state / "hub.db")
    assert len(stored) == len(set(stored))
    missing = set(acknowledged) - set(stored)
    assert not missing, f"{len(missing)} acknowledged events lost"
    print(
        f"hub crash ingest (seed {SEED}): {KILLS} SIGKILLs during ingest by {WRITERS} writers, "
        f"{posted} batches posted, {len(acknowledged)} events acknowledged, all stored; "
        f"integrity_check ok after every kill"
    )
