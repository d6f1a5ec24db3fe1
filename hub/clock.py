"""Time as the hub stores it, and the clock that background work waits on.

Times are integer microseconds since the epoch, in UTC: integers sort and
compare fast in SQLite indexes and never carry a time zone; every time leaves
the hub as an aware UTC ``datetime`` (RFC 3339 with ``Z`` in JSON). A naive time
given by a client is taken to be UTC.

Work that waits for a moment — notification group windows, repeat intervals,
retry backoff, the retention purge — asks a :class:`Clock` instead of sleeping,
so it can run on a :class:`ManualClock` in tests: the test moves time forward
with :meth:`ManualClock.advance` and every waiter wakes to look at the new
time, and nothing sleeps through a window for real.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Protocol

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LONGEST_WAIT_S = 60.0  # re-read the wall clock at least this often (it may be stepped)


def now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch; a naive ``moment`` is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    """The aware UTC time ``us`` microseconds after the epoch."""
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


def now_us() -> int:
    """The current time in microseconds since the epoch."""
    return to_us(now())


class Clock(Protocol):
    """What background work asks for the time, and how it waits for a moment."""

    def now_us(self) -> int:
        """The current time in microseconds since the epoch."""

    async def wait(self, wake: asyncio.Event, until_us: int | None) -> None:
        """Return when ``wake`` is set, at ``until_us`` (None: never), or earlier.

        Callers loop and look at the time again: an early return is allowed.
        """


class SystemClock:
    """The wall clock."""

    def now_us(self) -> int:
        """The current time in microseconds since the epoch."""
        return now_us()

    async def wait(self, wake: asyncio.Event, until_us: int | None) -> None:
        """Wait for ``wake`` or the moment ``until_us``, at most a minute at a time."""
        if wake.is_set():
            return
        timeout = _LONGEST_WAIT_S
        if until_us is not None:
            timeout = min(timeout, max(0.0, (until_us - self.now_us()) / 1e6))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await wake.wait()


class ManualClock:
    """A clock that moves only when told to (tests, simulations)."""

    def __init__(self, start: datetime) -> None:
        self._us = to_us(start)
        self._waiting: set[asyncio.Event] = set()

    def now_us(self) -> int:
        """The clock's current time."""
        return self._us

    def now(self) -> datetime:
        """The clock's current time as an aware UTC datetime."""
        return from_us(self._us)

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every waiter."""
        self._us += round(seconds * 1_000_000)
        for wake in list(self._waiting):
            wake.set()

    async def wait(self, wake: asyncio.Event, until_us: int | None) -> None:
        """Wait for ``wake``, or for an :meth:`advance` when ``until_us`` is given."""
        if wake.is_set() or (until_us is not None and until_us <= self._us):
            return
        if until_us is not None:
            self._waiting.add(wake)
        try:
            await wake.wait()
        finally:
            self._waiting.discard(wake)


def us(seconds: float) -> int:
    """Seconds as microseconds, the unit of every time the hub stores."""
    return round(seconds * 1_000_000)
