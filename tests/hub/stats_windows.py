"""Statistics windows for hub tests, built directly (no agent), and ways to post and read them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from pilothouse.foundation.domain.events import new_id
from pilothouse.foundation.domain.monitoring import (
    LATENCY_BOUNDS,
    Association,
    ChallengerWindow,
    Distribution,
    FeatureWindow,
    LatencyHistogram,
    StatsWindow,
)
from tests.hub.support import V1, answer, ok

AGENT_MONITORING = f"{V1}/agent/monitoring"
EDGES = [0.0, 1.0, 2.0, 3.0, 4.0]
BASELINE = [0.25, 0.25, 0.25, 0.25]
NORMAL = [25, 25, 25, 25]
"""A feature's counts as the baseline has them (PSI 0)."""
SHIFTED = [2, 3, 15, 80]
"""A feature's counts far from the baseline (PSI well past 0.25)."""
SLIGHT = [18, 22, 27, 33]
"""Counts a little off the baseline (PSI between 0.05 and 0.1)."""


def minute(offset: int = 0, *, base: datetime | None = None) -> datetime:
    """A whole minute, ``offset`` minutes from ``base`` (default: ten minutes ago)."""
    start = base or datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    return start + timedelta(minutes=offset)


def feature(counts: Sequence[int], baseline: Sequence[float] = BASELINE) -> FeatureWindow:
    """A numeric feature's window with ``counts`` on the baseline's four bins."""
    total = sum(counts)
    return FeatureWindow(
        count=total,
        sum=float(sum(i * c for i, c in enumerate(counts))),
        min=0.0,
        max=3.0,
        distribution=Distribution(edges=EDGES, counts=list(counts), baseline=list(baseline)),
    )


def latency(*seconds: float) -> LatencyHistogram:
    """A histogram holding these latencies."""
    counts = [0] * (len(LATENCY_BOUNDS) + 1)
    for value in seconds:
        i = next((i for i, b in enumerate(LATENCY_BOUNDS) if value <= b), len(LATENCY_BOUNDS))
        counts[i] += 1
    return LatencyHistogram(counts=counts, sum=sum(seconds))


def window(
    deployment_id: str,
    package_id: str,
    start: datetime,
    *,
    seconds: float = 60.0,
    requests: int = 100,
    server_errors: int = 0,
    client_errors: int = 0,
    latencies: Sequence[float] = (0.004,) * 90 + (0.2,) * 10,
    features: dict[str, Sequence[int]] | None = None,
    prediction: Sequence[int] | None = None,
    challengers: Sequence[ChallengerWindow] = (),
    associations: Sequence[Association] = (),
) -> StatsWindow:
    """One window; rows = requests, each feature with ``rows`` values unless given."""
    feats = features if features is not None else {"x1": NORMAL, "x2": NORMAL}
    return StatsWindow(
        id=new_id(),
        deployment_id=deployment_id,
        package_id=package_id,
        start=start,
        end=start + timedelta(seconds=seconds),
        requests=requests,
        rows=requests,
        client_errors=client_errors,
        server_errors=server_errors,
        latency=latency(*latencies),
        features={name: feature(counts) for name, counts in feats.items()},
        prediction=feature(prediction) if prediction is not None else None,
        challengers=list(challengers),
        associations=list(associations),
    )


def body(windows: Sequence[StatsWindow]) -> bytes:
    """A ``StatsBatch`` as the agent posts it."""
    parts = b",".join(w.model_dump_json().encode() for w in windows)
    return b'{"windows":[' + parts + b"]}"


async def post(http: aiohttp.ClientSession, windows: Sequence[StatsWindow]) -> tuple[int, Any]:
    """Post windows; return (status, JSON answer)."""
    headers = {"Content-Type": "application/json"}
    return await answer(http.post(AGENT_MONITORING, data=body(windows), headers=headers))


async def series(http: aiohttp.ClientSession, deployment_id: str, **params: str) -> Any:
    """``GET /deployments/{id}/monitoring``."""
    return await ok(http.get(f"{V1}/deployments/{deployment_id}/monitoring", params=params))


def stamp(moment: datetime) -> str:
    """A time as a query parameter."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
