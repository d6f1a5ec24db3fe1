"""Failures around the prediction server processes: broken packages, crashes, shutdown.

Each test is a race or a failure that once went wrong in the ``process``
plugin (fixed in c07df59). They use python-format packages only: the server
then never imports scikit-learn, and starts in well under a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pilothouse.agent import DesiredDeployment, DesiredState
from pilothouse.agent.errors import PermanentPluginError
from pilothouse.agent.runtime import Agent
from pilothouse.foundation.domain.vocabulary import DeploymentState
from pilothouse.plugins.process import ProcessPlugin
from pilothouse.plugins.process.servers import Server
from tests.helpers import read_events, running, written_through
from tests.modelpkg.factory import python_package
from tests.process.support import (
    RULES,
    TIMEOUT,
    alive,
    broken_at_load,
    predict,
    reaped,
    release,
    serve_pids,
    server_records,
    until,
)

pytestmark = pytest.mark.anyio

SLOW_ROW = {"sepal_length": 9.5, "sepal_width": 3.0, "petal_length": 1.4, "petal_width": 0.2}


def _slow(path: Path, busy: Path | None = None) -> Path:
    """A package whose prediction of :data:`SLOW_ROW` takes 3 s (an in-flight request).

    With ``busy``, the model creates that file when such a prediction begins.
    """
    mark = f"open({str(busy)!r}, 'w').close(); " if busy is not None else ""
    return python_package(
        path,
        name="iris-slow",
        predict=f"if float(np.asarray(rows, dtype=float)[0, 0]) == 9.5: {mark}time.sleep(3)",
    )


def _settings(
    make_settings: Any, packages: dict[str, Path], actions: Any = None, **plugin: Any
) -> Any:
    return make_settings(
        plugin="process",
        plugin_settings={"packages": packages, "check_interval_s": 0.05, **plugin},
        actions={"timeout_s": TIMEOUT, "errored_retry_s": 600, "backoff_max_s": 600}
        | (actions or {}),
    )


def _state(**deployments: str) -> DesiredState:
    return DesiredState(
        deployments=tuple(
            DesiredDeployment(id=d, model_package_id=p) for d, p in deployments.items()
        )
    )


async def _settle(agent: Agent, state: DesiredState) -> None:
    agent.apply(state)
    async with asyncio.timeout(TIMEOUT):
        await agent.wait_settled()


def _events(path: Path, type_: str) -> list[dict[str, Any]]:
    return [e for e in read_events(path) if e["type"] == type_]


def _url(agent: Agent, dep_id: str) -> str:
    assert agent.dispatcher is not None
    url = agent.dispatcher.records[dep_id].prediction_url
    assert url
    return url


@pytest.mark.anyio
async def test_a_package_that_cannot_load_errors_its_launch_only(
    tmp_path: Path, make_settings: Any
) -> None:
    events = tmp_path / "state" / "events.jsonl"
    async with reaped(tmp_path):
        packages = {"rules": RULES, "bad": broken_at_load(tmp_path / "bad")}
        settings = _settings(make_settings, packages, stop_servers_on_unload=True)
        agent = Agent(settings, plugin=ProcessPlugin())
        async with running(agent), aiohttp.ClientSession() as http:
            agent.apply(_state(a="rules", x="bad"))
            await until(lambda: bool(_events(events, "deployment.errored")), what="x errors")
            await until(lambda: bool(_events(events, "deployment.ready")), what="a is ready")
            assert agent.dispatcher is not None
            records = agent.dispatcher.records
            assert records["x"].state is DeploymentState.ERRORED
            assert records["a"].state is DeploymentState.READY
            (failed,) = _events(events, "action.launch.failed")
            assert failed["deployment_id"] == "x" and failed["status"] == "failing"
            assert failed["data"]["old_model_in_use"] is False
            assert "RuntimeError: weights are corrupt" in failed["message"]
            status, doc = await predict(http, _url(agent, "a"))
            assert status == 200 and doc["model_package_id"] == "rules", doc
            url_x = _url(agent, "a").replace("/deployments/a/", "/deployments/x/")
            assert (await predict(http, url_x))[0] == 404


@pytest.mark.anyio
async def test_refusals_quote_the_servers_explanation(tmp_path: Path, make_settings: Any) -> None:
    """The server's ``error`` text, not a repr of its JSON body."""
    async with reaped(tmp_path):
        packages = {"rules": RULES, "bad": broken_at_load(tmp_path / "bad")}
        plugin = ProcessPlugin()
        settings = _settings(make_settings, packages, stop_servers_on_unload=True)
        async with running(Agent(settings, plugin=plugin)):
            await plugin.launch(DesiredDeployment(id="a", model_package_id="rules"))
            refused = await plugin.replace_model(DesiredDeployment(id="a", model_package_id="bad"))
            assert refused.old_model_in_use and refused.model_package_id == "rules"
            with pytest.raises(PermanentPluginError) as launch:
                await plugin.launch(DesiredDeployment(id="x", model_package_id="bad"))
    for message in (refused.message, str(launch.value)):
        assert "b'{" not in message and '"type":' not in message, message
    assert "the old model 'rules' is still serving" in refused.message, refused.message
    assert "loading deployment 'x' failed" in str(launch.value), launch.value


