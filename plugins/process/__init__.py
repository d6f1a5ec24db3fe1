"""The ``process`` plugin: prediction servers as local subprocesses (the embedded default)."""

from plugins.process.plugin import ProcessPlugin
from plugins.process.settings import ProcessPluginSettings

__all__ = ["ProcessPlugin", "ProcessPluginSettings"]
