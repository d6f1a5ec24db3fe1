"""Whether a new model regressed against the one it replaced: a pure verdict on counts.

The rules are the deployment's ``settings.rollback``:

- **error rate**: the new model's server-error rate exceeds the old one's by more
  than ``max_error_rate_increase`` (absolute) *and* is at least
  ``max_error_rate_ratio`` times it (an old rate of zero: any rise past the
  increase counts);
- **p99 latency**: the new p99 is more than ``max_p99_ratio`` times the old one —
  and at least :data:`P99_FLOOR_S` more, because a p99 of a few milliseconds
  doubling is noise on a shared machine, not a regression. Latency is judged
  only when the old model had ``min_requests`` requests to compare with.

Nothing is judged before the new model has answered ``min_requests`` requests.
"""

from __future__ import annotations

from dataclasses import dataclass

from pilothouse.agent.monitoring.readings import RequestCounters
from pilothouse.foundation.domain.desired import RollbackSettings

P99_FLOOR_S = 0.01
"""A p99 rise smaller than this is never a latency regression."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one look: regressed or not, why, and the figures measured."""

    regressed: bool
    reason: str
    figures: dict[str, float | None]


def judge(
    new: RequestCounters, old: RequestCounters | None, rules: RollbackSettings
) -> Verdict | None:
    """The verdict on ``new`` against ``old``; None while ``new`` has too few requests."""
    if new.requests < rules.min_requests:
        return None
    old_rate = (old.error_rate if old is not None else None) or 0.0
    new_rate = new.error_rate or 0.0
    comparable = old is not None and old.requests >= rules.min_requests
    old_p99 = old.latency.quantile(0.99) if comparable and old is not None else None
    new_p99 = new.latency.quantile(0.99)
    figures: dict[str, float | None] = {
        "new_requests": float(new.requests),
        "new_server_errors": float(new.server_errors),
        "new_error_rate": round(new_rate, 6),
        "old_requests": float(old.requests) if old is not None else 0.0,
        "old_error_rate": round(old_rate, 6),
        "new_p99_s": _rounded(new_p99),
        "old_p99_s": _rounded(old_p99),
    }
    rise = new_rate - old_rate
    if rise > rules.max_error_rate_increase and (
        old_rate == 0.0 or new_rate >= rules.max_error_rate_ratio * old_rate
    ):
        return Verdict(
            True,
            f"error rate {new_rate:.1%} over {new.requests} requests against "
            f"{old_rate:.1%} before (more than +{rules.max_error_rate_increase:.1%} "
            f"and {rules.max_error_rate_ratio:g}x)",
            figures,
        )
    if (
        old_p99 is not None
        and new_p99 is not None
        and new_p99 > rules.max_p99_ratio * old_p99
        and new_p99 - old_p99 >= P99_FLOOR_S
    ):
        return Verdict(
            True,
            f"p99 latency {new_p99 * 1000:.1f} ms against {old_p99 * 1000:.1f} ms before "
            f"(more than {rules.max_p99_ratio:g}x)",
            figures,
        )
    return Verdict(False, "within thresholds", figures)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
