"""The runtime protocol: the only part of running prediction servers that differs by infrastructure.

A server-running plugin is the fleet kit plus a *runtime*. The kit owns what
is the same everywhere, because every server is the same ``pilothouse serve``:
its admin API, readiness, probes, shared or dedicated routing, package
references, the crash watch and its backoff. The runtime owns what differs —
how a server is started, seen alive, stopped and found again after an agent
restart:

============  ===========================  ============================  ==========================
method        process (subprocess)         Docker (container)            Kubernetes (pod)
============  ===========================  ============================  ==========================
spawn         ``python -m                  create and start a labelled   a labelled Deployment
              pilothouse.serving``         container (limits from the    (limits from the spec)
                                           spec, if dedicated)
alive         ``kill(pid, 0)``, no zombie  the engine's event stream     a pod watch
terminate     SIGTERM, then SIGKILL        stop, remove (and volumes)    delete (owners collect)
adopt         ``servers.json``             containers with PE labels     pods with PE labels
exit_cause    exit code or signal          exit code, OOM, log tail      reason (OOMKilled, …)
deliver       a path on the agent's disk   ``put_archive``               the init container
token         ``servers.json``             a file in the server's        a Secret
                                           volume, read back at adopt
watch         —                            the event stream              list + watch
switch        —                            a front container per         the Service's selector
                                           deployment
============  ===========================  ============================  ==========================

``alive`` is synchronous on purpose: it is asked often (every crash-watch
round, before every action) and must answer from what the runtime already
knows — a pid, or the state its event stream or watch last delivered.

Two capabilities are optional, each its own protocol, for runtimes that have them:

- :class:`Watching` — the infrastructure tells of changes (Docker's event stream, a
  Kubernetes watch). The kit's :class:`~pilothouse.plugins.fleet.watch.Watcher` keeps
  the stream connected: it re-reads every server's state on each (re)connection, reports
  the infrastructure unreachable (a ``failing`` event on the PE) while the stream is
  down and ``passing`` again when it is back, and the runtime tells it of each death
  at once (:class:`WatchHooks`), so the crash watch acts within milliseconds instead
  of at its next round.
- :class:`Switching` — clients reach a deployment through something stable in front
  of its server (a front container, a Service), so a dedicated server can be
  *replaced* rather than changed: a new server starts beside the old one with the
  new spec, takes the deployment, answers a probe, clients are switched to it, and
  only then is the old one removed.

The fleet attaches an admin client (``api``) to each handle it gets; a
runtime only fills in where the server is reached (``base_url``, from the
agent) and how clients name it (``public_url``), and the admin token it
generated for it. A server started with a gRPC port says so in ``GET
/admin/server``; the fleet reads it once the server is ready (``grpc_port``),
and the handle turns it into the address clients use (``grpc_target``: the
port as the runtime publishes it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.plugins.fleet.admin import ServerAPI
from pilothouse.plugins.fleet.packages import PackageRef


@dataclass(frozen=True, slots=True)
class ExitCause:
    """Why a server is not running, for a message (``summary``) and an event (``data``)."""

    summary: str
    """Completes "prediction server 'shared' …": ``exited with code 1``, ``was OOM-killed``."""
    data: dict[str, Any] = field(default_factory=dict)


class ServerHandle(Protocol):
    """What the fleet knows of one server, whatever runs it."""

    key: str
    """``shared`` or the deployment id (see :mod:`~pilothouse.plugins.fleet.routing`)."""
    token: str
    """The admin token this server was started with."""
    api: ServerAPI | None
    """The admin client, attached by the fleet."""
    grpc_port: int | None
    """The port the server says it serves gRPC on (``GET /admin/server``), set by the fleet
    each time the server is found ready; None: it serves no gRPC."""

    @property
    def base_url(self) -> str:
        """Where the agent reaches the server (``http://host:port``)."""
        ...

    @property
    def public_url(self) -> str:
        """Where clients reach the server; prediction URLs start with it."""
        ...

    @property
    def grpc_target(self) -> str | None:
        """Where gRPC clients reach the server (``host:port``); None while ``grpc_port`` is."""
        ...


H = TypeVar("H", bound=ServerHandle)
H_contra = TypeVar("H_contra", bound=ServerHandle, contravariant=True)

Answers = Callable[[H], Awaitable[bool]]
"""Whether a server answers its admin API with its token (handed to ``adopt``)."""


class Runtime(Protocol[H]):
    """Start, watch, stop and find again the prediction servers of one PE."""

    async def spawn(self, key: str, previous: H | None, spec: DesiredDeployment | None) -> H:
        """Start the server for ``key``; the fleet then waits for it to be ready.

        ``previous`` is this agent's server for ``key`` that died: start it again
        in place (same address, token and state) so it restores what it served,
        and return it. Without one, start a new server that serves nothing yet;
        ``spec`` is the deployment a dedicated server is started for (its
        resources, its labels), None for a shared server.
        Raise ``PluginNotReadyError`` (temporary) or ``PermanentPluginError``.
        """
        ...

    def alive(self, server: H) -> bool:
        """Whether the server runs, from what the runtime knows now (no I/O)."""
        ...

    async def terminate(self, server: H) -> None:
        """Stop the server and remove what it leaves behind; nothing if it is gone."""
        ...

    async def adopt(self, answers: Answers[H]) -> list[H]:
        """The servers an earlier agent of this PE left, that the fleet should take over.

        Called once at start. A server that runs must answer with its token
        (``answers``): one that does not (a recycled pid, another PE's container)
        is not adopted. A runtime may also return servers of its own that are
        known dead (a stopped container): the crash watch starts them again.
        """
        ...

    async def exit_cause(self, server: H) -> ExitCause:
        """Why a server that is not alive stopped, as far as the runtime can tell."""
        ...

    async def deliver(self, server: H, package: PackageRef) -> dict[str, Any]:
        """Make ``package`` readable by ``server``; the admin API's reference to it."""
        ...


@dataclass(frozen=True, slots=True)
class WatchHooks(Generic[H]):
    """What a :class:`Watching` runtime tells the fleet while it follows its stream."""

    synced: Callable[[], None]
    """Every server's state was just read again (after a connection or reconnection)."""
    died: Callable[[H], None]
    """This server stopped or was removed — even if the infrastructure restarts it at once.
    Not called for a server the runtime is terminating."""
    suspect: Callable[[H], None]
    """This server runs but the infrastructure doubts it (a failing health check)."""


@runtime_checkable
class Watching(Protocol):
    """A runtime whose infrastructure tells of changes (an event stream, a watch)."""

    infrastructure: str
    """How events name it: ``Docker engine at unix:///var/run/docker.sock``."""

    async def watch(self, hooks: WatchHooks[Any]) -> None:
        """Follow the change stream until it ends.

        Connect, read every server's state again (then ``hooks.synced()``) and apply
        each change as it comes, so :meth:`Runtime.alive` answers from it. Return when
        the stream ends; raise a ``PluginError`` when the infrastructure cannot be
        reached. The :class:`~pilothouse.plugins.fleet.watch.Watcher` calls it again.
        """
        ...


@runtime_checkable
class Switching(Protocol[H_contra]):
    """A runtime whose clients reach a deployment through something stable in front of it."""

    def fits(self, server: H_contra, spec: DesiredDeployment) -> bool:
        """Whether ``server`` can serve ``spec`` by an admin-API change alone.

        If not (another model, other resources), a new server is started beside it.
        """
        ...

    async def switch(self, key: str, server: H_contra) -> None:
        """Send the clients of ``key`` to ``server`` from now on (it answers its probe)."""
        ...

    async def release(self, key: str) -> None:
        """``key`` is served no more: remove what clients reached it through."""
        ...
