"""The action journal: what each deployment last reached, and the action in flight, on disk.

A SIGKILL can end the agent between the moment it asks the plugin for an action
and the moment it learns the outcome. The worker records the action here
*before* the plugin is called and its outcome after, so the next start knows
which actions may be half done: reconcile redoes each of them unless the
plugin's report proves it completed. The journal also keeps the spec each
deployment last reached — settings and relaunch token included, which no
plugin reports — so a relaunch asked for just before a crash is not mistaken
for one already done because the same model runs.

Storage is ``<state_dir>/actions.db``, SQLite (WAL, ``synchronous=NORMAL``: a
committed transaction survives a crash of the agent; a power loss may take the
last ones, and then those actions are proven or redone like any other), used
from one dedicated thread, never from the event loop. Writes are
group-committed: every write that arrives while one transaction commits goes
into the next, so ten thousand deployments launching together cost a few
transactions, not ten thousand.

The file is a log: a transaction appends its batch as a few JSON documents
(rows ``[id, outcome, applied, in_flight]``, serialized on the loop by orjson)
to one table, so a commit costs SQLite a page write per 4 KB, not an index
update per row — the action waiting for its start to be on disk waits for
that, and the thread leaves the GIL and the CPU to the event loop. What each
deployment reached is the log replayed in order. Once the log holds a few
times more rows than there are deployments, the writer *compacts* it between
batches: one transaction replaces it with one row per deployment.

Only the start of an action is awaited (it must be on disk before the plugin
is called); its outcome is written with the next batch, and a crash before
that leaves the action in flight: proven done or redone at the next start.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator
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
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY,
    body BLOB NOT NULL
);
"""
# ``body``: a JSON array of rows [id, outcome, applied, in_flight]. ``outcome`` 1 when the
# row settles an action (``applied`` is what the deployment reached, ``in_flight`` the
# action begun after it, if any), 0 when it only begins one (the ``applied`` already
# recorded is kept). A deployment with neither is gone from the journal.

_APPEND = "INSERT INTO batches (body) VALUES (?)"
_LOG = "SELECT body FROM batches ORDER BY seq"

_LEGACY_FOUND = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'deployments'"
"""An earlier version kept one row per deployment in ``deployments``: read once, then dropped."""


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


_COMPACT_MIN_ROWS = 4096
"""Never compact a log shorter than this (a few hundred KB; replayed in milliseconds)."""

_COMPACT_RATIO = 3
"""Compact once the log holds this many times more rows than there are deployments..."""

_QUIET_S = 0.5
"""... and no batch came for this long;"""

_OVERDUE = 4
"""or at once, if the log has grown this many times beyond that."""

_serialize = DesiredDeployment.__pydantic_serializer__.to_json


