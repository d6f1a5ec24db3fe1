"""The statistics-window contract: windows add up, and figures come from the sums."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from pilothouse.foundation.domain.monitoring import (
    LATENCY_BOUNDS,
    ChallengerWindow,
    Distribution,
    FeatureWindow,
    LatencyHistogram,
    StatsBatch,
    StatsWindow,
    merge,
    psi,
)

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _latency(*seconds: float) -> LatencyHistogram:
    counts = [0] * (len(LATENCY_BOUNDS) + 1)
    for s in seconds:
        i = next((i for i, b in enumerate(LATENCY_BOUNDS) if s <= b), len(LATENCY_BOUNDS))
        counts[i] += 1
    return LatencyHistogram(counts=counts, sum=sum(seconds))


def _window(n: int, package: str = "pkg-a", *, counts: list[int], errors: int = 0) -> StatsWindow:
    start = T0 + timedelta(minutes=n)
    return StatsWindow(
        id=f"w{n}-{package}",
        deployment_id="dep-1",
        package_id=package,
        start=start,
        end=start + timedelta(minutes=1),
        requests=10,
        rows=sum(counts),
        server_errors=errors,
        latency=_latency(*([0.004] * 9 + [0.2])),
        features={
            "x": FeatureWindow(
                count=sum(counts),
                sum=float(sum(counts)),
                min=0.0,
                max=float(n),
                distribution=Distribution(
                    edges=[0.0, 1.0, 2.0], counts=counts, baseline=[0.5, 0.5]
                ),
            )
        },
        challengers=[ChallengerWindow(package_id="pkg-c", rows=10, compared=10, agreeing=n % 10)],
    )


def test_windows_of_one_package_add_up_and_drift_comes_from_the_sum() -> None:
    # Two windows each balanced on their own would hide nothing; two skewed the
    # opposite ways add to a balanced whole: PSI of the sum is 0, not the mean.
    one = _window(0, counts=[10, 0])
    two = _window(1, counts=[0, 10], errors=2)
    assert one.features["x"].distribution is not None
    assert one.features["x"].distribution.psi() == pytest.approx(psi([10, 0], [0.5, 0.5]))
    assert one.features["x"].distribution.psi() > 2  # type: ignore[operator]
    (agg,) = merge([one, two])
    assert (agg.windows, agg.requests, agg.rows, agg.server_errors) == (2, 20, 20, 2)
    assert agg.error_rate == pytest.approx(0.1)
    assert agg.drift() == {"x": 0.0}
    assert agg.features["x"].max == 1.0
    assert agg.challengers["pkg-c"].agreement == pytest.approx(1 / 20)
    assert (agg.start, agg.end) == (T0, T0 + timedelta(minutes=2))


def test_a_replacement_starts_a_new_series() -> None:
    aggs = merge([_window(0, counts=[1, 1]), _window(1, "pkg-b", counts=[1, 1])])
    assert [a.package_id for a in aggs] == ["pkg-a", "pkg-b"]


def test_latency_quantiles_interpolate_within_their_bucket() -> None:
    hist = _latency(*([0.004] * 99 + [20.0]))
    p50 = hist.quantile(0.5)
    assert p50 is not None and 0.0025 < p50 <= 0.005
    assert hist.quantile(1.0) == LATENCY_BOUNDS[-1]  # past the last bound: at least that
    assert LatencyHistogram().quantile(0.5) is None


@pytest.mark.parametrize(
    ("body", "wording"),
    [
        ({"counts": [1, 2], "baseline": [0.5, 0.5]}, "either edges"),
        ({"edges": [0, 1], "counts": [1, 2], "baseline": [0.5, 0.5]}, "one more entry"),
        ({"labels": ["a"], "counts": [1, 2], "baseline": [0.5, 0.5]}, "one entry per count"),
        ({"labels": ["a", "b"], "counts": [1, -2], "baseline": [0.5, 0.5]}, "greater than"),
    ],
)
def test_malformed_distributions_are_refused(body: dict[str, object], wording: str) -> None:
    with pytest.raises(ValidationError, match=wording):
        Distribution.model_validate(body)


def test_a_window_is_checked_as_a_whole() -> None:
    good = _window(0, counts=[1, 1]).model_dump(mode="json")
    with pytest.raises(ValidationError, match="end must be after start"):
        StatsWindow.model_validate({**good, "end": good["start"]})
    with pytest.raises(ValidationError, match="more errors than requests"):
        StatsWindow.model_validate({**good, "server_errors": 11})
    with pytest.raises(ValidationError, match="one more entry than bounds"):
        StatsWindow.model_validate({**good, "latency": {"counts": [1], "sum": 0}})
    with pytest.raises(ValidationError, match="Extra inputs"):
        StatsWindow.model_validate({**good, "raw_rows": [[1, 2]]})
    with pytest.raises(ValidationError, match="at most 500"):
        StatsBatch.model_validate({"windows": [good] * 501})
