"""The ``docker`` plugin: prediction servers as containers on a Docker engine.

Attributes are imported on first use, so that the front container's program
(``python -m pilothouse.plugins.docker.front``) starts without loading the agent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pilothouse.plugins.docker.plugin import DockerPlugin
    from pilothouse.plugins.docker.settings import DockerPluginSettings

__all__ = ["DockerPlugin", "DockerPluginSettings"]


def __getattr__(name: str) -> Any:
    if name == "DockerPlugin":
        from pilothouse.plugins.docker.plugin import DockerPlugin

        return DockerPlugin
    if name == "DockerPluginSettings":
        from pilothouse.plugins.docker.settings import DockerPluginSettings

        return DockerPluginSettings
    raise AttributeError(name)
