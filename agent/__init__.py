"""Pilothouse: an MLOps management agent.

The public surface is small on purpose; everything else is reached through it::

    from agent import Agent, AgentSettings

    await Agent(AgentSettings.load(config_file)).serve()

Plugins implement :class:`Plugin` and report failures with the error types
exported here.
"""

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
