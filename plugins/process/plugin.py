"""The ``process`` plugin: model servers as local subprocesses.

Deployments are served by ``pilothouse serve`` processes on this machine: one
shared server for the whole PE (the default) or one per deployment. All of
the plugin but the processes themselves is the fleet kit
(:mod:`pilothouse.plugins.fleet`): packages from the hub or from
``plugin_settings.packages``, replacement through the server's admin API
without dropping a request, probes with each package's sample rows, and a
crash watch that restarts a dead server and reports the outage on each of
its deployments. What is about processes is the runtime
(:mod:`pilothouse.plugins.process.runtime`).
"""

from __future__ import annotations

from pilothouse.agent.plugin import PluginContext
from pilothouse.plugins.fleet import FleetPlugin
from pilothouse.plugins.process.runtime import ProcessRuntime
from pilothouse.plugins.process.servers import Server
from pilothouse.plugins.process.settings import ProcessPluginSettings


class ProcessPlugin(FleetPlugin[Server, ProcessPluginSettings]):
    """Runs prediction servers as subprocesses of this machine."""

    name = "process"
    settings_model = ProcessPluginSettings

    async def make_runtime(self, ctx: PluginContext) -> ProcessRuntime:
        """Processes need nothing to connect to: they start here, state under ``state_dir``."""
        return ProcessRuntime(self.settings, ctx.state_dir)
