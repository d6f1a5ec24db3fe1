"""Failover: two hub replicas as processes over one PostgreSQL, an agent, and something dying.

The replicas share a state directory (package archives; the admin token is
given) and the test's database. The agent is given both URLs, the one it will
lose first. Then the replica the agent is connected to — which also holds the
background-work lease — is SIGKILLed mid-stream of actions and events, or the
database itself is restarted. Afterwards: the agent is on the survivor, every
event it acknowledged is stored once, every action reached the plugin once, and
every failing event was notified (at least once) by the dispatcher, which
resumed on the survivor.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pilothouse.agent.runtime import Agent
from pilothouse.agent.settings import AgentSettings
from pilothouse.plugins.simulated import SimulatedPlugin
from tests.helpers import read_events, running
from tests.hub import support
from tests.hub.receivers import Receiver, receiving
from tests.hub.support import ADMIN, V1, event, ok, package_bytes, upload
from tests.postgres_support import Cluster, free_port

pytestmark = [pytest.mark.anyio, pytest.mark.backends("postgres")]

FAILOVER_WITHIN_S = 5.0
REPLICA_ENV = {
    "PILOTHOUSE_HUB_DATABASE__LEASE_POLL_S": "0.2",
    "PILOTHOUSE_HUB_DATABASE__LEASE_TIMEOUT_S": "1",
    "PILOTHOUSE_HUB_NOTIFICATIONS__ALLOW_PRIVATE_TARGETS": "true",
    "PILOTHOUSE_HUB_NOTIFICATIONS__BACKOFF_INITIAL_S": "0.2",
    "PILOTHOUSE_HUB_NOTIFICATIONS__BACKOFF_MAX_S": "0.5",
    "PILOTHOUSE_HUB_SECRET_KEY": "failover-replicas-share-this-key-0123456789",
}


@dataclass
class Replica:
    """A ``pilothouse hub run`` process."""

    url: str
    process: asyncio.subprocess.Process
    http: aiohttp.ClientSession

    async def holds_lease(self) -> bool:
        with contextlib.suppress(aiohttp.ClientError):
            async with self.http.get("/metrics") as resp:
                return "pilothouse_hub_lease_held 1.0" in await resp.text()
        return False


@contextlib.asynccontextmanager
async def replica(state: Path, database_url: str) -> AsyncIterator[Replica]:
    """A hub replica in its own process, until the block ends (or it is killed)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pilothouse", "hub", "run", "--port", str(port),
        "--state-dir", str(state), "--admin-token", ADMIN, "--database-url", database_url,
        "--log-level", "WARNING",
        env=env | REPLICA_ENV, stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with aiohttp.ClientSession(url, headers=headers) as http:
        try:
            await _until_ready(http)
            yield Replica(url, proc, http)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                await proc.communicate()


