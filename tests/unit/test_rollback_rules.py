"""The pure parts of monitoring in the agent: windows from readings, verdicts, overrides.

Readings here are built as a prediction server answers them; the serving tests
check that a real server answers exactly this shape
(tests/serving/test_statistics_readings.py).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from pilothouse.agent.monitoring.judging import judge
from pilothouse.agent.monitoring.overrides import Override, Overrides
from pilothouse.agent.monitoring.readings import Reading, RequestCounters, cut
from pilothouse.foundation.domain.desired import DesiredDeployment, RollbackSettings
from pilothouse.foundation.domain.monitoring import LATENCY_BOUNDS, merge

_ids = (f"w{i}" for i in itertools.count())


def new_id() -> str:
    return next(_ids)


def latency(fast: int, slow: int = 0) -> dict[str, Any]:
    counts = [0] * (len(LATENCY_BOUNDS) + 1)
    counts[1], counts[9] = fast, slow  # ≤ 1 ms, ≤ 0.5 s
    return {"bounds": list(LATENCY_BOUNDS), "counts": counts, "sum": fast * 0.001 + slow * 0.4}


def model(
    instance: str, package: str, role: str, requests: int, errors: int = 0, **extra: Any
) -> dict[str, Any]:
    feature = {"count": requests, "missing": 0, "sum": 2.0 * requests,
               "min": extra.pop("low", 1.0), "max": 3.0,
               "distribution": {"edges": [0.0, 2.0, 4.0], "counts": [requests, 0],
                                "baseline": [0.5, 0.5]}}  # fmt: skip
    return {
        "instance": instance, "package_id": package, "role": role, "since": 1000.0,
        "requests": {"requests": requests, "rows": requests, "client_errors": 0,
                     "server_errors": errors, "latency": latency(requests)},
        "monitor": {"rows": requests, "features": {"x": feature}},
        "shadow": extra.pop("shadow", {}),
    }  # fmt: skip


def reading(at: float, *models: dict[str, Any], server: str = "s1", **assoc: Any) -> Reading:
    return Reading.parse(
        {
            "deployment_id": "d",
            "server": server,
            "taken_at": at,
            "models": list(models),
            "associations": assoc or {"last_seq": 0, "items": []},
        }
    )


def test_windows_are_differences_of_readings_and_add_up_to_the_total() -> None:
    first = reading(1010.0, model("i1", "A", "champion", 10, 1))
    second = reading(
        1020.0,
        model("i1", "A", "champion", 25, 2, low=0.5),
        {**model("i2", "B", "challenger", 0),
         "shadow": {"rows": 15, "compared": 15, "errors": 1, "dropped": 2, "agreeing": 12,
                    "latency": latency(14)}},
        last_seq=3,
        items=[{"seq": s, "instance": "i1", "request_id": f"r{s}", "predictions": ["x"]}
               for s in (2, 3)],
    )  # fmt: skip
    w1 = cut(None, first, new_id)
    w2 = cut(first.cursor(), second, new_id)
    assert [(w.requests, w.server_errors) for w in w1 + w2] == [(10, 1), (15, 1)]
    window = w2[0]
    assert (window.start.timestamp(), window.end.timestamp()) == (1010.0, 1020.0)
    assert window.latency.total == 15 and window.features["x"].count == 15
    assert window.features["x"].min == 0.5, "the running minimum moved in this window"
    assert window.features["x"].max is None, "unknown: the running maximum did not move"
    assert window.features["x"].distribution is not None
    assert window.features["x"].distribution.counts == [15, 0]
    (challenger,) = window.challengers
    assert (challenger.package_id, challenger.rows, challenger.agreement) == ("B", 15, 0.8)
    assert [a.request_id for a in window.associations] == ["r2", "r3"]
    (total,) = merge(w1 + w2)
    assert total.requests == 25 and total.server_errors == 2 and total.latency.total == 25


def test_a_restarted_server_or_a_new_model_counts_from_zero() -> None:
    before = reading(1010.0, model("i1", "A", "champion", 40))
    restarted = reading(1020.0, model("i9", "A", "champion", 5), server="s2")
    (window,) = cut(before.cursor(), restarted, new_id)
    assert window.requests == 5 and window.start.timestamp() == 1000.0, "since the model loaded"
    quiet = reading(1030.0, model("i9", "A", "champion", 5), server="s2")
    assert cut(restarted.cursor(), quiet, new_id) == [], "no traffic: no window"
    replaced = reading(
        1040.0, model("i9", "A", "retired", 8), model("i10", "B", "champion", 4), server="s2"
    )
    windows = {w.package_id: w.requests for w in cut(quiet.cursor(), replaced, new_id)}
    assert windows == {"A": 3, "B": 4}, "the old model's last requests are not lost"


RULES = RollbackSettings(min_requests=20)


def counters(requests: int, errors: int, fast: int | None = None, slow: int = 0) -> RequestCounters:
    hist = latency(requests - slow if fast is None else fast, slow)
    return RequestCounters(requests=requests, server_errors=errors, latency=hist)


@pytest.mark.parametrize(
    ("new", "old", "regressed"),
    [
        (counters(19, 19), counters(100, 0), None),  # too few requests to judge
        (counters(50, 10), counters(100, 0), True),  # 20 % against 0 %
        (counters(50, 2), counters(100, 0), False),  # 4 %: under the +5 % rise
        (counters(50, 10), counters(100, 12), False),  # 20 % against 12 %: not 2x
        (counters(50, 13), counters(100, 5), True),  # 26 % against 5 %
        (counters(50, 10), None, True),  # nothing to compare with: the rise counts
        (counters(50, 0, slow=5), counters(100, 0), True),  # p99 1 ms to ~0.5 s
        (counters(50, 0, slow=5), counters(10, 0), False),  # too few old requests for p99
    ],
)
def test_regression_verdicts(
    new: RequestCounters, old: RequestCounters | None, regressed: bool | None
) -> None:
    verdict = judge(new, old, RULES)
    assert (verdict.regressed if verdict else None) is regressed
    if verdict is not None:
        assert verdict.figures["new_requests"] == new.requests


def spec(package: str, generation: int) -> DesiredDeployment:
    return DesiredDeployment(id="d", model_package_id=package, generation=generation)


def test_an_override_holds_until_the_package_is_asked_for_after_the_rollback_was_recorded() -> None:
    overrides = Overrides()
    overrides.add(Override(deployment_id="d", from_package_id="B", to_package_id="A",
                           generation=7, at="2026-01-01T00:00:00Z", reason="errors"))  # fmt: skip
    assert overrides.amend(spec("B", 7)).model_package_id == "A"
    assert overrides.amend(spec("B", 8)).model_package_id == "A", "hub not told yet"
    assert overrides.amend(spec("A", 9)).model_package_id == "A", "the hub recorded it"
    assert overrides.amend(spec("B", 9)).model_package_id == "A", "an old revision, re-sent"
    assert overrides.get("d") is not None
    assert overrides.amend(spec("B", 10)).model_package_id == "B", "a user asked again"
    assert overrides.get("d") is None
    assert set(overrides.pop_dirty()) == {"d"}
    assert overrides.amend(spec("C", 3)).model_package_id == "C", "others untouched"
