"""Guarded background tasks: named, restarted with backoff, never silently dead.

The hub's eternal coroutines (the presence watcher, the notification
dispatcher, the retention purger) run through
:func:`guarded`: a failure is logged with the task's name and the body is
started again after a delay that doubles up to a bound (reset once a run has
lasted longer than that bound). Cancellation is the only way out; whoever
created the task cancels and awaits it (the app's ``cleanup_ctx``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("pilothouse.hub.tasks")


async def guarded(
    name: str,
    body: Callable[[], Awaitable[None]],
    *,
    initial_delay_s: float = 0.5,
    max_delay_s: float = 30.0,
) -> None:
    """Run ``body`` until cancelled, restarting it after each failure or return."""
    loop = asyncio.get_running_loop()
    delay = initial_delay_s
    while True:
        began = loop.time()
        error: Exception | None = None
        try:
            await body()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = exc
        if loop.time() - began > max_delay_s:
            delay = initial_delay_s
        what = "failed" if error else "returned, but it should run until cancelled"
        log.error("task %r %s; restarting in %.1fs", name, what, delay, exc_info=error)
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay_s)


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel a task we own and wait for its end; a cancellation of our own still propagates."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
