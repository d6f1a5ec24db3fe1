"""Owning a task to its end: one-shot tasks whose failure is logged, and cancelling them.

Every task has an owner that awaits it; these are the owner's two tools for
tasks that are not eternal (eternal ones run under the supervisor).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel a task we own and wait for its end; a cancellation of our own still propagates."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise


def watched(
    coro: Coroutine[Any, Any, None], name: str, logger: logging.Logger
) -> asyncio.Task[None]:
    """Start a one-shot task its caller owns; its failure (not its cancellation) is logged.

    For work that ends (a restore at start). Eternal work runs under a
    :class:`~pilothouse.foundation.aio.supervisor.Supervisor` instead, which also restarts it.
    """
    task = asyncio.create_task(coro, name=name)

    def report(done: asyncio.Task[None]) -> None:
        if not done.cancelled() and done.exception() is not None:
            logger.error("task %r failed", name, exc_info=done.exception())

    task.add_done_callback(report)
    return task
