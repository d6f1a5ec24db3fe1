"""Drift status from PSI, as one pure function of the recent traffic and the thresholds.

A deployment's drift is judged on its current champion's windows of the last
``settings.drift.window_s``: with fewer than ``min_rows`` rows nothing is
judged (too little traffic says nothing); otherwise the worst feature's PSI
decides — ``failing`` from ``failing_psi``, ``at_risk`` from ``at_risk_psi``,
else ``passing`` — and the features at or past ``at_risk_psi`` are named,
worst first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pilothouse.foundation.domain.desired import DriftSettings
from pilothouse.foundation.domain.monitoring import Aggregate
from pilothouse.foundation.domain.vocabulary import Status


@dataclass(frozen=True, slots=True)
class Judgement:
    """A drift status and what it rests on."""

    status: Status
    features: dict[str, float] = field(default_factory=dict)
    """Features at or past ``at_risk_psi``, worst first, with their PSI."""
    worst: float = 0.0
    rows: int = 0
    package_id: str = ""
    prediction_psi: float | None = None

    def detail(self) -> dict[str, object]:
        """What the status rests on, as stored and sent with its event."""
        return {
            "features": self.features,
            "max_psi": self.worst,
            "rows": self.rows,
            "package_id": self.package_id,
            "prediction_psi": self.prediction_psi,
        }

    def message(self) -> str:
        """The event's message."""
        if not self.features:
            return f"no drift (max PSI {self.worst:.3f} over {self.rows} rows)"
        named = ", ".join(f"{name} PSI {psi:.3f}" for name, psi in self.features.items())
        return f"drift {self.status.value}: {named}"


def judge(agg: Aggregate, settings: DriftSettings) -> Judgement | None:
    """The drift status of ``agg`` (None: too few rows to judge)."""
    if agg.rows < settings.min_rows:
        return None
    psi = agg.drift()
    worst = max(psi.values(), default=0.0)
    if worst >= settings.failing_psi:
        status = Status.FAILING
    elif worst >= settings.at_risk_psi:
        status = Status.AT_RISK
    else:
        status = Status.PASSING
    named = sorted(
        ((n, v) for n, v in psi.items() if v >= settings.at_risk_psi), key=lambda kv: -kv[1]
    )
    return Judgement(
        status=status,
        features=dict(named),
        worst=worst,
        rows=agg.rows,
        package_id=agg.package_id,
        prediction_psi=agg.prediction_drift(),
    )