def _to_json(spec: DesiredDeployment) -> bytes:
    """A spec as JSON without its default values (nor ``model_dump_json``'s keyword handling).

    Defaults left out make a spec of default settings a tenth of its full size (its
    monitoring policies alone are ~500 bytes): ten thousand deployments log, replay and
    compact that much less. A later version replays such a row with its own defaults —
    the settings a deployment reached are then read as the new defaults, as its desired
    state is.
    """
    return _serialize(spec, exclude_defaults=True)


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
    """Per deployment, the spec it reached and the action in flight; a log on disk."""

    def __init__(
        self, path: Path, *, on_error: Callable[[JournalError], None] = lambda exc: None
    ) -> None:
        self.path = path
        self._on_error = on_error
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._db: sqlite3.Connection | None = None
        # Pending rows, in two maps of strings rather than an object per row: a thousand
        # actions waiting for their batch would otherwise be a thousand more objects for
        # the garbage collector to move to its oldest generation and scan.
        self._begun: dict[str, str] = {}
        """Actions begun since the last batch was taken: their ``in_flight`` text."""
        self._settled: dict[str, str | None] = {}
        """Outcomes since the last batch was taken: ``applied`` text (``None``: nothing runs)."""
        self._specs: dict[str, DesiredDeployment] = {}
        self._texts: dict[str, str] = {}
        """The spec of each action in flight, serialized: settling it costs nothing more."""
        self._batch: _Commit | None = None
        """Resolved when the rows pending now are committed."""
        self._writer: asyncio.Task[None] | None = None
        self._logged = 0
        """Rows in the log now."""
        self._compact_at = _COMPACT_MIN_ROWS
        """Rows in the log that make the writer compact it, at the next quiet time."""
        self._wake: asyncio.Future[None] | None = None
        """Set while the writer waits for a quiet time: a new batch resolves it."""
        self._closing = False

    async def open(self) -> dict[str, JournalEntry]:
        """Open (or create) the file; return what the previous run left in it."""
        try:
            state, self._logged = await self._run(self._open)
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot open the action journal {self.path}: {exc}") from exc
        except (ValueError, TypeError) as exc:  # a log this version cannot replay
            raise JournalError(f"cannot read the action journal {self.path}: {exc}") from exc
        self._compact_at = _threshold(len(state))
        return {dep_id: _entry(*spec_texts) for dep_id, spec_texts in state.items()}

    async def begin(self, deployment_id: str, action: Action, spec: DesiredDeployment) -> None:
        """Record that ``action`` is about to be asked of the plugin; return once on disk."""
        text = self._text(deployment_id, spec)
        self._begun[deployment_id] = f'{{"action":"{action.value}","spec":{text}}}'
        await self._queued()

    def settle(self, deployment_id: str, applied: DesiredDeployment | None) -> None:
        """Record the outcome of the action in flight (the spec now reached, or none).

        Not awaited: it is written with the next batch. Until then the action
        counts as in flight, which a crash turns into "proven done or redone".
        """
        text = None if applied is None else self._text(deployment_id, applied)
        self._begun.pop(deployment_id, None)  # not written yet: the outcome replaces it
        self._settled[deployment_id] = text
        self._specs.pop(deployment_id, None)  # the next action is for another spec
        self._texts.pop(deployment_id, None)
        self._queued()

    async def close(self) -> None:
        """Write what is still pending, then close the file and the thread."""
        self._closing = True
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
        try:
            if self._writer is not None:
                await asyncio.gather(self._writer, return_exceptions=True)
            if self._db is not None:
                payload, rows = self._take()
                await self._run(lambda: self._commit(payload, rows))
                await self._run(self._db.close)
                self._db = None
        finally:
            self._thread.shutdown(wait=True)

    # --- group commit -----------------------------------------------------------------

    def _text(self, deployment_id: str, spec: DesiredDeployment) -> str:
        if self._specs.get(deployment_id) is spec:
            return self._texts[deployment_id]
        text = _to_json(spec).decode()
        self._specs[deployment_id], self._texts[deployment_id] = spec, text
        return text

    def _take(self) -> tuple[bytes, int]:
        """The pending rows as a batch (one JSON document) and how many rows it holds."""
        settled, begun = self._settled, self._begun
        self._settled, self._begun = {}, {}
        rows = [[k, 1, a, begun.pop(k, None)] for k, a in settled.items()]
        rows += [[k, 0, None, f] for k, f in begun.items()]
        return orjson.dumps(rows), len(rows)

    def _queued(self) -> _Commit:
        """The next batch (the pending rows); resolved once it is committed."""
        if self._batch is None:
            self._batch = _Commit(loop=asyncio.get_running_loop())
        if self._writer is None or self._writer.done():
            self._writer = tasks.watched(self._write_batches(), "action journal writer", log)
        elif self._wake is not None and not self._wake.done():
            self._wake.set_result(None)  # the writer waits for a quiet time to compact
        return self._batch

    async def _write_batches(self) -> None:
        """Commit what is pending, batch after batch; compact the log when all is quiet."""
        while True:
            if self._batch is not None:
                await self._write_batch()
            elif self._closing or self._logged < self._compact_at:
                return
            elif self._logged >= _OVERDUE * self._compact_at or await self._quiet():
                await self._compact()
            # else woken by a new batch, or by close: look again

    async def _quiet(self) -> bool:
        """Wait a moment for more rows; tell whether none came (a time to compact).

        A compaction holds up the batches behind it, and its replay (Python) takes
        turns at the GIL with the event loop: it waits for a pause in the actions,
        unless the log has grown far too long for that.
        """
        wake = self._wake = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(wake, _QUIET_S)
        except TimeoutError:
            return True
        finally:
            self._wake = None
        return False

    async def _write_batch(self) -> None:
        payload, rows = self._take()
        done, self._batch = self._batch, None
        assert done is not None
        try:
            await self._run(lambda: self._commit(payload, rows))
        except (OSError, sqlite3.Error) as exc:
            error = JournalError(f"cannot write the action journal {self.path}: {exc}")
            log.error("%s", error)
            self._on_error(error)
            done.set_exception(error)
            done.exception()  # retrieved: a batch of outcomes only has no waiter
        else:
            self._logged += rows
            # A batch names each deployment once: so many deployments at least.
            self._compact_at = max(self._compact_at, _threshold(rows))
            done.set_result(None)

    async def _compact(self) -> None:
        """Replace the log by one row per deployment (batches arriving meanwhile wait)."""
        try:
            live = await self._run(self._rewrite)
        except (OSError, sqlite3.Error, ValueError, TypeError) as exc:
            # Nothing is lost (the log stays whole, only longer): a warning, tried again later.
            log.warning("cannot compact the action journal %s: %s", self.path, exc)
            self._compact_at = self._logged + _threshold(0)
        else:
            self._logged = live
            self._compact_at = _threshold(live)

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    # --- in the journal thread ----------------------------------------------------------

    def _open(self) -> tuple[dict[str, tuple[str | None, str | None]], int]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(_SCHEMA)
            self._migrate(db)
            state, count = _replay(r[0] for r in db.execute(_LOG))
        return dict(state.rows()), count

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Move the rows of an earlier version's table into the log, as its first batch."""
        if db.execute(_LEGACY_FOUND).fetchone() is None:
            return
        rows = db.execute("SELECT id, applied, in_flight FROM deployments")
        db.execute(_APPEND, (orjson.dumps([[str(r[0]), 1, r[1], r[2]] for r in rows]),))
        db.execute("DROP TABLE deployments")

    def _commit(self, payload: bytes, rows: int) -> None:
        if not rows:
            return
        assert self._db is not None
        # One statement, its own transaction: each call into SQLite gives up the GIL and
        # must take it back from the event loop (up to 5 ms each while the loop is busy).
        self._db.execute(_APPEND, (payload,))

    def _rewrite(self) -> int:
        """Compact: the log replayed, written back as one row per deployment."""
        assert self._db is not None
        db = self._db
        with db:
            db.execute("BEGIN IMMEDIATE")
            state, _ = _replay(r[0] for r in db.execute(_LOG))  # a batch at a time
            db.execute("DELETE FROM batches")
            db.execute(_APPEND, (orjson.dumps([[k, 1, a, f] for k, (a, f) in state.rows()]),))
        return len(state)


