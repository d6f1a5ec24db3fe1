"""Pilothouse: an MLOps management agent.

The public surface is small on purpose; everything else is reached through it::

    from pilothouse.agent import Agent, AgentSettings

    await Agent(AgentSettings.load(config_file)).serve()

Plugins implement :class:`Plugin` and report failures with the error types
exported here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pilothouse.agent.errors import (
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
    from pilothouse.agent.plugin import (
        ActionResult,
        DeploymentReport,
        EnvironmentReport,
        Plugin,
        PluginContext,
        PluginRegistry,
    )
    from pilothouse.agent.runtime import Agent
    from pilothouse.agent.settings import AgentSettings
    from pilothouse.foundation.domain.desired import (
        DeploymentSettings,
        DesiredDeployment,
        DesiredState,
    )
    from pilothouse.foundation.domain.events import Event
    from pilothouse.foundation.domain.vocabulary import (
        Action,
        DeploymentState,
        DesiredRun,
        Source,
        Status,
    )

# Imported on first use (PEP 562), so that ``pilothouse serve`` and other
# light commands do not pay for the whole runtime at start.
_EXPORTS = {
    "Action": "pilothouse.foundation.domain.vocabulary",
    "ActionResult": "pilothouse.agent.plugin",
    "ActionTimeoutError": "pilothouse.agent.errors",
    "Agent": "pilothouse.agent.runtime",
    "AgentSettings": "pilothouse.agent.settings",
    "ConfigError": "pilothouse.agent.errors",
    "CrashLoopError": "pilothouse.agent.errors",
    "DeploymentReport": "pilothouse.agent.plugin",
    "DeploymentSettings": "pilothouse.foundation.domain.desired",
    "DeploymentState": "pilothouse.foundation.domain.vocabulary",
    "DesiredDeployment": "pilothouse.foundation.domain.desired",
    "DesiredRun": "pilothouse.foundation.domain.vocabulary",
    "DesiredState": "pilothouse.foundation.domain.desired",
    "DesiredStateError": "pilothouse.agent.errors",
    "EnvironmentReport": "pilothouse.agent.plugin",
    "Event": "pilothouse.foundation.domain.events",
    "PermanentPluginError": "pilothouse.agent.errors",
    "PilothouseError": "pilothouse.agent.errors",
    "Plugin": "pilothouse.agent.plugin",
    "PluginContext": "pilothouse.agent.plugin",
    "PluginError": "pilothouse.agent.errors",
    "PluginNotFoundError": "pilothouse.agent.errors",
    "PluginNotReadyError": "pilothouse.agent.errors",
    "PluginRegistry": "pilothouse.agent.plugin",
    "Source": "pilothouse.foundation.domain.vocabulary",
    "Status": "pilothouse.foundation.domain.vocabulary",
    "TemporaryPluginError": "pilothouse.agent.errors",
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
