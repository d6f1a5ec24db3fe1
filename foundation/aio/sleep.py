"""Interruptible sleep: a wait that a stop request ends at once.

Backoffs and periodic loops sleep through :func:`sleep_or_wake`, so a shutdown
never waits out a delay (kopf's ``sleep_or_wait``).
"""

from __future__ import annotations

import asyncio


async def sleep_or_wake(delay: float, wake: asyncio.Event) -> bool:
    """Sleep ``delay`` seconds or until ``wake`` is set; return whether it was set."""
    if wake.is_set():
        return True
    if delay <= 0:
        return False
    try:
        async with asyncio.timeout(delay):
            await wake.wait()
    except TimeoutError:
        return False
    return True
