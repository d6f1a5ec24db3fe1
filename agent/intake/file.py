"""The file intake: desired state from a local YAML or JSON document.

The file is checked every ``poll_interval_s`` with a ``stat`` (in a thread, as
all file I/O here); when its size, mtime or inode change it is read, parsed
and validated, and a :class:`Snapshot` goes to the dispatcher. A document
that does not validate is reported as a ``failing`` event and ignored: the
last good state stays in force, so a typo never stops running deployments.

Generations are assigned by :class:`~pilothouse.agent.intake.revisions.Revisions`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from pilothouse.agent.errors import DesiredStateError
from pilothouse.agent.events.bus import EventBus
from pilothouse.agent.intake import document
from pilothouse.agent.intake.revisions import Revisions
from pilothouse.agent.workers.intake_queue import IntakeQueue
from pilothouse.foundation.domain.changes import Snapshot
from pilothouse.foundation.domain.desired import DesiredState
from pilothouse.foundation.domain.vocabulary import Status

_Signature = tuple[int, int, int]


class FileIntake:
    """Watches a desired-state file and feeds snapshots to the dispatcher."""

    def __init__(
        self,
        path: Path,
        poll_interval_s: float,
        out: IntakeQueue,
        bus: EventBus,
    ) -> None:
        self.path = path
        self._poll = poll_interval_s
        self._out = out
        self._bus = bus
        self._signature: _Signature | None = None
        self._revisions = Revisions()
        self._last_error: str | None = None

    async def run(self, started: Callable[[], None]) -> None:
        """Poll the file until cancelled; ready after the first look."""
        await self.check()
        started()
        while True:
            await asyncio.sleep(self._poll)
            await self.check()

    async def check(self) -> None:
        """Read the file if it changed since the last look."""
        signature = await asyncio.to_thread(_signature, self.path)
        if signature == self._signature:
            return
        self._signature = signature
        if signature is None:
            self._invalid(f"{self.path}: file not found")
            return
        try:
            raw = await asyncio.to_thread(self.path.read_bytes)
            state = await asyncio.to_thread(document.parse, self.path, raw)
            self._check_environment(state)
        except OSError as exc:
            self._invalid(f"{self.path}: cannot read: {exc.strerror}")
            return
        except DesiredStateError as exc:
            self._invalid(str(exc))
            return
        self._accept(state)

    def _check_environment(self, state: DesiredState) -> None:
        pe = state.prediction_environment
        mine = self._bus.prediction_environment_id
        if pe is not None and pe.id != mine:
            raise DesiredStateError(
                f"prediction_environment.id is {pe.id!r}, but this agent manages {mine!r}",
                source=str(self.path),
            )

    def _accept(self, state: DesiredState) -> None:
        rev = self._revisions.assign(state)
        self._last_error = None
        self._out.put(Snapshot(rev.deployments, source=str(self.path)))
        self._bus.report(
            "desired_state.loaded",
            Status.INFORMATIONAL,
            f"desired state read from {self.path}: {len(rev.deployments)} deployments "
            f"({rev.changed} new or changed, {rev.removed} removed)",
            data={
                "revision": rev.number,
                "deployments": len(rev.deployments),
                "changed": rev.changed,
                "removed": rev.removed,
                "source": str(self.path),
            },
        )

    def _invalid(self, message: str) -> None:
        if message == self._last_error:
            return
        self._last_error = message
        self._bus.report(
            "desired_state.invalid",
            Status.FAILING,
            f"{message} (the previous desired state stays in force)",
            data={"source": str(self.path), "error": message},
        )


def _signature(path: Path) -> _Signature | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
