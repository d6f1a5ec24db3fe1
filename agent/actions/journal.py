"""The action journal: what each deployment last reached, and the action in flight, on disk.

A SIGKILL can end the agent between the moment it asks the plugin for an action
and the moment it learns the outcome. The worker records the action here
*before* the plugin is called and its outcome after, so the next start knows
which actions may be half done: reconcile redoes each of them unless the
plugin's report proves it completed. The journal also keeps the spec each
deployment last reached — settings and relaunch token included, which no
plugin reports — so a relaunch asked for just before a crash is not mistaken
for one already done because the same model runs.

Storage is one SQLite row per deployment in ``<state_dir>/actions.db`` (WAL,
``synchronous=NORMAL``: a committed row survives a crash of the agent; a power
loss may take the last rows, and then those actions are proven or redone like
any other), used from one dedicated thread, never from the event loop. Writes
are group-committed: every write that arrives while one transaction commits
goes into the next, so ten thousand deployments launching together cost a few
transactions, not ten thousand. A batch reaches SQLite as one JSON document
(serialized on the loop by orjson, unpacked by SQLite's ``json_each``), so the
journal thread spends its time in SQLite with the GIL released, not binding
ten thousand rows one by one while the event loop waits for the GIL.

Only the start of an action is awaited (it must be on disk before the plugin
is called); its outcome is written with the next batch, and a crash before
that leaves the action in flight: proven done or redone at the next start.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError

from pilothouse.agent.errors import JournalError
from pilothouse.foundation.aio import tasks
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.vocabulary import Action

T = TypeVar("T")

log = logging.getLogger("pilothouse.journal")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    id TEXT PRIMARY KEY,
    applied TEXT,
    in_flight TEXT
);
"""

# A batch is one JSON array of rows [id, outcome, applied, in_flight]: ``outcome`` 1 when
# the row settles an action (applied is written, in_flight cleared), 0 when it only
# starts one (in_flight is written, the applied spec already stored is kept).
_SETTLE = """
INSERT INTO deployments (id, applied, in_flight)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[2]'), json_extract(value, '$[3]')
FROM json_each(?1) WHERE json_extract(value, '$[1]') = 1
ON CONFLICT (id) DO UPDATE SET applied = excluded.applied, in_flight = excluded.in_flight
"""

_BEGIN = """
INSERT INTO deployments (id, applied, in_flight)
SELECT json_extract(value, '$[0]'), NULL, json_extract(value, '$[3]')
FROM json_each(?1) WHERE json_extract(value, '$[1]') = 0
ON CONFLICT (id) DO UPDATE SET in_flight = excluded.in_flight
"""

_DELETE = """
DELETE FROM deployments WHERE applied IS NULL AND in_flight IS NULL AND id IN (
    SELECT json_extract(value, '$[0]') FROM json_each(?1) WHERE json_extract(value, '$[1]') = 1
)
"""


class _Commit(asyncio.Future[None]):
    """The commit of one batch, awaited by every worker whose row is in it.

    A worker cancelled while it waits must not cancel the commit the others
    wait for, so this future refuses cancellation: the cancelled worker's task
    then ends with ``CancelledError`` as soon as the commit is done (asyncio
    defers a task's cancellation when the future it awaits refuses it). This
    costs far less than an ``asyncio.shield`` per waiter, with thousands waiting.
    """

    def cancel(self, msg: object = None) -> bool:
        """Refuse: the commit belongs to every waiter."""
        return False


@dataclass(slots=True)
class _Row:
    """What a batch writes for one deployment; a later write merges into an earlier one."""

    outcome: bool = False
    applied: str | None = None
    in_flight: str | None = None

    def json(self, deployment_id: str) -> list[object]:
        return [deployment_id, int(self.outcome), self.applied, self.in_flight]


_CHUNK = 500
"""Rows per JSON document: SQLite parses each one whole, per statement."""


@dataclass(frozen=True, slots=True)
class InFlight:
    """An action the plugin was asked for and whose outcome was not recorded."""

    action: Action
    spec: DesiredDeployment


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """What the journal knows of one deployment."""

    applied: DesiredDeployment | None
    """The spec the deployment last reached (``None``: nothing runs, or not known)."""
    in_flight: InFlight | None
    """The action started and not finished when the agent last stopped, if any."""
    unreadable: bool = False
    """The row could not be read (written by another version): trust nothing of it."""


