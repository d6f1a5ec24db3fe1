"""Retry delays of notification deliveries: the one place they are computed.

The delay doubles from ``initial`` up to ``maximum`` and is drawn from the
upper half of that ceiling ("equal jitter"), so messages failing together (a
receiver down) do not come back in lock-step. A receiver's ``Retry-After``
raises the delay, never lowers it, and is itself bounded by ``maximum``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Backoff:
    """A delay schedule: ``delay(1)`` after the first failed attempt, growing to ``maximum``."""

    initial: float
    maximum: float
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after ``failures`` failed attempts (1 or more)."""
        ceiling = min(self.maximum, self.initial * 2.0 ** min(failures - 1, 62))
        wait = self.rng.uniform(ceiling / 2, ceiling) if ceiling > 0 else 0.0
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.maximum))
        return wait
