"""Events: immutable, time-ordered records of everything that happens.

Ids are ULIDs (48-bit millisecond time + 80 random bits, Crockford base32):
sortable as strings in the order they were made, unique without coordination,
so the hub can ingest idempotently by id. Within one millisecond the random
part is incremented, keeping ids strictly increasing in one process.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pilothouse.foundation.domain.vocabulary import Source, Status

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
"""Every 10-bit value as its two base32 digits."""

_SHIFTS = tuple(range(120, -1, -10))
_MS_MASK = (1 << 50) - 1
_RAND_MASK = (1 << 80) - 1


def _encode(ms: int, rand: int) -> str:
    """``ms`` in 10 base32 digits, then ``rand`` in 16: the 26 digits of ``ms << 80 | rand``.

    Two digits per lookup: an agent makes an id for every event, several per action,
    and a digit at a time was the costliest line of an action after the plugin call.
    """
    value = (ms & _MS_MASK) << 80 | (rand & _RAND_MASK)
    return "".join([_PAIRS[value >> shift & 1023] for shift in _SHIFTS])


class UlidFactory:
    """Makes strictly increasing ULIDs; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_rand = 0

    def new(self, now_ms: int | None = None) -> str:
        """Return the next id for the current (or given) millisecond."""
        ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        with self._lock:
            if ms <= self._last_ms:
                ms = self._last_ms
                rand = self._last_rand + 1
            else:
                rand = int.from_bytes(os.urandom(10), "big") >> 1  # headroom for increments
            self._last_ms, self._last_rand = ms, rand
        return _encode(ms, rand)


new_id = UlidFactory().new


@dataclass(frozen=True, slots=True)
class Event:
    """An immutable record of something that happened (fields as in DESIGN.md)."""

    type: str
    status: Status
    message: str
    prediction_environment_id: str
    source: Source = Source.AGENT
    deployment_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_id)
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError("Event.time must carry a timezone (use UTC)")

    def to_dict(self) -> dict[str, Any]:
        """Render as the JSON object used in logs, files and the hub API."""
        return {
            "id": self.id,
            "time": self.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "prediction_environment_id": self.prediction_environment_id,
            "deployment_id": self.deployment_id,
            "source": self.source.value,
            "type": self.type,
            "status": self.status.value,
            "message": self.message,
            "data": self.data,
        }
