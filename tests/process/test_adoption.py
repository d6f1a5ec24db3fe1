"""An adopted deployment is probed exactly like a launched one (issue 9, item 8).

After an agent restart the next agent adopts the prediction server that kept
running. Its health probe must send the package's own sample rows — learnt
from the package, found again in ``plugin_settings.packages`` or through the
hub — and not rows without the features, which the server refuses (400) and
which left the deployment ``failing`` for good. Each test asserts the health
*after* adoption, not only the adoption.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pilothouse.agent import DesiredDeployment, DesiredState
from pilothouse.agent.runtime import Agent
from pilothouse.agent.settings import AgentSettings
from pilothouse.foundation.domain.vocabulary import DeploymentState, Status
from pilothouse.modelpkg import build_package
from pilothouse.plugins.process import ProcessPlugin
from tests.helpers import read_events, running
from tests.hub.support import V1, Running, ok, upload
from tests.hub.support import running as hub_running
from tests.hub.support import settings as hub_settings
from tests.process.support import RULES, TIMEOUT, reaped, serve_pids, until

pytestmark = pytest.mark.anyio


def _health(events: list[dict[str, Any]], dep_id: str) -> list[tuple[str, str]]:
    return [
        (e["status"], e["message"])
        for e in events
        if e["type"] == "deployment.health_changed" and e["deployment_id"] == dep_id
    ]


@pytest.mark.anyio
async def test_standalone_adopted_deployment_passes_its_probe(
    tmp_path: Path, make_settings: Any
) -> None:
    events_file = tmp_path / "state" / "events.jsonl"
    desired = DesiredState(deployments=(DesiredDeployment(id="a", model_package_id="rules"),))

    def settings(**plugin: Any) -> AgentSettings:
        return make_settings(  # type: ignore[no-any-return]
            plugin="process",
            plugin_settings={"packages": {"rules": RULES}, **plugin},
            actions={"timeout_s": TIMEOUT},
        )

    async with reaped(tmp_path):
        first = Agent(settings(), plugin=ProcessPlugin())
        async with running(first):
            first.apply(desired)
            async with asyncio.timeout(TIMEOUT):
                await first.wait_settled()
        (pid,) = serve_pids(tmp_path)
        before = len(read_events(events_file))

        plugin = ProcessPlugin()
        second = Agent(settings(stop_servers_on_unload=True), plugin=plugin)
        async with running(second):
            second.apply(desired)
            async with asyncio.timeout(TIMEOUT):
                await second.wait_settled()
            assert plugin.servers["shared"].pid == pid, "adopted, not started again"
            assert second.health is not None and second.dispatcher is not None
            await second.health.check_all()
            report = await plugin.deployment_status("a")
            record = second.dispatcher.records["a"]
            assert (record.state, record.status) == (DeploymentState.READY, Status.PASSING)
        assert report.status is Status.PASSING, report
        assert report.message == "probe predicted 3 of 3 rows", report.message
        assert _health(read_events(events_file)[before:], "a") == [
            ("passing", "a is passing: probe predicted 3 of 3 rows")
        ]


async def _upload(hub: Running, tmp: Path) -> str:
    _, archive = build_package(RULES, tmp / "rules.tar.gz")
    created = await ok(upload(hub.admin, archive.read_bytes()), 201)
    return str(created["id"])


def _agent_settings(tmp: Path, hub: Running, pe: str, token: str, **plugin: Any) -> AgentSettings:
    return AgentSettings.load(None, {
        "prediction_environment": pe, "plugin": "process", "plugin_settings": plugin,
        "state_dir": tmp / "agent",
        "hub": {"url": hub.url, "token": token, "poll_interval_s": 0.5},
        "health": {"interval_s": 3600, "heartbeat_interval_s": 0.5},
    })  # fmt: skip


@pytest.mark.anyio
async def test_through_the_hub_adopted_deployment_stays_passing(tmp_path: Path) -> None:
    """Packages come from the hub: the next agent finds the probe rows through it too."""
    async with reaped(tmp_path):
        async with hub_running(hub_settings(tmp_path / "hub")) as hub:
            pe = (await hub.pe("local", platform="process"))["id"]
            token = await ok(hub.admin.post(f"{V1}/prediction-environments/{pe}/agent-tokens"), 201)
            package = await _upload(hub, tmp_path)
            first = Agent(
                _agent_settings(tmp_path, hub, pe, token["token"]), plugin=ProcessPlugin()
            )
            async with running(first):
                dep = (await hub.deployment(pe, package, name="iris"))["id"]
                await until(lambda: _ready(first, dep), TIMEOUT, "the deployment is ready")
            (pid,) = serve_pids(tmp_path)

            plugin = ProcessPlugin()
            settings = _agent_settings(
                tmp_path, hub, pe, token["token"], stop_servers_on_unload=True
            )
            second = Agent(settings, plugin=plugin)
            async with running(second):
                await until(lambda: _ready(second, dep), TIMEOUT, "the deployment is adopted")
                assert plugin.servers["shared"].pid == pid, "adopted, not started again"
                assert second.health is not None and second.link is not None
                await second.health.check_all()
                link = second.link
                await until(lambda: link.outbox.size_bytes == 0, TIMEOUT, "events reach the hub")
                health = await ok(hub.admin.get(f"{V1}/deployments/{dep}/service-health"))
        assert health["status"] == "passing", health
        assert "probe predicted 3 of 3 rows" in health["reason"], health
        recent = [(e["type"], e["status"]) for e in health["recent_events"]]
        assert ("deployment.health_changed", "failing") not in recent, recent


def _ready(agent: Agent, dep_id: str) -> bool:
    records = agent.dispatcher.records if agent.dispatcher else {}
    rec = records.get(dep_id)
    return rec is not None and rec.state is DeploymentState.READY and not rec.busy
