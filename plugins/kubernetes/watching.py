"""List-then-watch: one kind's objects in the PE's namespace, kept current within a second.

A :class:`Watcher` per kind (Deployments, Pods, Events) follows the API's own
protocol, as informers do:

1. **list** the objects (by the PE's label selector) and remember the list's
   ``resourceVersion``;
2. **watch** from that version: every ``ADDED``/``MODIFIED``/``DELETED`` updates
   the cache and the version, and is handed to ``on_change`` at once; bookmarks
   move the version only;
3. when the API server ends the watch (its timeout) or the connection drops
   (an API server restart), **resume** from the last version — nothing that
   changed meanwhile is missed, because the server replays it;
4. when the server no longer keeps that version (``410 Gone``), **re-list**:
   objects that vanished meanwhile are reported deleted, the rest modified.

Failed attempts wait by the kit's :class:`~pilothouse.foundation.aio.backoff.Backoff`
(reset by a watch that worked), so an API server that is down is not hammered.
A permanent error (RBAC forbids ``watch``) is kept in :attr:`Watcher.error` for
the environment's status, and retried at the backoff's maximum: a Role can be fixed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from pilothouse.agent.errors import PluginError
from pilothouse.foundation.aio.backoff import Backoff
from pilothouse.plugins.kubernetes.api import Call, Kube
from pilothouse.plugins.kubernetes.errors import ForbiddenError, GoneError, from_answer

log = logging.getLogger("pilothouse.plugin.kubernetes")

OnChange = Callable[[str, dict[str, Any]], None]
"""Told of each change: (``ADDED``/``MODIFIED``/``DELETED``, the object)."""


@dataclass(frozen=True, slots=True)
class Kind:
    """A resource kind to watch, and the generated method that lists it in a namespace."""

    resource: str
    group: str
    lister: Callable[[Kube], Call]
    selected: bool = True
    """Whether the PE's label selector applies (Events carry no labels of ours)."""


class Watcher:
    """Keeps :attr:`objects` equal to the API server's, and says what changed."""

    def __init__(
        self,
        kube: Kube,
        kind: Kind,
        selector: str,
        on_change: OnChange,
        *,
        backoff: Backoff,
        timeout_s: int,
    ) -> None:
        self._kube = kube
        self.kind = kind
        self._selector = selector if kind.selected else None
        self._on_change = on_change
        self._backoff = backoff
        self._timeout_s = timeout_s
        self.objects: dict[str, dict[str, Any]] = {}
        self.resource_version: str | None = None
        self.synced = asyncio.Event()
        """Set once the first list is in the cache."""
        self.error: PluginError | None = None
        """The last failure, until a watch works again."""
        self.lists = 0
        self.reconnects = 0

    async def run(self) -> None:
        """Watch until cancelled."""
        attempt = 0
        while True:
            try:
                if self.resource_version is None:
                    await self._list()
                await self._watch()
                attempt = 0
            except GoneError as exc:
                log.info("%s: %s; listing again", self.kind.resource, exc)
                self.resource_version = None
            except PluginError as exc:
                self.error = exc
                self.reconnects += 1
                # RBAC is fixed by a person, not by time: ask again at the slowest pace.
                delay = self._backoff.delay(64 if isinstance(exc, ForbiddenError) else attempt)
                log.warning("watch of %s lost (%s); again in %.2fs", self.kind.resource, exc, delay)
                attempt += 1
                await asyncio.sleep(delay)

    async def _list(self) -> None:
        op = self._kube.op("list", self.kind.resource, self.kind.group)
        doc = await self._kube.call(
            op, self.kind.lister(self._kube), self._kube.namespace, **self._selection()
        )
        fresh = {_name(o): o for o in doc.get("items") or []}
        gone = [o for n, o in self.objects.items() if n not in fresh]
        self.objects = fresh
        self.resource_version = str((doc.get("metadata") or {}).get("resourceVersion") or "")
        self.lists += 1
        self.error = None
        self.synced.set()
        for obj in gone:
            self._on_change("DELETED", obj)
        for obj in fresh.values():
            self._on_change("MODIFIED", obj)

    async def _watch(self) -> None:
        kube = self._kube
        op = kube.op("watch", self.kind.resource, self.kind.group)
        async with kube.stream(
            op,
            self.kind.lister(kube),
            kube.namespace,
            resource_version=self.resource_version,
            allow_watch_bookmarks=True,
            timeout_s=self._timeout_s,
            **self._selection(),
        ) as content:
            self.error = None
            async for line in kube.lines(op, content):
                self._event(orjson.loads(line), line)

    def _event(self, event: dict[str, Any], line: bytes) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            code = int(obj.get("code") or 500)
            op = self._kube.op("watch", self.kind.resource, self.kind.group)
            raise from_answer(code, orjson.dumps(obj), op)
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if version:
            self.resource_version = str(version)
        if kind == "BOOKMARK":
            return
        if kind == "DELETED":
            self.objects.pop(_name(obj), None)
        else:
            self.objects[_name(obj)] = obj
        self._on_change(str(kind), obj)

    def _selection(self) -> dict[str, Any]:
        return {"label_selector": self._selector} if self._selector else {}


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name"))
