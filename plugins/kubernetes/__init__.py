"""The ``kubernetes`` plugin: deployments as Deployments, rolled out and watched."""

from pilothouse.plugins.kubernetes.plugin import KubernetesPlugin
from pilothouse.plugins.kubernetes.settings import KubernetesPluginSettings

__all__ = ["KubernetesPlugin", "KubernetesPluginSettings"]
