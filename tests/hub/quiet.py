"""Proving that the hub's notification dispatcher has nothing left to do, instead of sleeping.

"No other message is sent" cannot be waited out: a sleep passes whether the
dispatcher looked at the new time or not. :class:`WatchedClock` is the hub's
background clock with a window on the dispatcher: the dispatcher is *idle*
when it blocks on the clock with no wake-up pending, nothing due at the
current time and no send in flight. Its loop (route, flush, claim, then wait
for the next due moment) only blocks after a full round at a time when
nothing is due, so once it is idle every message due so far has reached its
receiver, and no other will come until time moves or an event arrives.

The dispatcher is found by its task name; if that changes, :meth:`until_idle`
times out and the test fails instead of passing unseen.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from pilothouse.hub.clock import Clock, ManualClock

DISPATCHER_TASK = "notification dispatcher"
SEND_TASK_PREFIX = "notification delivery "


class WatchedClock:
    """A hub clock (manual or wall) that knows when the notification dispatcher is idle."""

    def __init__(self, inner: Clock) -> None:
        self.inner = inner
        self._blocked: tuple[asyncio.Event, int | None] | None = None
        self.dispatcher_waits = 0

    def now_us(self) -> int:
        return self.inner.now_us()

    def now(self) -> datetime:
        assert isinstance(self.inner, ManualClock)
        return self.inner.now()

    def advance(self, seconds: float) -> None:
        assert isinstance(self.inner, ManualClock), "only a manual clock is advanced"
        self.inner.advance(seconds)

    async def wait(self, wake: asyncio.Event, until_us: int | None) -> None:
        task = asyncio.current_task()
        if task is None or task.get_name() != DISPATCHER_TASK:
            await self.inner.wait(wake, until_us)
            return
        self.dispatcher_waits += 1
        self._blocked = (wake, until_us)
        try:
            await self.inner.wait(wake, until_us)
        finally:
            self._blocked = None

    def idle(self) -> bool:
        """The dispatcher waits for the future, with nothing pending and nothing being sent."""
        if self._blocked is None:
            return False
        wake, until_us = self._blocked
        if wake.is_set() or (until_us is not None and until_us <= self.now_us()):
            return False
        sending = [t for t in asyncio.all_tasks() if t.get_name().startswith(SEND_TASK_PREFIX)]
        return not [t for t in sending if not t.done()]

    async def until_idle(self, timeout: float = 10.0) -> None:
        """Wait until the dispatcher is idle; fail the test after ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                while not self.idle():  # noqa: ASYNC110 - state of other tasks
                    await asyncio.sleep(0.01)
        except TimeoutError:
            raise AssertionError(
                f"the notification dispatcher did not go idle within {timeout}s "
                f"({self.dispatcher_waits} waits seen: is its task still named "
                f"{DISPATCHER_TASK!r}?)"
            ) from None
