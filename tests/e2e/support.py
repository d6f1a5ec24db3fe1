"""Shared pieces of the end-to-end tests: desired-state files, simulated plugins, events."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import yaml
from helpers import eventually

from pilothouse.agent.plugin import PluginContext
from pilothouse.agent.runtime import Agent
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.plugins.simulated.plugin import SimulatedPlugin
from pilothouse.plugins.simulated.plugin import SimulatedPluginSettings as SimSettings

TIMEOUT = 20.0
"""Generous: these tests run on loaded two-core CI machines."""

EVENT_FIELDS = {
    "id",
    "time",
    "prediction_environment_id",
    "deployment_id",
    "source",
    "type",
    "status",
    "message",
    "data",
}

_last_mtime = 0


def deployment(dep_id: str, model: str, **extra: Any) -> dict[str, Any]:
    """One deployment of a desired-state document."""
    return {"id": dep_id, "model_package_id": model, **extra}


def write_state(path: Path, deployments: list[dict[str, Any]], **top: Any) -> None:
    """Write a desired-state document (JSON for ``.json``, else YAML)."""
    doc = {**top, "deployments": deployments}
    text = orjson.dumps(doc) if path.suffix == ".json" else yaml.safe_dump(doc).encode()
    write_raw(path, text)


def write_raw(path: Path, content: bytes | str) -> None:
    """Replace ``path``'s content and give it an mtime no earlier write had.

    The intake notices a change by (mtime, size, inode); file-system timestamps
    are coarse, so two quick same-size writes could otherwise look alike.
    """
    global _last_mtime
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    _last_mtime = max(time.time_ns(), _last_mtime + 1_000_000)
    os.utime(path, ns=(_last_mtime, _last_mtime))


def sim(**settings: Any) -> SimulatedPlugin:
    """A simulated plugin with the given settings."""
    return SimulatedPlugin(SimSettings(**settings))


async def prefilled(
    tmp_path: Path, running: Mapping[str, str], pe: str = "pe-test"
) -> SimulatedPlugin:
    """A simulated plugin that already runs ``running`` (id -> model) before any agent."""
    plugin = sim()
    ctx = PluginContext(
        prediction_environment_id=pe,
        settings={},
        state_dir=tmp_path / "prefill",
        emit=lambda event: None,
        logger=logging.getLogger("pilothouse.plugin.prefill"),
    )
    await plugin.start(ctx)
    for dep_id, model in running.items():
        await plugin.launch(DesiredDeployment(id=dep_id, model_package_id=model, generation=1))
    plugin.calls.clear()
    return plugin


def events(
    agent_or_path: Agent | Path, type_: str | None = None, dep: str | None = None
) -> list[dict[str, Any]]:
    """Events of the agent's event log, optionally of one type and/or deployment.

    Every line of the log, as written: an event written twice would be counted
    twice, so reading a log that repeats an id fails the test at once (see
    :func:`assert_no_repeats`).
    """
    path = (
        agent_or_path.settings.event_log_path if isinstance(agent_or_path, Agent) else agent_or_path
    )
    logged = complete_events(path)
    assert_no_repeats(logged)
    return [
        e
        for e in logged
        if (type_ is None or e["type"] == type_) and (dep is None or e["deployment_id"] == dep)
    ]


def assert_no_repeats(logged: list[dict[str, Any]]) -> None:
    """No event id appears twice (the hub would ingest it once, but the log must not lie)."""
    repeated = {i: n for i, n in Counter(e["id"] for e in logged).items() if n > 1}
    assert not repeated, f"events written more than once (id: times): {repeated}"


def complete_events(path: Path) -> list[dict[str, Any]]:
    """Like ``helpers.read_events``, but without a last line the agent is still writing."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    return [orjson.loads(line) for line in raw[: raw.rfind(b"\n") + 1].splitlines() if line]


def types(agent: Agent, dep: str, prefix: str = "") -> list[str]:
    """Event types of one deployment, in log order."""
    return [e["type"] for e in events(agent, dep=dep) if e["type"].startswith(prefix)]


async def wait_event(
    agent: Agent, type_: str, dep: str | None = None, count: int = 1, timeout: float = TIMEOUT
) -> dict[str, Any]:
    """Wait until ``count`` events of ``type_`` are in the log; return the last of them."""
    await eventually(lambda: len(events(agent, type_, dep)) >= count, timeout)
    return events(agent, type_, dep)[count - 1]


async def settled(agent: Agent, timeout: float = TIMEOUT) -> None:
    """``agent.wait_settled()`` with a deadline."""
    async with asyncio.timeout(timeout):
        await agent.wait_settled()


def emitted(agent: Agent) -> int:
    """How many events the agent emitted, by its own metrics."""
    return int(
        sum(
            sample.value
            for metric in agent.metrics.registry.collect()
            if metric.name == "pilothouse_agent_events"
            for sample in metric.samples
            if sample.name == "pilothouse_agent_events_total"
        )
    )


def assert_no_events_lost(agent: Agent) -> None:
    """Every event the agent emitted is in its event log, exactly once."""
    logged = complete_events(agent.settings.event_log_path)
    assert_no_repeats(logged)
    assert len(logged) == emitted(agent), (len(logged), emitted(agent))


def calls(plugin: SimulatedPlugin, dep: str | None = None) -> list[tuple[str, str, str | None]]:
    """The plugin's action log as (action, deployment, model) tuples."""
    return [
        (c.action, c.deployment_id, c.model_package_id)
        for c in plugin.calls
        if dep is None or c.deployment_id == dep
    ]
