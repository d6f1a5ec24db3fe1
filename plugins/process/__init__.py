"""The ``process`` plugin: prediction servers as local subprocesses (the embedded default)."""

from pilothouse.plugins.process.plugin import ProcessPlugin
from pilothouse.plugins.process.settings import ProcessPluginSettings

__all__ = ["ProcessPlugin", "ProcessPluginSettings"]
