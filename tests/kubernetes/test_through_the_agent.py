"""The ``kubernetes`` plugin driven by a real agent: its workers, journal and events.

The other Kubernetes tests call the plugin directly; these run it the way users
do — an :class:`~pilothouse.agent.runtime.Agent` applying desired states — so
the agent's worker sees an undone rollout (``old_model_in_use``), the events
file records it, stop leaves nothing in the cluster, and a restarted agent
adopts the Deployment it finds instead of rolling out a new one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pilothouse.agent import DesiredDeployment, DesiredState
from pilothouse.agent.runtime import Agent
from pilothouse.agent.settings import AgentSettings
from pilothouse.foundation.domain.desired import DeploymentSettings
from pilothouse.foundation.domain.vocabulary import DeploymentState, DesiredRun, Status
from pilothouse.plugins.kubernetes import KubernetesPlugin, names
from tests.helpers import eventually, read_events, running
from tests.kubernetes.conftest import Cluster, emulator_only
from tests.kubernetes.support import PE, packages
from tests.kubernetes.test_rollouts import crashing
from tests.process.support import traffic

pytestmark = pytest.mark.anyio

TIMEOUT = 90.0


def _desired(
    package: str, generation: int, state: DesiredRun = DesiredRun.LAUNCHED
) -> DesiredState:
    return DesiredState(
        deployments=(
            DesiredDeployment(
                id="d1",
                model_package_id=package,
                generation=generation,
                state=state,
                settings=DeploymentSettings(replicas=2),
            ),
        )
    )


def _settings(make_settings: Any, cluster: Cluster, pkgs: dict[str, Path]) -> AgentSettings:
    return make_settings(  # type: ignore[no-any-return]
        prediction_environment=PE,
        plugin="kubernetes",
        plugin_settings=cluster.settings(
            packages={k: str(v) for k, v in pkgs.items()}, progress_deadline_s=6
        ),
        actions={"timeout_s": TIMEOUT, "errored_retry_s": 600, "backoff_max_s": 600},
        shutdown={"grace_period_s": 15},
    )


def _of(events: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"].startswith(prefix) and e.get("deployment_id") == "d1"]


def _objects(cluster: Cluster) -> list[str]:
    name = names.object_name("d1")
    api = cluster.emulator
    return sorted(
        f"{r} {o['metadata']['name']}"
        for r in ("apps/v1/deployments", "v1/services", "v1/pods")
        for o in api.all(r, cluster.namespace)
        if o["metadata"]["name"].startswith(name)
    )


@emulator_only  # counts the emulator's objects; a real cluster runs the conformance suite
async def test_an_agent_launches_sees_an_undone_rollout_adopts_and_stops(
    cluster: Cluster, tmp_path: Path, make_settings: Any
) -> None:
    pkgs = {**packages(tmp_path), "crash": crashing(tmp_path / "crash")}
    settings = _settings(make_settings, cluster, pkgs)
    events_file = settings.state_dir / "events.jsonl"

    first = Agent(settings, plugin=KubernetesPlugin())
    async with running(first):
        first.apply(_desired("rules", 1))
        async with asyncio.timeout(TIMEOUT):
            await first.wait_settled()
        assert first.dispatcher is not None
        rec = first.dispatcher.records["d1"]
        assert (rec.state, rec.status, rec.model_package_id) == (
            DeploymentState.READY, Status.PASSING, "rules",
        )  # fmt: skip
        assert rec.prediction_url
        async with traffic(rec.prediction_url, clients=2) as seen:
            first.apply(_desired("crash", 2))
            # Not settled: an undone replacement is tried again later (errored_retry_s).
            await eventually(
                lambda: bool(_of(read_events(events_file), "action.replace_model.failed")),
                TIMEOUT,
            )
        failed = [r for r in seen if r[0] != 200]
        assert not failed and {m for _, m in seen} == {"rules"}, (len(seen), failed[:3])
        await eventually(lambda: rec.state is DeploymentState.READY, TIMEOUT)
        assert rec.model_package_id == "rules"
    events = read_events(events_file)
    (undone,) = _of(events, "action.replace_model.failed")
    assert undone["status"] == "failing"
    assert undone["data"]["old_model_in_use"] is True
    assert undone["data"]["reason"] == "CrashLoopBackOff", undone["data"]
    assert "libfoo.so" in undone["data"]["log"]
    after = _of(events, "deployment.")[-1]
    assert (after["type"], after["data"]["model_package_id"]) == ("deployment.ready", "rules")
    assert after["data"]["old_model_in_use"] is True
    deployed = _objects(cluster)
    assert any(o.startswith("apps/v1/deployments") for o in deployed), deployed

    # A new agent with the same desired state adopts what runs: no second rollout.
    second = Agent(settings, plugin=KubernetesPlugin())
    before = len(read_events(events_file))
    async with running(second):
        second.apply(_desired("rules", 1))
        async with asyncio.timeout(TIMEOUT):
            await second.wait_settled()
        assert second.dispatcher is not None
        again = second.dispatcher.records["d1"]
        assert (again.state, again.model_package_id) == (DeploymentState.READY, "rules")
        pods = [o for o in _objects(cluster) if o.startswith("v1/pods")]
        assert pods == [o for o in deployed if o.startswith("v1/pods")], "no pod replaced"
        acted = [e["type"] for e in _of(read_events(events_file)[before:], "action.")]
        assert acted == [], "adopted: no action asked of the plugin"

        second.apply(_desired("rules", 3, DesiredRun.STOPPED))
        async with asyncio.timeout(TIMEOUT):
            await second.wait_settled()
        assert again.state is DeploymentState.STOPPED
        await _until_gone(cluster)
    assert _of(read_events(events_file)[before:], "action.stop.succeeded")


async def _until_gone(cluster: Cluster) -> None:
    async with asyncio.timeout(TIMEOUT):
        while left := _objects(cluster):
            del left
            await asyncio.sleep(0.1)