async def _until_ready(http: aiohttp.ClientSession) -> None:
    async with asyncio.timeout(30):
        while True:
            with contextlib.suppress(aiohttp.ClientConnectionError):
                async with http.get("/readyz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.05)


async def until(check: Any, timeout: float = 20.0) -> Any:
    async with asyncio.timeout(timeout):
        while not (found := await check()):  # noqa: ASYNC110 - polling over HTTP
            await asyncio.sleep(0.02)
    return found


@dataclass
class World:
    pe: str
    token: str
    packages: list[str]
    deployments: list[str]


async def _world(hub: Replica, receiver: Receiver) -> World:
    admin = hub.http
    env = {"name": "prod", "platform": "test"}
    pe = await ok(admin.post(f"{V1}/prediction-environments", json=env), 201)
    token = await ok(admin.post(f"{V1}/prediction-environments/{pe['id']}/agent-tokens"), 201)
    packages = [(await ok(upload(admin, package_bytes("iris", v)), 201))["id"] for v in "12"]
    body = {"name": "hook", "type": "webhook", "url": receiver.url}
    channel = await ok(admin.post(f"{V1}/notification-channels", json=body), 201)
    rule = {"name": "p", "channel_id": channel["id"], "statuses": ["failing"], "group_window_s": 0}
    await ok(admin.post(f"{V1}/notification-policies", json=rule), 201)
    return World(pe["id"], token["token"], packages, [])


def _agent(tmp: Path, urls: list[str], world: World) -> tuple[Agent, SimulatedPlugin]:
    settings = AgentSettings.load(None, {
        "prediction_environment": world.pe,
        "state_dir": tmp / "agent",
        "hub": {"url": ",".join(urls), "token": world.token, "poll_interval_s": 0.5,
                "reconnect_backoff_max_s": 0.3, "request_timeout_s": 5},
        "actions": {"backoff_initial_s": 0.01, "errored_retry_s": 0.05},
        "health": {"interval_s": 3600, "heartbeat_interval_s": 0.2},
        "shutdown": {"grace_period_s": 5},
    })  # fmt: skip
    plugin = SimulatedPlugin()
    return Agent(settings, plugin=plugin), plugin


async def _observed(hub: Replica, dep_id: str, state: str, generation: int) -> bool:
    with contextlib.suppress(aiohttp.ClientError):
        async with hub.http.get(f"{V1}/deployments/{dep_id}") as resp:
            if resp.status != 200:
                return False
            observed = (await resp.json())["observed"]
            return bool(observed["state"] == state and observed["generation"] >= generation)
    return False


async def _act(hub: Replica, dep_id: str, body: dict[str, Any]) -> None:
    await ok(hub.http.post(f"{V1}/deployments/{dep_id}/actions", json=body))


async def _failing(hub: Replica, world: World, tag: str) -> None:
    failing = event(world.pe, deployment_id=f"d-{tag}", status="failing", message=tag)
    await ok(hub.http.post(f"{V1}/events", json={"events": [failing]}))


def _notified(receiver: Receiver) -> set[str]:
    return {e["message"] for r in receiver.requests for e in r.json()["events"]}


async def _stored_once(hub: Replica, agent: Agent) -> None:
    """Every event the agent logged (and so shipped or queued) is in the hub exactly once."""
    assert agent.link is not None
    await until(_drained(agent))
    logged = [e["id"] for e in read_events(agent.settings.event_log_path)]
    stored: Counter[str] = Counter()
    params = {"limit": "1000", "source": "agent"}
    while True:
        page = await ok(hub.http.get(f"{V1}/events", params=params))
        stored.update(e["id"] for e in page["items"])
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    missing = [e for e in read_events(agent.settings.event_log_path) if e["id"] not in stored]
    assert logged and not missing, [(e["type"], e["message"]) for e in missing]
    assert max(stored.values()) == 1


def _drained(agent: Agent) -> Any:
    async def check() -> bool:
        return agent.link is not None and agent.link.outbox.size_bytes == 0

    return check


def _once_each(plugin: SimulatedPlugin) -> None:
    calls = Counter((c.action, c.deployment_id, c.generation) for c in plugin.calls)
    assert calls and max(calls.values()) == 1, calls


async def test_sigkill_of_the_agents_replica_moves_the_agent_and_the_dispatcher(
    tmp_path: Path,
) -> None:
    database = str(support.DATABASE["url"])
    shared = tmp_path / "shared-state"
    async with receiving() as receiver, contextlib.AsyncExitStack() as stack:
        a = await stack.enter_async_context(replica(shared, database))
        await until(a.holds_lease)  # A runs the background work: it dies with it
        b = await stack.enter_async_context(replica(shared, database))
        world = await _world(b, receiver)
        agent, plugin = _agent(tmp_path, [a.url, b.url], world)  # A first: the agent is on A
        await stack.enter_async_context(running(agent))
        for i in range(4):  # through B: the change crosses to the agent's stream on A
            body = {"name": f"dep{i}", "prediction_environment_id": world.pe,
                    "model_package_id": world.packages[0]}  # fmt: skip
            world.deployments.append(
                (await ok(b.http.post(f"{V1}/deployments", json=body), 201))["id"]
            )
        for dep in world.deployments:
            await until(lambda dep=dep: _observed(b, dep, "ready", 1))
        receiver.delay_s = 0.3  # messages in flight when A dies
        for i in range(3):
            await _failing(b, world, f"before-{i}")
        a.process.kill()  # SIGKILL: no goodbye to the agent, the database or the lease
        killed = time.monotonic()
        await _act(b, world.deployments[0], {"action": "replace_model",
                                             "model_package_id": world.packages[1]})  # fmt: skip
        await until(lambda: _observed(b, world.deployments[0], "ready", 2))
        failover_s = time.monotonic() - killed
        for i in range(3):
            await _failing(b, world, f"after-{i}")
        await until(b.holds_lease)
        await until(
            _all_notified(receiver, {f"{w}-{i}" for w in ("before", "after") for i in range(3)})
        )
        for dep in world.deployments[1:]:
            await _act(b, dep, {"action": "stop"})
        for dep in world.deployments[1:]:
            await until(lambda dep=dep: _observed(b, dep, "stopped", 2))
        await _stored_once(b, agent)
        _once_each(plugin)
    print(f"replica SIGKILLed: agent on the survivor and the action applied in {failover_s:.2f} s")
    assert failover_s < FAILOVER_WITHIN_S


def _all_notified(receiver: Receiver, wanted: set[str]) -> Any:
    async def check() -> bool:
        return wanted <= _notified(receiver)

    return check


async def test_a_restarted_database_is_rejoined_by_both_replicas(
    tmp_path: Path, postgres_cluster: Cluster
) -> None:
    database = str(support.DATABASE["url"])
    shared = tmp_path / "shared-state"
    # The test cluster trades durability for speed (synchronous_commit off): a crash would
    # lose acknowledged commits. This database gets PostgreSQL's default back.
    name = database.rsplit("/", 1)[1]
    await asyncio.to_thread(
        postgres_cluster.psql, f'ALTER DATABASE "{name}" SET synchronous_commit = on'
    )
    async with receiving() as receiver, contextlib.AsyncExitStack() as stack:
        a = await stack.enter_async_context(replica(shared, database))
        b = await stack.enter_async_context(replica(shared, database))
        world = await _world(a, receiver)
        agent, plugin = _agent(tmp_path, [a.url, b.url], world)
        await stack.enter_async_context(running(agent))
        body = {"name": "dep", "prediction_environment_id": world.pe,
                "model_package_id": world.packages[0]}  # fmt: skip
        dep = (await ok(b.http.post(f"{V1}/deployments", json=body), 201))["id"]
        await until(lambda: _observed(a, dep, "ready", 1))
        restarted = time.monotonic()
        await asyncio.to_thread(postgres_cluster.restart)  # a crash: every connection drops
        for hub in (a, b):
            await until(lambda hub=hub: _ready(hub))
        await _act(b, dep, {"action": "replace_model", "model_package_id": world.packages[1]})
        await until(lambda: _observed(a, dep, "ready", 2))
        rejoined_s = time.monotonic() - restarted
        await _failing(a, world, "after-restart")
        await until(_all_notified(receiver, {"after-restart"}))
        holders = [await hub.holds_lease() for hub in (a, b)]
        assert holders.count(True) == 1, holders
        await _stored_once(a, agent)
        _once_each(plugin)
    print(f"database restarted: both replicas back and the action applied in {rejoined_s:.2f} s")


async def _ready(hub: Replica) -> bool:
    with contextlib.suppress(aiohttp.ClientError):
        async with hub.http.get("/readyz") as resp:
            return resp.status == 200
    return False
