"""Standalone mode: packages from ``plugin_settings.packages``, desired state by ``apply``.

Real agents with the ``process`` plugin and real prediction server
subprocesses: one shared server for several deployments, one server per
deployment, probes that make a real prediction, and servers that outlive an
agent and are adopted by the next one (or stopped with it, when asked).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pilothouse.agent import DesiredDeployment, DesiredState
from pilothouse.agent.runtime import Agent
from pilothouse.foundation.domain.vocabulary import DeploymentState, Status
from pilothouse.plugins.process import ProcessPlugin
from tests.helpers import read_events, running, written_through
from tests.process.support import (
    IRIS_1,
    IRIS_2,
    RULES,
    TIMEOUT,
    alive,
    base_url,
    breakable,
    infer_v2,
    predict,
    reaped,
    serve_pids,
    server_records,
    until,
)

pytestmark = pytest.mark.anyio


def _settings(make_settings: Any, tmp: Path, **plugin: Any) -> Any:
    packages = {"iris-1": IRIS_1, "iris-2": IRIS_2, "rules": RULES}
    return make_settings(
        plugin="process",
        plugin_settings={"packages": packages, "check_interval_s": 0.2, **plugin},
        actions={"timeout_s": TIMEOUT},
    )


def _state(**deployments: str) -> DesiredState:
    return DesiredState(
        deployments=tuple(
            DesiredDeployment(id=dep_id, model_package_id=package)
            for dep_id, package in deployments.items()
        )
    )


async def _settle(agent: Agent, state: DesiredState) -> None:
    agent.apply(state)
    async with asyncio.timeout(TIMEOUT):
        await agent.wait_settled()


def _record(agent: Agent, dep_id: str) -> Any:
    assert agent.dispatcher is not None
    return agent.dispatcher.records[dep_id]


async def _answers(agent: Agent, http: aiohttp.ClientSession, dep_id: str) -> str:
    """Predict through the deployment's prediction URL; the model package id that answered."""
    url = _record(agent, dep_id).prediction_url
    assert url, f"{dep_id} has no prediction URL"
    status, doc = await predict(http, url)
    assert status == 200, doc
    assert doc["predictions"] == ["setosa", "virginica"] and doc["deployment_id"] == dep_id
    return str(doc["model_package_id"])


async def _logged(agent: Agent, type_: str) -> list[dict[str, Any]]:
    """The events of ``type_`` among everything the agent emitted so far, once written."""
    return [e for e in await written_through(agent) if e["type"] == type_]