def _threshold(live: int) -> int:
    return max(_COMPACT_MIN_ROWS, _COMPACT_RATIO * live)


class _State:
    """What the log says of each deployment, as two maps of strings.

    Strings, not an object per deployment: a compaction of ten thousand deployments
    then adds no object for the garbage collector to scan, and little memory.
    """

    __slots__ = ("applied", "in_flight")

    def __init__(self) -> None:
        self.applied: dict[str, str] = {}
        self.in_flight: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.applied.keys() | self.in_flight.keys())

    def rows(self) -> Iterator[tuple[str, tuple[str | None, str | None]]]:
        """Each deployment with its ``applied`` and ``in_flight`` texts."""
        for dep_id in self.applied.keys() | self.in_flight.keys():
            yield dep_id, (self.applied.get(dep_id), self.in_flight.get(dep_id))


def _replay(bodies: Iterable[bytes | str]) -> tuple[_State, int]:
    """The log replayed in order, a batch at a time; and how many rows were read."""
    state = _State()
    count = 0
    for body in bodies:
        rows = orjson.loads(body)
        count += len(rows)
        for dep_id, outcome, applied, in_flight in rows:
            if outcome:  # settled: what it reached (an action begun only keeps it)
                _put(state.applied, dep_id, applied)
            _put(state.in_flight, dep_id, in_flight)
    return state, count


def _put(texts: dict[str, str], dep_id: str, text: str | None) -> None:
    if text is None:
        texts.pop(dep_id, None)
    else:
        texts[dep_id] = text


def _entry(applied: str | None, in_flight: str | None) -> JournalEntry:
    """A row as an entry; one this version cannot read is marked (reconcile trusts none of it)."""
    try:
        spec = None if applied is None else DesiredDeployment.model_validate_json(applied)
        flight: InFlight | None = None
        if in_flight is not None:
            doc: dict[str, Any] = orjson.loads(in_flight)
            flight = InFlight(Action(doc["action"]), DesiredDeployment.model_validate(doc["spec"]))
    except (orjson.JSONDecodeError, ValidationError, KeyError, ValueError, TypeError):
        return JournalEntry(applied=None, in_flight=None, unreadable=True)
    return JournalEntry(applied=spec, in_flight=flight)
