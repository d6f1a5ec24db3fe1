"""Exponential backoff with jitter: the one place retry delays are computed.

Every retry in Pilothouse — a supervised task's restart, a plugin action, the
hub link's reconnects, a notification's delivery, a crashed prediction server's
restart — takes its delay from :class:`Backoff`. Delays double from ``initial``
up to ``maximum``; each is drawn uniformly from its upper half so that many
deployments failing together do not retry in lock-step (the "equal jitter" of
the AWS architecture blog). A peer's ``Retry-After`` raises a delay, never
lowers it, and is itself bounded by ``maximum``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Backoff:
    """A delay schedule: ``delay(0)``, ``delay(1)``, … grow to ``maximum``."""

    initial: float
    maximum: float
    factor: float = 2.0
    jitter: bool = True
    """Draw each delay from the upper half of its ceiling; off where a test or
    a user-facing schedule needs the exact ceiling."""
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def ceiling(self, attempt: int) -> float:
        """The largest delay before retry number ``attempt`` (0-based)."""
        if self.initial <= 0:
            return 0.0
        return min(max(self.maximum, 0.0), self.initial * self.factor ** min(attempt, 64))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """The delay before retry number ``attempt`` (0-based), jittered.

        ``retry_after`` (a peer's ``Retry-After``) is a floor, bounded by ``maximum``.
        """
        ceiling = self.ceiling(attempt)
        wait = self.rng.uniform(ceiling / 2, ceiling) if self.jitter and ceiling > 0 else ceiling
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.maximum))
        return wait