@pytest.mark.anyio
async def test_shared_server_probes_then_adoption_by_the_next_agent(
    tmp_path: Path, make_settings: Any
) -> None:
    flag = tmp_path / "break-it"
    plugin_state = tmp_path / "state" / "plugin"
    events_file = tmp_path / "state" / "events.jsonl"
    async with reaped(tmp_path):
        settings = _settings(make_settings, tmp_path)
        packages = {**settings.plugin_settings["packages"]}
        packages["breakable"] = breakable(tmp_path / "breakable", flag)
        settings = _settings(make_settings, tmp_path, packages=packages)
        desired = _state(a="iris-1", b="rules", c="breakable")

        first = ProcessPlugin()
        agent = Agent(settings, plugin=first)
        async with running(agent), aiohttp.ClientSession() as http:
            await _settle(agent, desired)
            # --- one shared server serves every deployment -------------------------------
            assert list(first.servers) == ["shared"]
            server = first.servers["shared"]
            assert server.pid is not None and serve_pids(tmp_path) == [server.pid]
            assert {d: _record(agent, d).state for d in "abc"} == dict.fromkeys(
                "abc", DeploymentState.READY
            )
            assert [await _answers(agent, http, d) for d in "abc"] == [
                "iris-1",
                "rules",
                "breakable",
            ]
            status, doc = await infer_v2(http, base_url(_record(agent, "b").prediction_url), "b")
            assert status == 200 and doc["model_version"] == "rules", doc
            assert server_records(plugin_state)["shared"]["pid"] == server.pid

            # --- a replacement in the shared server --------------------------------------
            desired = _state(a="iris-2", b="rules", c="breakable")
            await _settle(agent, desired)
            assert await _answers(agent, http, "a") == "iris-2"
            assert serve_pids(tmp_path) == [server.pid], "the same server, no new process"

            # --- the status probe makes a real prediction --------------------------------
            report = await first.deployment_status("c")
            assert report.status is Status.PASSING, report
            flag.touch()
            report = await first.deployment_status("c")
            assert report.state is DeploymentState.READY and report.status is Status.FAILING
            assert "probe failed" in report.message and "feature store is gone" in report.message
            assert agent.health is not None
            await agent.health.check_all()
            changed = await _logged(agent, "deployment.health_changed")
            assert [(e["deployment_id"], e["status"]) for e in changed] == [("c", "failing")]
            assert (await first.deployment_status("a")).status is Status.PASSING
            flag.unlink()
            await agent.health.check_all()
            changed = await _logged(agent, "deployment.health_changed")
            assert [(e["deployment_id"], e["status"]) for e in changed] == [
                ("c", "failing"), ("c", "passing"),
            ]  # fmt: skip
        pid = server.pid

        # --- the agent stopped; its server did not ----------------------------------------
        assert alive(pid), "without stop_servers_on_unload the server outlives the agent"
        assert server_records(plugin_state)["shared"]["pid"] == pid
        before = len(read_events(events_file))

        # --- the next agent adopts it: no second server, nothing to do ---------------------
        second = ProcessPlugin()
        agent = Agent(_settings(make_settings, tmp_path, packages=packages,
                                stop_servers_on_unload=True), plugin=second)  # fmt: skip
        async with running(agent), aiohttp.ClientSession() as http:
            await _settle(agent, desired)
            assert list(second.servers) == ["shared"] and second.servers["shared"].pid == pid
            assert server_records(plugin_state)["shared"]["pid"] == pid
            assert serve_pids(tmp_path) == [pid], "adopted, not started again"
            assert {d: _record(agent, d).state for d in "abc"} == dict.fromkeys(
                "abc", DeploymentState.READY
            )
            assert [await _answers(agent, http, d) for d in "abc"] == [
                "iris-2",
                "rules",
                "breakable",
            ]
            events = (await written_through(agent))[before:]
            (reconciled,) = [e for e in events if e["type"] == "agent.reconciled"]
            assert reconciled["data"]["running"] == 3
            assert reconciled["data"]["plan"] == {"unchanged": 3}, reconciled
            assert not [e for e in events if e["type"].startswith("action.")], "nothing to do"

        # --- stop_servers_on_unload: nothing survives this agent ---------------------------
        await until(lambda: not alive(pid), timeout=5, what="the server is stopped")
        assert not serve_pids(tmp_path)
        assert server_records(plugin_state) == {}


@pytest.mark.anyio
async def test_per_deployment_mode_runs_one_server_each(tmp_path: Path, make_settings: Any) -> None:
    plugin_state = tmp_path / "state" / "plugin"
    async with reaped(tmp_path):
        plugin = ProcessPlugin()
        settings = _settings(
            make_settings, tmp_path, mode="per_deployment", stop_servers_on_unload=True
        )
        agent = Agent(settings, plugin=plugin)
        async with running(agent), aiohttp.ClientSession() as http:
            await _settle(agent, _state(a="iris-1", b="rules"))
            assert sorted(plugin.servers) == ["a", "b"]
            a, b = plugin.servers["a"], plugin.servers["b"]
            assert a.pid is not None and b.pid is not None
            assert a.pid != b.pid and a.port != b.port
            assert serve_pids(tmp_path) == sorted([a.pid, b.pid])
            assert {k: r["pid"] for k, r in server_records(plugin_state).items()} == {
                "a": a.pid, "b": b.pid,
            }  # fmt: skip
            assert await _answers(agent, http, "a") == "iris-1"
            assert await _answers(agent, http, "b") == "rules"
            assert f":{a.port}/" in _record(agent, "a").prediction_url
            assert f":{b.port}/" in _record(agent, "b").prediction_url
            # Each server serves only its own deployment.
            status, _ = await predict(http, f"{base_url(_record(agent, 'a').prediction_url)}"
                                            "/v1/deployments/b/predict")  # fmt: skip
            assert status == 404

            # Replacing a's model keeps a's server; stopping b stops b's server.
            await _settle(agent, _state(a="iris-2"))
            assert await _answers(agent, http, "a") == "iris-2"
            assert list(plugin.servers) == ["a"] and plugin.servers["a"].pid == a.pid
            assert not alive(b.pid)
            assert serve_pids(tmp_path) == [a.pid]
            assert list(server_records(plugin_state)) == ["a"]
        assert not serve_pids(tmp_path)
        assert server_records(plugin_state) == {}
