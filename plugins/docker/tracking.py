"""What runs, as the engine last said: the state the runtime's ``alive`` answers from.

The engine tells of every change of a container in its event stream; the
tracker keeps the status of each container of this scope by id — set by a
full listing at every (re)connection (:meth:`Tracker.resync`), by each event
after it (:meth:`Tracker.apply`), and by the runtime's own inspections after
it starts a container. States are kept by container *id*, not name: a
container re-created under the same name is a new id, so a late event about
the old one cannot mark the new one dead.

A death (``die``, ``destroy``) of a container the runtime counts on is told
at once to the fleet (``WatchHooks.died``), a failing health check
(``health_status: unhealthy``) as a doubt (``suspect``). Each death is
remembered (:attr:`Tracker.deaths`: the exit code of the ``die`` event, and
whether an ``oom`` event came first), because the engine's restart policy
may start the container again before anyone inspects it, and a running
container's state no longer tells how it last ended.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pilothouse.plugins.docker import labels
from pilothouse.plugins.docker.containers import Server
from pilothouse.plugins.fleet.runtime import WatchHooks

log = logging.getLogger("pilothouse.plugin.docker")

RUNNING = "running"
GONE = "removed"


@dataclass(frozen=True, slots=True)
class Death:
    """How a container last ended, as its events said."""

    exit_code: int
    oom_killed: bool


class Tracker:
    """Container statuses by id, kept current from the engine's event stream."""

    def __init__(self, watched: Callable[[str], Server | None]) -> None:
        self._watched = watched
        """The server a container id belongs to (as its container or its front), if counted on."""
        self.status: dict[str, str] = {}
        self.deaths: dict[str, Death] = {}
        self._oom: set[str] = set()
        self.hooks: WatchHooks[Server] | None = None

    def running(self, container_id: str | None) -> bool:
        """Whether the container runs, as far as the engine last said."""
        return container_id is not None and self.status.get(container_id) == RUNNING

    def set(self, container_id: str, status: str) -> None:
        """What the runtime itself just saw (an inspection after a start)."""
        self.status[container_id] = status

    def resync(self, listed: list[dict[str, Any]]) -> None:
        """Every container of the scope, as one listing says (after a (re)connection)."""
        known = {str(c["Id"]): str(c.get("State") or "") for c in listed}
        for container_id in list(self.status):
            if container_id not in known:
                self.status[container_id] = GONE
        self.status.update(known)

    def apply(self, event: dict[str, Any]) -> None:
        """One event of the stream."""
        if event.get("Type") != "container":
            return
        container_id = str(event.get("id") or event.get("Actor", {}).get("ID", ""))
        action = str(event.get("Action") or event.get("status") or "")
        attributes = event.get("Actor", {}).get("Attributes") or {}
        verb, _, detail = action.partition(":")
        if verb == "start" or verb == "unpause" or verb == "restart":
            self.set(container_id, RUNNING)
        elif verb == "create":
            self.status.setdefault(container_id, "created")
        elif verb == "oom":
            self._oom.add(container_id)
        elif verb in ("die", "destroy", "pause"):
            was = self.status.get(container_id)
            self.status[container_id] = {"die": "exited", "destroy": GONE}.get(verb, "paused")
            if verb == "destroy" and was in ("exited", "dead", "created", GONE):
                return  # the removal of a container already dead: the same death
            if verb == "die":
                code = int(attributes.get("exitCode") or 0)
                self.deaths[container_id] = Death(code, container_id in self._oom)
                self._oom.discard(container_id)
            self._tell(container_id, attributes, died=True)
        elif verb == "health_status" and detail.strip() == "unhealthy":
            self._tell(container_id, attributes, died=False)

    def _tell(self, container_id: str, attributes: dict[str, str], *, died: bool) -> None:
        server = self._watched(container_id)
        if server is None or self.hooks is None:
            return  # not a container the fleet counts on (an old one, one being removed)
        what = "stopped" if died else "is unhealthy"
        name = attributes.get("name", container_id[:12])
        log.info("container %s (%s) %s", name, attributes.get(labels.KEY, server.key), what)
        (self.hooks.died if died else self.hooks.suspect)(server)