class ActionJournal:
    """One row per deployment: the spec it reached and the action in flight."""

    def __init__(
        self, path: Path, *, on_error: Callable[[JournalError], None] = lambda exc: None
    ) -> None:
        self.path = path
        self._on_error = on_error
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._db: sqlite3.Connection | None = None
        self._pending: dict[str, _Row] = {}
        self._texts: dict[str, tuple[DesiredDeployment, str]] = {}
        """The spec of each action in flight, serialized: settling it costs nothing more."""
        self._batch: _Commit | None = None
        """Resolved when the rows pending now are committed."""
        self._writer: asyncio.Task[None] | None = None

    async def open(self) -> dict[str, JournalEntry]:
        """Open (or create) the file; return what the previous run left in it."""
        try:
            rows = await self._run(self._open)
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot open the action journal {self.path}: {exc}") from exc
        return {dep_id: _entry(applied, in_flight) for dep_id, (applied, in_flight) in rows.items()}

    async def begin(self, deployment_id: str, action: Action, spec: DesiredDeployment) -> None:
        """Record that ``action`` is about to be asked of the plugin; return once on disk."""
        in_flight = f'{{"action":"{action.value}","spec":{self._text(deployment_id, spec)}}}'
        self._row(deployment_id).in_flight = in_flight
        await self._queued()

    def settle(self, deployment_id: str, applied: DesiredDeployment | None) -> None:
        """Record the outcome of the action in flight (the spec now reached, or none).

        Not awaited: it is written with the next batch. Until then the action
        counts as in flight, which a crash turns into "proven done or redone".
        """
        row = self._row(deployment_id)
        row.outcome, row.in_flight = True, None
        row.applied = None if applied is None else self._text(deployment_id, applied)
        self._texts.pop(deployment_id, None)  # the next action is for another spec
        self._queued()

    async def close(self) -> None:
        """Write what is still pending, then close the file and the thread."""
        try:
            if self._writer is not None:
                await asyncio.gather(self._writer, return_exceptions=True)
            if self._db is not None:
                payload, self._pending = _payload(self._pending), {}
                await self._run(lambda: self._commit(payload))
                await self._run(self._db.close)
                self._db = None
        finally:
            self._thread.shutdown(wait=True)

    # --- group commit -----------------------------------------------------------------

    def _text(self, deployment_id: str, spec: DesiredDeployment) -> str:
        known = self._texts.get(deployment_id)
        if known is not None and known[0] is spec:
            return known[1]
        text = spec.model_dump_json()
        self._texts[deployment_id] = (spec, text)
        return text

    def _row(self, deployment_id: str) -> _Row:
        row = self._pending.get(deployment_id)
        if row is None:
            row = self._pending[deployment_id] = _Row()
        return row

    def _queued(self) -> _Commit:
        """The next batch (the pending rows); resolved once it is committed."""
        if self._batch is None:
            self._batch = _Commit(loop=asyncio.get_running_loop())
        if self._writer is None or self._writer.done():
            self._writer = tasks.watched(self._write_batches(), "action journal writer", log)
        return self._batch

    async def _write_batches(self) -> None:
        """Commit what is pending, batch after batch, until nothing is; resolve each batch."""
        while self._batch is not None:
            payload, self._pending = _payload(self._pending), {}
            done, self._batch = self._batch, None
            try:
                await self._run(lambda: self._commit(payload))  # noqa: B023 - awaited here
            except (OSError, sqlite3.Error) as exc:
                error = JournalError(f"cannot write the action journal {self.path}: {exc}")
                log.error("%s", error)
                self._on_error(error)
                done.set_exception(error)
                done.exception()  # retrieved: a batch of outcomes only has no waiter
            else:
                done.set_result(None)

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    # --- in the journal thread ----------------------------------------------------------

    def _open(self) -> dict[str, tuple[str | None, str | None]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        rows = db.execute("SELECT id, applied, in_flight FROM deployments")
        return {str(r[0]): (r[1], r[2]) for r in rows}

    def _commit(self, payload: list[str]) -> None:
        if not payload:
            return
        assert self._db is not None
        with self._db:  # one transaction for the whole batch
            self._db.execute("BEGIN IMMEDIATE")
            for chunk in payload:
                self._db.execute(_SETTLE, (chunk,))
                self._db.execute(_BEGIN, (chunk,))
                self._db.execute(_DELETE, (chunk,))


def _payload(pending: dict[str, _Row]) -> list[str]:
    """A batch as JSON arrays of rows for ``json_each``, in chunks that SQLite parses cheaply."""
    rows = [row.json(dep_id) for dep_id, row in pending.items()]
    return [orjson.dumps(rows[i : i + _CHUNK]).decode() for i in range(0, len(rows), _CHUNK)]


def _spec_text(spec: DesiredDeployment | None) -> str | None:
    return None if spec is None else spec.model_dump_json()


def _entry(applied: str | None, in_flight: str | None) -> JournalEntry:
    """A row as an entry; one this version cannot read is marked (reconcile trusts none of it)."""
    try:
        spec = None if applied is None else DesiredDeployment.model_validate_json(applied)
        flight: InFlight | None = None
        if in_flight is not None:
            doc: dict[str, Any] = orjson.loads(in_flight)
            flight = InFlight(Action(doc["action"]), DesiredDeployment.model_validate(doc["spec"]))
    except (orjson.JSONDecodeError, ValidationError, KeyError, ValueError):
        return JournalEntry(applied=None, in_flight=None, unreadable=True)
    return JournalEntry(applied=spec, in_flight=flight)
