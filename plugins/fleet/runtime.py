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
spawn         ``python -m                  create and start a labelled   a labelled Deployment and
              pilothouse.serving``         container                     Service
alive         ``kill(pid, 0)``, no zombie  the engine's event stream     a pod watch
terminate     SIGTERM, then SIGKILL        stop, remove (and volumes)    delete (owners collect)
adopt         ``servers.json``             containers with PE labels     pods with PE labels
exit_cause    exit code or signal          exit code, OOM, log tail      reason (OOMKilled, …)
deliver       a path on the agent's disk   ``put_archive``               the init container
============  ===========================  ============================  ==========================

``alive`` is synchronous on purpose: it is asked often (every crash-watch
round, before every action) and must answer from what the runtime already
knows — a pid, or the state its event stream or watch last delivered. A
runtime that is *told* of a death (Docker's ``die`` event, a pod watch) calls
:meth:`~pilothouse.plugins.fleet.crashwatch.CrashWatch.wake` so the crash
watch acts at once instead of at its next round.

The fleet attaches an admin client (``api``) to each handle it gets; a
runtime only fills in where the server is reached (``base_url``, from the
agent) and how clients name it (``public_url``), and the admin token it
generated for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

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

    @property
    def base_url(self) -> str:
        """Where the agent reaches the server (``http://host:port``)."""
        ...

    @property
    def public_url(self) -> str:
        """Where clients reach the server; prediction URLs start with it."""
        ...


H = TypeVar("H", bound=ServerHandle)

Answers = Callable[[H], Awaitable[bool]]
"""Whether a server answers its admin API with its token (handed to ``adopt``)."""


class Runtime(Protocol[H]):
    """Start, watch, stop and find again the prediction servers of one PE."""

    async def spawn(self, key: str, previous: H | None) -> H:
        """Start the server for ``key``; the fleet then waits for it to be ready.

        ``previous`` is this agent's server for ``key`` that died: start it again
        in place (same address, token and state) so it restores what it served,
        and return it. Without one, start a new server that serves nothing yet.
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
        """The servers an earlier agent of this PE left running, that ``answers`` accepts.

        Called once at start. A server that runs but does not answer with its
        token (a recycled pid, another PE's container) is neither adopted nor touched.
        """
        ...

    async def exit_cause(self, server: H) -> ExitCause:
        """Why a server that is not alive stopped, as far as the runtime can tell."""
        ...

    async def deliver(self, server: H, package: PackageRef) -> dict[str, Any]:
        """Make ``package`` readable by ``server``; the admin API's reference to it."""
        ...
