"""Typed plugin settings: a pydantic model per plugin, errors worded like the agent's own.

A plugin declares ``settings_model`` and gets a validated instance from
``ctx.typed_settings``; a wrong value is a ``ConfigError`` naming
``plugin_settings.<field>`` through the one explainer of
``pilothouse.foundation.settings`` — so ``pilothouse agent run`` refuses it at
start with exit code 2, exactly as it refuses a wrong agent setting.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pilothouse.agent.errors import ConfigError
from pilothouse.agent.plugin import PluginContext
from pilothouse.agent.settings import AgentSettings
from pilothouse.plugins.process import ProcessPlugin, ProcessPluginSettings
from pilothouse.plugins.simulated import SimulatedPlugin, SimulatedPluginSettings

pytestmark = pytest.mark.anyio


def _ctx(tmp: Path, settings: dict[str, Any]) -> PluginContext:
    return PluginContext("pe", settings, tmp, lambda _e: None, logging.getLogger("test"))


def test_the_context_hands_a_validated_instance(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, {"mode": "per_deployment", "check_interval_s": 0.5})
    settings = ctx.typed_settings(ProcessPluginSettings)
    assert isinstance(settings, ProcessPluginSettings)
    assert (settings.mode, settings.check_interval_s) == ("dedicated", 0.5)
    assert ProcessPlugin.settings_model is ProcessPluginSettings
    assert SimulatedPlugin.settings_model is SimulatedPluginSettings


def test_errors_name_each_field_like_the_agents_settings(tmp_path: Path) -> None:
    raw = {"check_interval_s": -1, "mode": "everywhere", "colour": "blue"}
    with pytest.raises(ConfigError) as plugin:
        _ctx(tmp_path, raw).typed_settings(ProcessPluginSettings)
    assert plugin.value.source == "plugin settings"
    assert plugin.value.problems == [
        "plugin_settings.mode: got 'everywhere'; input should be 'shared' or 'dedicated'",
        "plugin_settings.check_interval_s: got -1; input should be greater than 0",
        "plugin_settings.colour: unknown field (got 'blue')",
    ]
    with pytest.raises(ConfigError) as agent:
        AgentSettings.load(None, {"prediction_environment": "pe", "health": {"interval_s": -1}})
    assert agent.value.problems == ["health.interval_s: got -1; input should be greater than 0"]


def test_nested_fields_are_dotted(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _ctx(tmp_path, {"delays": {"launch_s": "slow"}}).typed_settings(SimulatedPluginSettings)
    assert info.value.problems == [
        "plugin_settings.delays.launch_s: got 'slow'; "
        "input should be a valid number, unable to parse string as a number"
    ]


async def test_agent_run_refuses_wrong_plugin_settings_with_exit_code_2(tmp_path: Path) -> None:
    config = {
        "prediction_environment": "pe-cli", "plugin": "process", "state_dir": "state",
        "plugin_settings": {"mode": "everywhere", "ready_timeout_s": 0},
    }  # fmt: skip
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pilothouse", "agent", "run", "--config", "agent.yaml",
        cwd=tmp_path, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(60):
        _, err = await proc.communicate()
    stderr = err.decode()
    assert proc.returncode == 2, stderr
    assert "invalid plugin settings:\n" in stderr, stderr
    assert (
        "  - plugin_settings.mode: got 'everywhere'; input should be 'shared' or 'dedicated'\n"
        in stderr
    )
    assert "  - plugin_settings.ready_timeout_s: got 0; input should be greater than 0" in stderr
    assert "Traceback" not in stderr
