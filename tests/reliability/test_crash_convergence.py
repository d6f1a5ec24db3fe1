"""Crash convergence: an agent SIGKILLed at random moments still converges, every time.

A real agent process (hub mode, simulated plugin with delays, its
infrastructure in a state file written at every change so that what "runs"
survives the agent) against a real hub on 127.0.0.1. Each round sends random
launch / replace_model / stop / relaunch actions to random deployments, kills
the agent with SIGKILL at a random moment while they are being carried out,
starts it again, and requires every deployment's observed state at the hub to
equal its desired state at the desired generation within 30 s — and what runs
to be what is desired. At the end, no event id reached the hub twice.

Everything random is drawn from one seeded generator (``PILOTHOUSE_CRASH_SEED``
to try another seed). The figures are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import statistics
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.hub.support import V1, Running, ok, package_bytes, upload
from tests.hub.support import running as hub_running
from tests.hub.support import settings as hub_settings

pytestmark = pytest.mark.anyio

SEED = int(os.environ.get("PILOTHOUSE_CRASH_SEED", "9"))
KILLS = 20
DEPLOYMENTS = 12
CONVERGE_S = 30.0
ACTIONS = ("launch", "replace_model", "stop", "relaunch")


@dataclass
class Figures:
    """What the test did and measured."""

    kills: int = 0
    actions: int = 0
    in_flight_at_kill: int = 0
    """Deployments the hub saw mid-action (launching, replacing, shutting down) at a kill."""
    converge_s: list[float] = field(default_factory=list)
    """From the restart (a new process, so Python's start-up included) to converged."""

    def line(self) -> str:
        return (
            f"crash convergence (seed {SEED}): {self.kills} SIGKILLs, {self.actions} actions "
            f"over {DEPLOYMENTS} deployments, {self.in_flight_at_kill} deployments mid-action "
            f"at a kill; converged after each restart in "
            f"{', '.join(f'{t:.1f}' for t in self.converge_s)} s "
            f"(median {statistics.median(self.converge_s):.1f} s, "
            f"max {max(self.converge_s):.1f} s)"
        )


def _config(tmp: Path, url: str, pe: str, token: str) -> Path:
    path = tmp / "agent.yaml"
    path.write_text(yaml.safe_dump({
        "prediction_environment": pe, "plugin": "test", "state_dir": str(tmp / "agent"),
        "plugin_settings": {
            "seed": SEED, "state_file": str(tmp / "infrastructure.json"), "write_through": True,
            "delays": {"launch_s": 0.1, "replace_model_s": 0.1, "stop_s": 0.05, "jitter_s": 0.3},
        },
        "hub": {"url": url, "token": token, "poll_interval_s": 0.5, "reconnect_backoff_max_s": 0.5},
        "actions": {"backoff_initial_s": 0.05, "backoff_max_s": 1.0, "errored_retry_s": 0.2},
        "health": {"interval_s": 2.0, "heartbeat_interval_s": 1.0},
        "shutdown": {"grace_period_s": 5.0},
        "log": {"level": "WARNING"},
    }))  # fmt: skip
    return path


@contextlib.asynccontextmanager
async def _agents(config: Path, log: Path) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """Agent processes started during the block; any still running at its end is killed."""
    started: list[asyncio.subprocess.Process] = []
    try:
        yield started
    finally:
        for proc in started:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()


async def _spawn(config: Path, log: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
    with log.open("ab") as err:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pilothouse", "agent", "run", "--config", str(config),
            env=env, stdin=asyncio.subprocess.DEVNULL, stdout=err, stderr=err,
        )  # fmt: skip


async def _deployments(hub: Running, pe: str) -> list[dict[str, Any]]:
    params = {"prediction_environment_id": pe, "limit": "1000"}
    page = await ok(hub.admin.get(f"{V1}/deployments", params=params))
    items: list[dict[str, Any]] = page["items"]
    return items


def _divergence(
    deployments: list[dict[str, Any]], running: dict[str, str], since: datetime
) -> list[str]:
    """How each deployment differs from its desired state, at the hub and in what runs.

    The observed state must come from the agent started at ``since``: every
    decision of a new agent, "unchanged" included, is reported.
    """
    wrong: list[str] = []
    for dep in deployments:
        desired, observed = dep["desired"], dep["observed"]
        updated = observed["updated_at"]
        if updated is None or datetime.fromisoformat(updated) < since:
            wrong.append(f"{dep['id']}: not reported since the restart ({updated})")
        launched = desired["state"] == "launched"
        want = (
            "ready" if launched else "stopped",
            desired["generation"],
            desired["model_package_id"] if launched else None,
        )
        got = (
            observed["state"],
            observed["generation"],
            observed["model_package_id"] if launched else None,
        )
        if got != want:
            wrong.append(f"{dep['id']}: observed {got}, desired {want}")
        runs = running.get(dep["id"])
        if runs != (desired["model_package_id"] if launched else None):
            wrong.append(f"{dep['id']}: runs {runs}, desired {desired['state']}")
    return wrong


def _running(state_file: Path) -> dict[str, str]:
    if not state_file.exists():
        return {}
    data: dict[str, list[Any]] = orjson.loads(state_file.read_bytes())
    return {dep_id: sim[0] for dep_id, sim in data.items()}


async def _converged(
    hub: Running, pe: str, state_file: Path, since: datetime, timeout: float
) -> float:
    """Seconds until every deployment converged, as reported by the agent started at ``since``."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    wrong: list[str] = []
    while loop.time() - began < timeout:
        deployments = await _deployments(hub, pe)
        wrong = _divergence(deployments, await asyncio.to_thread(_running, state_file), since)
        if not wrong:
            return loop.time() - began
        await asyncio.sleep(0.05)
    raise AssertionError(f"not converged within {timeout:g}s:\n" + "\n".join(wrong))


async def _act(hub: Running, rng: random.Random, dep: str, packages: list[str]) -> None:
    action = rng.choice(ACTIONS)
    body: dict[str, Any] = {"action": action}
    if action == "replace_model":
        body["model_package_id"] = rng.choice(packages)
    await ok(hub.admin.post(f"{V1}/deployments/{dep}/actions", json=body))


async def _all_events(hub: Running, pe: str) -> list[dict[str, Any]]:
    params = {"prediction_environment_id": pe, "limit": "1000"}
    items: list[dict[str, Any]] = []
    while True:
        page = await ok(hub.admin.get(f"{V1}/events", params=params))
        items.extend(page["items"])
        if not page["next_cursor"]:
            return items
        params["cursor"] = page["next_cursor"]


async def test_sigkilled_agent_converges_after_every_restart(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    figures = Figures()
    log = tmp_path / "agent.log"
    state_file = tmp_path / "infrastructure.json"
    async with hub_running(hub_settings(tmp_path / "hub")) as hub:
        pe = (await hub.pe("crashy"))["id"]
        token = await ok(hub.admin.post(f"{V1}/prediction-environments/{pe}/agent-tokens"), 201)
        packages = [
            (await ok(upload(hub.admin, package_bytes("iris", str(v))), 201))["id"]
            for v in range(3)
        ]
        deps = [
            (await hub.deployment(pe, rng.choice(packages), name=f"dep-{i}"))["id"]
            for i in range(DEPLOYMENTS)
        ]
        config = _config(tmp_path, hub.url, pe, token["token"])
        async with _agents(config, log) as started:
            since = datetime.now(UTC)
            started.append(await _spawn(config, log))
            await _converged(hub, pe, state_file, since, CONVERGE_S)
            for _ in range(KILLS):
                for _ in range(rng.randint(3, 10)):
                    await _act(hub, rng, rng.choice(deps), packages)
                    figures.actions += 1
                    await asyncio.sleep(rng.uniform(0, 0.1))
                await asyncio.sleep(rng.uniform(0, 0.4))
                seen = await _deployments(hub, pe)
                started[-1].send_signal(signal.SIGKILL)
                await started[-1].wait()
                figures.kills += 1
                figures.in_flight_at_kill += sum(
                    d["observed"]["state"] in ("launching", "replacing_model", "shutting_down")
                    for d in seen
                )
                since = datetime.now(UTC)
                started.append(await _spawn(config, log))
                took = await _converged(hub, pe, state_file, since, CONVERGE_S)
                figures.converge_s.append(took)
            assert started[-1].returncode is None, log.read_text()[-3000:]
            started[-1].send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(started[-1].wait(), 30) == 0
        events = await _all_events(hub, pe)
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids)), "an event id reached the hub twice"
    agent_events = [e for e in events if e["source"] == "agent"]
    assert sum(e["type"] == "agent.reconciled" for e in agent_events) == KILLS + 1
    print(figures.line())
    assert figures.kills >= 20 and DEPLOYMENTS >= 10
    assert figures.in_flight_at_kill > 0, "no kill caught an action in flight"
    assert max(figures.converge_s) < CONVERGE_S
