"""Exponential backoff with jitter: the one place retry delays are computed.

Delays double from ``initial`` up to ``maximum``; each is drawn uniformly from
its upper half so that many deployments failing together do not retry in
lock-step (the "equal jitter" of the AWS architecture blog).
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
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int) -> float:
        """The delay before retry number ``attempt`` (0-based), jittered."""
        if self.initial <= 0:
            return 0.0
        ceiling = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        return self.rng.uniform(ceiling / 2, ceiling)
