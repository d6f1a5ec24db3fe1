"""The ``docker`` plugin: prediction servers as containers on a Docker engine.

One container can serve many models: in ``shared`` mode (the default) one
server container per PE serves every deployment and its challengers, and a
model is added or replaced through the server's admin API in a second,
without a new container; in ``dedicated`` mode each deployment has a
container of its own (its CPU and memory limits from ``settings.resources``),
behind a front whose address survives the replacement of the container.

All of the plugin but the containers is the fleet kit
(:mod:`pilothouse.plugins.fleet`): packages, probes with each package's sample
rows, replacement without a dropped request, the crash watch. What is about
Docker is the runtime (:mod:`pilothouse.plugins.docker.runtime`), which talks
to the engine only through ``aiodocker`` and follows its event stream, so a
container that dies is reported within milliseconds, and an engine that goes
away is reported, waited for and reconciled with when it returns.
"""

from __future__ import annotations

from pilothouse.agent.plugin import PluginContext
from pilothouse.plugins.docker import engine
from pilothouse.plugins.docker.calls import Calls
from pilothouse.plugins.docker.containers import Server
from pilothouse.plugins.docker.labels import Scope
from pilothouse.plugins.docker.runtime import DockerRuntime
from pilothouse.plugins.docker.settings import DockerPluginSettings
from pilothouse.plugins.fleet import FleetPlugin


class DockerPlugin(FleetPlugin[Server, DockerPluginSettings]):
    """Runs prediction servers as labelled containers of one Docker engine."""

    name = "docker"
    settings_model = DockerPluginSettings

    async def make_runtime(self, ctx: PluginContext) -> DockerRuntime:
        """Connect to the engine (not ready yet while it does not answer)."""
        s = self.settings
        calls = Calls(engine.connect(s.engine), s.engine)
        try:
            await calls.version()
        except BaseException:
            await calls.close()
            raise
        scope = Scope(s.owner, ctx.prediction_environment_id, s.mode)
        self.runtime = DockerRuntime(s, calls, scope, ctx.state_dir)
        return self.runtime

    async def stop(self) -> None:
        """Close clients (servers keep running unless ``stop_servers_on_unload``)."""
        try:
            await super().stop()
        finally:
            runtime = getattr(self, "runtime", None)
            if runtime is not None:
                await runtime.close()
