"""The third-party plugin of ``examples/directory-plugin``, as its author would test it.

Through an agent with an explicit :class:`PluginRegistry` (fast, isolated);
its ``ctx.report`` finding when a file vanishes; and its own packaging: the
entry point in its ``pyproject.toml`` is turned into installed metadata by its
build backend (offline, no wheel built), and a real ``pilothouse agent run``
finds the plugin through it and runs it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from pilothouse.agent import DesiredDeployment, DesiredState
from pilothouse.agent.plugin import DeploymentReport, PluginContext, PluginRegistry
from pilothouse.agent.runtime import Agent
from pilothouse.foundation.domain.vocabulary import DeploymentState, Status
from tests.helpers import eventually, running
from tests.plugins import example

pytestmark = pytest.mark.anyio


def _state(**deployments: str) -> DesiredState:
    return DesiredState(deployments=tuple(
        DesiredDeployment(id=d, model_package_id=m) for d, m in deployments.items()
    ))  # fmt: skip


def _published(directory: Path) -> dict[str, str]:
    return {
        p.stem: orjson.loads(p.read_bytes())["model_package_id"] for p in directory.glob("*.json")
    }


async def _settle(agent: Agent, state: DesiredState) -> None:
    agent.apply(state)
    async with asyncio.timeout(10):
        await agent.wait_settled()


async def test_runs_through_an_agent_from_an_explicit_registry(
    tmp_path: Path, make_settings: Any
) -> None:
    out = tmp_path / "handoff"
    registry = PluginRegistry({"directory": example.load().DirectoryPlugin})
    settings = make_settings(plugin="directory", plugin_settings={"directory": str(out)})
    agent = Agent(settings, registry=registry)
    async with running(agent):
        await _settle(agent, _state(fraud="fraud-v1", churn="churn-v1"))
        assert _published(out) == {"fraud": "fraud-v1", "churn": "churn-v1"}
        await _settle(agent, _state(fraud="fraud-v2", churn="churn-v1"))
        assert _published(out) == {"fraud": "fraud-v2", "churn": "churn-v1"}
        # Removed behind the agent's back: a health check finds it stopped, the agent repairs.
        (out / "churn.json").unlink()
        assert agent.health is not None and agent.dispatcher is not None
        await agent.health.check_all()
        async with asyncio.timeout(10):
            await agent.wait_settled()
        assert _published(out) == {"fraud": "fraud-v2", "churn": "churn-v1"}
        assert agent.dispatcher.records["churn"].state is DeploymentState.READY
        await _settle(agent, _state(fraud="fraud-v2"))
        assert _published(out) == {"fraud": "fraud-v2"}


async def test_a_vanished_file_is_reported_on_its_deployment(tmp_path: Path) -> None:
    reports: list[DeploymentReport] = []
    ctx = PluginContext(
        "pe", {"directory": str(tmp_path), "watch_interval_s": 0.02}, tmp_path / "state",
        lambda _e: None, logging.getLogger("test.example"), reports=reports.append,
    )  # fmt: skip
    plugin = example.load().DirectoryPlugin()
    await plugin.start(ctx)
    try:
        await plugin.launch(DesiredDeployment(id="fraud", model_package_id="fraud-v1"))
        (tmp_path / "fraud.json").unlink()
        await eventually(lambda: bool(reports))
    finally:
        await plugin.stop()
        await ctx.stop_tasks()
    (report,) = reports
    assert (report.deployment_id, report.state, report.status) == (
        "fraud", DeploymentState.STOPPED, Status.FAILING,
    )  # fmt: skip
    assert report.message == f"{tmp_path / 'fraud.json'} was removed behind the agent's back"


async def _run(cwd: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _metadata(tmp: Path) -> Path:
    """Install the example as a development install does: its metadata, its source on a path.

    The metadata (``entry_points.txt`` included) is written by the example's own build
    backend from its ``pyproject.toml`` (setuptools' ``egg_info``: offline, no wheel);
    ``importlib.metadata`` finds it on ``sys.path`` exactly as it finds an installed one.
    """
    source, site = tmp / "src", tmp / "site"
    shutil.copytree(example.EXAMPLE, source)  # the backend writes beside the sources too
    site.mkdir()
    hook = "import sys, setuptools; sys.argv[1:] = ['egg_info', '--egg-base', sys.argv[1]]; "
    code, _, err = await _run(
        source, dict(os.environ), "-c", hook + "setuptools.setup()", str(site)
    )
    assert code == 0, err
    entry_points = site / "pilothouse_directory_plugin.egg-info" / "entry_points.txt"
    assert entry_points.read_text().split("\n")[:2] == [
        "[pilothouse.plugins]", "directory = pilothouse_directory.plugin:DirectoryPlugin",
    ]  # fmt: skip
    return source


async def test_its_entry_point_resolves_and_an_agent_runs_it(tmp_path: Path) -> None:
    source = await _metadata(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "site"), str(source)])
    code, out, err = await _run(tmp_path, env, "-m", "pilothouse", "plugins")
    assert code == 0 and "directory" in out.split(), (out, err)

    (tmp_path / "desired.yaml").write_text(yaml.safe_dump(
        {"deployments": [{"id": "fraud", "model_package_id": "fraud-v1"}]}
    ))  # fmt: skip
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump({
        "prediction_environment": "pe-example", "plugin": "directory", "state_dir": "state",
        "plugin_settings": {"directory": "handoff"},
        "intake": {"desired_state_file": "desired.yaml", "poll_interval_s": 0.1},
    }))  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pilothouse", "agent", "run", "--config", "agent.yaml",
        cwd=tmp_path, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await eventually(lambda: (tmp_path / "handoff" / "fraud.json").exists(), timeout=30)
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            _, err_bytes = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err_bytes.decode()
    assert _published(tmp_path / "handoff") == {"fraud": "fraud-v1"}
    loaded = orjson.loads((tmp_path / "handoff" / "fraud.json").read_bytes())
    assert loaded["sha256"] == {"fraud-v1": None}, "standalone: no hub to verify against"
