"""The supervisor: named, guarded tasks that are restarted when they fail.

The one guard of every part. Each eternal coroutine — the agent's intake,
dispatcher and health reporter, the hub's presence watcher, notifier and
retention purger, a plugin's event-stream follower, the prediction server's
challenger worker — runs as a *guarded task*: an ``asyncio.Task`` owned by a
supervisor, named after what it does. When it raises (or returns, which an eternal task must
not do) the failure is reported through ``on_failure`` and the task is
started again after a backoff. When one task fails ``crash_loop_failures``
times within ``crash_loop_window_s`` seconds the supervisor stops restarting
it and resolves :meth:`Supervisor.fatal` with a :class:`CrashLoopError`; its
owner decides what that means (the agent shuts down and exits non-zero; a
plugin's environment turns ``failing``). A policy without a crash-loop limit
restarts for ever (the hub's tasks).

Readiness is structural, as with ``anyio.abc.TaskGroup.start``: a task body
receives a ``started`` callback; :meth:`Supervisor.start` returns once the
body calls it, and raises the body's error if it fails before that (a
misconfigured port, say) instead of restarting it.

Tasks are stopped in the order the agent chooses (:meth:`Supervisor.stop`):
cancelled and awaited, never left pending.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from pilothouse.foundation.aio.backoff import Backoff
from pilothouse.foundation.errors import CrashLoopError, PilothouseError

log = logging.getLogger("pilothouse.supervisor")

Started = Callable[[], None]
TaskBody = Callable[[Started], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """How a supervisor restarts a failed task, and when it gives up."""

    backoff_initial_s: float = 0.5
    """Delay before the first restart; doubles, with jitter."""
    backoff_max_s: float = 30.0
    """Upper bound of the restart delay."""
    crash_loop_failures: int | None = 5
    """This many failures within the window is a crash loop; ``None``: never give up."""
    crash_loop_window_s: float = 60.0
    """The crash-loop window; a run longer than this also resets the backoff."""


class TaskReturnedError(PilothouseError):
    """An eternal task returned; that is a bug, treated as a failure."""

    def __init__(self, name: str) -> None:
        super().__init__(f"task {name!r} returned, but it should run until cancelled")


@dataclass(frozen=True, slots=True)
class TaskFailure:
    """One failure of a guarded task, as reported to ``on_failure``."""

    task: str
    error: BaseException
    failures_in_window: int
    restart_in_s: float | None
    """``None`` when the task will not be restarted (crash loop)."""


class Supervisor:
    """Owns the agent's guarded tasks; restarts them and detects crash loops."""

    def __init__(
        self,
        policy: RestartPolicy,
        on_failure: Callable[[TaskFailure], None] = lambda failure: None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = policy
        self._on_failure = on_failure
        self._clock = clock
        self._backoff = Backoff(policy.backoff_initial_s, policy.backoff_max_s)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running: dict[str, bool] = {}
        self._fatal: asyncio.Future[CrashLoopError] = asyncio.get_running_loop().create_future()
        self.restarts: Counter[str] = Counter()

    async def start(self, name: str, body: TaskBody) -> None:
        """Start ``body`` as the guarded task ``name``; return once it says it started."""
        if name in self._tasks:
            raise ValueError(f"a task named {name!r} is already supervised")
        first_ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._guard(name, body, first_ready), name=name)
        self._tasks[name] = task
        try:
            await first_ready
        except BaseException:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            del self._tasks[name]
            raise

    async def start_eternal(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        """Start a body that needs no readiness signal: it counts as started at once."""

        async def run(started: Started) -> None:
            started()
            await body()

        await self.start(name, run)

    async def fatal(self) -> CrashLoopError:
        """Wait until a task crash-loops; return the error that ends the agent."""
        return await asyncio.shield(self._fatal)

    def alive(self) -> dict[str, bool]:
        """Each task's liveness: started and not waiting out a restart backoff."""
        return {name: self._running.get(name, False) for name in self._tasks}

    async def stop(self, names: Iterable[str]) -> None:
        """Cancel the named tasks and wait until they have ended."""
        tasks = [self._tasks.pop(n) for n in names if n in self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def stop_all(self) -> None:
        """Cancel every remaining task, in reverse order of start."""
        await self.stop(reversed(list(self._tasks)))

    async def _guard(self, name: str, body: TaskBody, first_ready: asyncio.Future[None]) -> None:
        failures: deque[float] = deque()
        attempt = 0
        while True:
            began = self._clock()
            error = await self._run_once(name, body, first_ready)
            self._running[name] = False
            if not first_ready.done():
                first_ready.set_exception(error)
                return
            now = self._clock()
            failures.append(now)
            while failures and now - failures[0] > self._settings.crash_loop_window_s:
                failures.popleft()
            if now - began > self._settings.crash_loop_window_s:
                attempt = 0  # it ran well for a while: start the backoff over
            limit = self._settings.crash_loop_failures
            if limit is not None and len(failures) >= limit:
                self._give_up(name, error, len(failures))
                return
            delay = self._backoff.delay(attempt)
            attempt += 1
            self.restarts[name] += 1
            self._on_failure(TaskFailure(name, error, len(failures), delay))
            await asyncio.sleep(delay)

    async def _run_once(
        self, name: str, body: TaskBody, first_ready: asyncio.Future[None]
    ) -> BaseException:
        def started() -> None:
            self._running[name] = True
            if not first_ready.done():
                first_ready.set_result(None)

        try:
            await body(started)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("task %r failed: %s", name, exc, exc_info=exc)
            return exc
        return TaskReturnedError(name)

    def _give_up(self, name: str, error: BaseException, count: int) -> None:
        crash = CrashLoopError(name, count, self._settings.crash_loop_window_s, error)
        self._on_failure(TaskFailure(name, error, count, None))
        if not self._fatal.done():
            self._fatal.set_result(crash)
