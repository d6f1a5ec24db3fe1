"""Time as the hub stores it: integer microseconds since the epoch, in UTC.

Integers sort and compare fast in SQLite indexes and never carry a time zone;
every time leaves the hub as an aware UTC ``datetime`` (RFC 3339 with ``Z`` in
JSON). A naive time given by a client is taken to be UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
