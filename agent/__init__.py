"""Pilothouse: an MLOps management agent.

The public surface is small on purpose; everything else is reached through it::

    from agent import Agent, AgentSettings

    await Agent(AgentSettings.load(config_file)).serve()

Plugins implement :class:`Plugin` and report failures with the error types
exported here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.errors import (
        ActionTimeoutError,
        ConfigError,
        CrashLoopError,
        DesiredStateError,
        PermanentPluginError,
        PilothouseError,
        PluginError,
        PluginNotFoundError,
        PluginNotReadyError,
        TemporaryPluginError,
    )
    from agent.model.desired import DeploymentSettings, DesiredDeployment, DesiredState
    from agent.model.events import Event
    from agent.model.vocabulary import Action, DeploymentState, DesiredRun, Source, Status
    from agent.plugin import (
        ActionResult,
        DeploymentReport,
        EnvironmentReport,
        Plugin,
        PluginContext,
        PluginRegistry,
    )
    from agent.runtime import Agent
    from agent.settings import AgentSettings

# Imported on first use (PEP 562), so that ``python -m agent serve`` and other
# light commands do not pay for the whole runtime at start.
_EXPORTS = {
    "Action": "agent.model.vocabulary",
    "ActionResult": "agent.plugin",
    "ActionTimeoutError": "agent.errors",
    "Agent": "agent.runtime",
    "AgentSettings": "agent.settings",
    "ConfigError": "agent.errors",
    "CrashLoopError": "agent.errors",
    "DeploymentReport": "agent.plugin",
    "DeploymentSettings": "agent.model.desired",
    "DeploymentState": "agent.model.vocabulary",
    "DesiredDeployment": "agent.model.desired",
    "DesiredRun": "agent.model.vocabulary",
    "DesiredState": "agent.model.desired",
    "DesiredStateError": "agent.errors",
    "EnvironmentReport": "agent.plugin",
    "Event": "agent.model.events",
    "PermanentPluginError": "agent.errors",
    "PilothouseError": "agent.errors",
    "Plugin": "agent.plugin",
    "PluginContext": "agent.plugin",
    "PluginError": "agent.errors",
    "PluginNotFoundError": "agent.errors",
    "PluginNotReadyError": "agent.errors",
    "PluginRegistry": "agent.plugin",
    "Source": "agent.model.vocabulary",
    "Status": "agent.model.vocabulary",
    "TemporaryPluginError": "agent.errors",
}


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'agent' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)


__all__ = [
    "Action",
    "ActionResult",
    "ActionTimeoutError",
    "Agent",
    "AgentSettings",
    "ConfigError",
    "CrashLoopError",
    "DeploymentReport",
    "DeploymentSettings",
    "DeploymentState",
    "DesiredDeployment",
    "DesiredRun",
    "DesiredState",
    "DesiredStateError",
    "EnvironmentReport",
    "Event",
    "PermanentPluginError",
    "PilothouseError",
    "Plugin",
    "PluginContext",
    "PluginError",
    "PluginNotFoundError",
    "PluginNotReadyError",
    "PluginRegistry",
    "Source",
    "Status",
    "TemporaryPluginError",
]