@pytest.mark.anyio
async def test_a_health_check_during_a_crash_restart_starts_no_second_server(
    tmp_path: Path, make_settings: Any
) -> None:
    """The watcher and a launch both bring a crashed server back: one server results."""
    events = tmp_path / "state" / "events.jsonl"
    async with reaped(tmp_path):
        plugin = ProcessPlugin()
        settings = _settings(make_settings, {"rules": RULES}, stop_servers_on_unload=True)
        agent = Agent(settings, plugin=plugin)
        crashed: Server | None = None
        try:
            async with running(agent), aiohttp.ClientSession() as http:
                await _settle(agent, _state(a="rules"))
                crashed = plugin.servers["shared"]
                assert crashed.pid is not None and serve_pids(tmp_path) == [crashed.pid]
                os.kill(crashed.pid, signal.SIGKILL)
                # The watcher saw the crash and waits before restarting; a health check now
                # finds the deployment broken and the agent launches it again.
                await until(lambda: bool(_events(events, "plugin.server_crashed")), what="crash")
                assert agent.health is not None
                await agent.health.check_all()
                async with asyncio.timeout(TIMEOUT):
                    await agent.wait_settled()
                # The watcher reported the crash, so it reports the restart too, whoever
                # started the server: once it has, neither path can start another one.
                await until(
                    lambda: bool(_events(events, "plugin.server_restarted")), what="restart"
                )
                status, _ = await predict(http, _url(agent, "a"))
                assert status == 200
                running_pids = serve_pids(tmp_path)
                assert running_pids == [plugin.servers["shared"].pid], running_pids
        finally:
            await release(crashed)


@pytest.mark.anyio
async def test_stopping_the_agent_stops_every_server_and_reports_no_crash(
    tmp_path: Path, make_settings: Any
) -> None:
    """While one server takes its time to stop, the watcher must not restart another."""
    events = tmp_path / "state" / "events.jsonl"
    async with reaped(tmp_path):
        plugin = ProcessPlugin()
        busy = tmp_path / "busy"
        packages = {"rules": RULES, "slow": _slow(tmp_path / "slow", busy)}
        settings = _settings(
            make_settings, packages, mode="per_deployment", stop_servers_on_unload=True
        )
        agent = Agent(settings, plugin=plugin)
        known: list[Server] = []
        try:
            async with aiohttp.ClientSession() as http:
                async with running(agent):
                    await _settle(agent, _state(a="rules"))
                    await _settle(agent, _state(a="rules", b="slow"))
                    assert list(plugin.servers) == ["a", "b"]
                    known.extend(plugin.servers.values())
                    # b's server is busy with a request when the agent stops: it takes a while.
                    in_flight = asyncio.create_task(predict(http, _url(agent, "b"), [SLOW_ROW]))
                    await until(busy.exists, what="the slow request is being served")
                # Stopped: the crash watcher ended with the agent, so no server can come back.
                watchers = [t for t in asyncio.all_tasks() if "watch prediction servers" in
                            t.get_name()]  # fmt: skip
                assert watchers == [], watchers
                with contextlib.suppress(aiohttp.ClientError):
                    await in_flight
        finally:
            left = serve_pids(tmp_path)
            await release(*known)
        crashes = [e["message"] for e in _events(events, "plugin.server_crashed")]
        assert not left, f"servers left running: {left}; crash reports: {crashes}"
        assert not crashes
        assert server_records(tmp_path / "state" / "plugin") == {}


