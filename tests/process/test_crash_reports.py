"""A server crash is visible on every deployment it served (issue 8, item 4, plugin side).

When a prediction server dies, each deployment it served gets its status
pushed at once through ``ctx.report`` — ``errored``/``failing``, naming the
cause — and, once the crash watch has started the server again and a probe
succeeds, ``ready``/``passing``. The PE-level ``plugin.server_crashed`` and
``plugin.server_restarted`` events stay. The agent's side of ``ctx.report``
(the finding entering the deployment's worker) is not this plugin's: here the
context is built by hand, so what the plugin pushes is seen exactly.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from pilothouse.agent import DesiredDeployment
from pilothouse.agent.plugin import DeploymentReport, PluginContext
from pilothouse.foundation.domain.events import Event
from pilothouse.foundation.domain.vocabulary import DeploymentState, Status
from pilothouse.plugins.process import ProcessPlugin
from tests.process.support import RULES, reaped, until

pytestmark = pytest.mark.anyio


def _context(tmp: Path, reports: list[DeploymentReport], events: list[Event], **plugin: Any) -> Any:
    return PluginContext(
        prediction_environment_id="pe-crash",
        settings={
            "packages": {"rules": RULES},
            "check_interval_s": 0.05,
            "stop_servers_on_unload": True,
            **plugin,
        },
        state_dir=tmp / "plugin",
        emit=events.append,
        logger=logging.getLogger("test.crash"),
        reports=reports.append,
    )


def _seen(reports: list[DeploymentReport]) -> list[tuple[str, DeploymentState, Status]]:
    return [(r.deployment_id, r.state, r.status) for r in reports]


@pytest.mark.anyio
async def test_a_crash_turns_each_served_deployment_failing_then_passing(tmp_path: Path) -> None:
    reports: list[DeploymentReport] = []
    events: list[Event] = []
    ctx = _context(tmp_path, reports, events)
    plugin = ProcessPlugin()
    async with reaped(tmp_path):
        await plugin.start(ctx)
        try:
            for dep_id in ("a", "b"):
                await plugin.launch(DesiredDeployment(id=dep_id, model_package_id="rules"))
            server = plugin.servers["shared"]
            old_pid = server.pid
            assert old_pid is not None and not reports
            os.kill(old_pid, signal.SIGKILL)
            await until(lambda: len(reports) >= 4, what="failing, then passing, for a and b")
        finally:
            await plugin.stop()
            await ctx.stop_tasks()
    assert _seen(reports) == [
        ("a", DeploymentState.ERRORED, Status.FAILING),
        ("b", DeploymentState.ERRORED, Status.FAILING),
        ("a", DeploymentState.READY, Status.PASSING),
        ("b", DeploymentState.READY, Status.PASSING),
    ]
    for failing in reports[:2]:
        assert failing.message == "its prediction server 'shared' was killed by SIGKILL " + (
            f"(see {server.log_path})"
        ), failing.message
        assert failing.data["exit_code"] == -signal.SIGKILL
    assert {r.message for r in reports[2:]} == {"probe predicted 3 of 3 rows"}
    assert server.pid != old_pid
    crashed, restarted = (e for e in events if e.type.startswith("plugin.server_"))
    assert (crashed.type, crashed.status) == ("plugin.server_crashed", Status.FAILING)
    assert crashed.deployment_id is None and "killed by SIGKILL" in crashed.message
    assert (restarted.type, restarted.status) == ("plugin.server_restarted", Status.PASSING)
    assert restarted.data["deployments"] == ["a", "b"]


@pytest.mark.anyio
async def test_a_dedicated_server_crash_concerns_its_deployment_only(tmp_path: Path) -> None:
    reports: list[DeploymentReport] = []
    events: list[Event] = []
    ctx = _context(tmp_path, reports, events, mode="dedicated")
    plugin = ProcessPlugin()
    async with reaped(tmp_path):
        await plugin.start(ctx)
        try:
            for dep_id in ("a", "b"):
                await plugin.launch(DesiredDeployment(id=dep_id, model_package_id="rules"))
            pid = plugin.servers["b"].pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            await until(lambda: len(reports) >= 2, what="b failing, then passing")
            assert (await plugin.deployment_status("a")).status is Status.PASSING
        finally:
            await plugin.stop()
            await ctx.stop_tasks()
    assert _seen(reports) == [
        ("b", DeploymentState.ERRORED, Status.FAILING),
        ("b", DeploymentState.READY, Status.PASSING),
    ]
