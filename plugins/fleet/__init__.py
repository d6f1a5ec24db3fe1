"""The prediction-server fleet kit: everything a server-running plugin needs but its runtime.

Every built-in plugin that runs models — ``process`` today, ``docker`` and
``kubernetes`` next — runs the same prediction server (``pilothouse serve``)
somewhere. What does not depend on *where* is here, for them and for
third-party plugins:

- :mod:`.admin` — the server's admin client (:class:`ServerAPI`) and refused changes;
- :mod:`.servers` — servers by key, started on demand under one lock, adopted, retired,
  and :func:`wait_ready`;
- :mod:`.routing` — a shared server per PE, or a dedicated one per deployment;
- :mod:`.packages` — where a model package comes from (local settings or the hub);
- :mod:`.probes` — real predictions on the manifest's sample rows;
- :mod:`.deployments` — place, replace, remove and observe deployments over the admin API;
- :mod:`.crashwatch` — restart a dead server with backoff, and tell its deployments;
- :mod:`.errors` — an HTTP status or client error to a temporary or permanent plugin error;
- :mod:`.runtime` — the :class:`Runtime` protocol a plugin implements: spawn, alive,
  terminate, adopt (plus exit_cause and deliver);
- :mod:`.plugin` — :class:`FleetPlugin`, the whole plugin on top, less its runtime.

Layering: the kit uses the agent's public plugin interface and errors only;
it never imports a runtime (the runtimes import it).
"""

from pilothouse.plugins.fleet.admin import Refused, ServerAPI
from pilothouse.plugins.fleet.crashwatch import CrashWatch
from pilothouse.plugins.fleet.deployments import Deployments
from pilothouse.plugins.fleet.packages import PackageRef, PackageSource
from pilothouse.plugins.fleet.plugin import FleetPlugin
from pilothouse.plugins.fleet.probes import ProbeRows
from pilothouse.plugins.fleet.routing import SHARED, Routing
from pilothouse.plugins.fleet.runtime import ExitCause, Runtime, ServerHandle
from pilothouse.plugins.fleet.servers import Servers, wait_ready
from pilothouse.plugins.fleet.settings import FleetSettings

__all__ = [
    "SHARED",
    "CrashWatch",
    "Deployments",
    "ExitCause",
    "FleetPlugin",
    "FleetSettings",
    "PackageRef",
    "PackageSource",
    "ProbeRows",
    "Refused",
    "Routing",
    "Runtime",
    "ServerAPI",
    "ServerHandle",
    "Servers",
    "wait_ready",
]