@pytest.mark.anyio
async def test_a_deployment_stopped_while_its_server_is_down_stays_stopped(
    tmp_path: Path, make_settings: Any
) -> None:
    """A restarted server restores what it served: a stop in between must still hold."""
    events = tmp_path / "state" / "events.jsonl"
    async with reaped(tmp_path):
        plugin = ProcessPlugin()
        settings = _settings(
            make_settings,
            {"rules": RULES},
            # Room for a stop that retries until the server is back.
            actions={"backoff_initial_s": 0.3},
            check_interval_s=0.5,
            stop_servers_on_unload=True,
        )
        agent = Agent(settings, plugin=plugin)
        async with running(agent), aiohttp.ClientSession() as http:
            await _settle(agent, _state(a="rules", b="rules"))
            url_b = _url(agent, "b")
            (pid,) = serve_pids(tmp_path)
            os.kill(pid, signal.SIGKILL)
            await until(lambda: not alive(pid), what="the server is dead")
            await _settle(agent, _state(a="rules"))  # b removed: stopped while the server is down
            # However the server came back (the watcher, or the stop itself), it runs now; a
            # crash the watcher reported is followed by its restart report, after which the
            # watcher has nothing left to do (it cannot see this server dead any more).
            assert plugin.servers["shared"].alive()
            logged = [e["type"] for e in await written_through(agent)]
            crashes = logged.count("plugin.server_crashed")
            assert crashes <= 1, logged
            await until(
                lambda: len(_events(events, "plugin.server_restarted")) == crashes,
                what=f"{crashes} restart report(s)",
            )
            assert (await predict(http, _url(agent, "a")))[0] == 200
            status, doc = await predict(http, url_b)
            assert status == 404, f"b was stopped but answers: {doc}"


@pytest.mark.anyio
async def test_a_new_server_serves_only_what_is_desired(tmp_path: Path, make_settings: Any) -> None:
    """A server started on an old state dir must not bring back what reconcile never saw."""
    async with reaped(tmp_path):
        first = ProcessPlugin()
        agent = Agent(_settings(make_settings, {"rules": RULES}), plugin=first)
        async with running(agent):
            await _settle(agent, _state(a="rules"))
            await _settle(agent, _state(a="rules", b="rules"))
            (pid,) = serve_pids(tmp_path)
        # No agent runs, and the server dies with the machine; b is deleted meanwhile.
        os.kill(pid, signal.SIGKILL)
        await until(lambda: not alive(pid), what="the server is gone")
        second = ProcessPlugin()
        settings = _settings(make_settings, {"rules": RULES}, stop_servers_on_unload=True)
        agent = Agent(settings, plugin=second)
        async with running(agent), aiohttp.ClientSession() as http:
            await _settle(agent, _state(a="rules"))
            assert (await predict(http, _url(agent, "a")))[0] == 200
            url_b = _url(agent, "a").replace("/deployments/a/", "/deployments/b/")
            status, doc = await predict(http, url_b)
            assert status == 404, f"b is desired by nobody but answers: {doc}"
