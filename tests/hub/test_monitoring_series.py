"""The monitoring series: figures from the stored counts, rollups that add up, retention."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pilothouse.foundation.domain.monitoring import ChallengerWindow, StatsWindow, merge
from pilothouse.hub.clock import ManualClock
from tests.hub.stats_windows import (
    NORMAL,
    SHIFTED,
    SLIGHT,
    latency,
    minute,
    post,
    series,
    stamp,
    window,
)
from tests.hub.support import V1, Running, ok, query, rows, running, settings

pytestmark = pytest.mark.anyio


def _expected(windows: list[StatsWindow]) -> list[dict[str, Any]]:
    """What the API must say of these windows (one step): merge() per package."""
    return [
        {
            "package_id": agg.package_id,
            "requests": agg.requests,
            "server_errors": agg.server_errors,
            "error_rate": agg.error_rate,
            "latency_p50_s": agg.latency.quantile(0.5),
            "latency_p99_s": agg.latency.quantile(0.99),
            "drift": agg.drift(),
            "prediction_drift": agg.prediction_drift(),
            "challengers": {
                c.package_id: (c.agreement, c.latency.quantile(0.99), c.errors, c.dropped)
                for c in agg.challengers.values()
            },
        }
        for agg in merge(windows)
    ]


def _got(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ("package_id", "requests", "server_errors", "error_rate", "latency_p50_s",
            "latency_p99_s", "drift", "prediction_drift")  # fmt: skip
    return [
        {k: p[k] for k in keys}
        | {
            "challengers": {
                c["package_id"]: (c["agreement"], c["latency_p99_s"], c["errors"], c["dropped"])
                for c in p["challengers"]
            }
        }
        for p in points
    ]


def _challenger(package_id: str, compared: int, agreeing: int, slow: bool) -> ChallengerWindow:
    seconds = (0.3,) * compared if slow else (0.003,) * compared
    return ChallengerWindow(
        package_id=package_id, rows=compared, compared=compared, agreeing=agreeing,
        errors=1, dropped=2, latency=latency(*seconds),
    )  # fmt: skip


async def test_figures_are_those_merge_computes_from_the_windows(hub: Running) -> None:
    pe = await hub.pe()
    champion, challenger, newer = [await hub.package(n) for n in ("a", "b", "c")]
    dep = await hub.deployment(pe["id"], champion["id"])
    agent = await hub.agent(pe["id"])
    first = [
        window(dep["id"], champion["id"], minute(i), requests=100 + i, server_errors=i,
               latencies=(0.002,) * (80 + i) + (0.08,) * 15 + (0.7,) * 5,
               features={"x1": NORMAL, "x2": SHIFTED if i else SLIGHT}, prediction=SLIGHT,
               challengers=[_challenger(challenger["id"], 50, 40 + i, slow=bool(i % 2))])
        for i in range(5)
    ]  # fmt: skip
    second = [  # the next five minutes: a replacement in the middle
        window(dep["id"], champion["id"] if i < 2 else newer["id"], minute(5 + i),
               requests=60, server_errors=6, latencies=(0.02,) * 60,
               features={"x1": SHIFTED, "x2": NORMAL})
        for i in range(5)
    ]  # fmt: skip
    assert (await post(agent, first + second))[0] == 200
    found = await series(
        hub.admin, dep["id"], **{"from": stamp(minute(0)), "to": stamp(minute(10)), "step": "300"}
    )
    assert found["step_s"] == 300
    starts = [p["start"] for p in found["points"]]
    assert starts == [stamp(minute(0))] + [stamp(minute(5))] * 2
    assert _got(found["points"][:1]) == _expected(first)
    assert _got(found["points"][1:]) == _expected(second)
    point = found["points"][0]
    assert point["latency_p99_s"] > point["latency_p95_s"] >= point["latency_p50_s"] > 0
    assert point["drift"]["x2"] > 0.25 > point["drift"]["x1"] == 0.0
    assert point["challengers"][0]["agreement"] == sum(40 + i for i in range(5)) / 250
    # one step per minute: each window alone
    per_minute = await series(
        hub.admin, dep["id"], **{"from": stamp(minute(0)), "to": stamp(minute(10)), "step": "60"}
    )
    assert [_got([p]) for p in per_minute["points"]] == [_expected([w]) for w in first + second]


async def test_a_bad_span_is_refused_naming_the_parameter_or_made_to_fit(hub: Running) -> None:
    pe = await hub.pe()
    dep = await hub.deployment(pe["id"], (await hub.package())["id"])
    path = f"{V1}/deployments/{dep['id']}/monitoring"
    backwards = await series(
        hub.admin, dep["id"], **{"from": stamp(minute(5)), "to": stamp(minute(0))}
    )
    assert backwards["points"] == [] and backwards["end"] == backwards["start"]
    month = {"from": stamp(minute(0)), "to": stamp(minute(0) + timedelta(days=30)), "step": "1"}
    assert (await series(hub.admin, dep["id"], **month))["step_s"] == 30 * 86400 // 10_000 + 1
    for params, field in (
        ({"step": "0"}, "step"),
        ({"from": "yesterday"}, "from"),
    ):
        async with hub.admin.get(path, params=params) as resp:
            body = await resp.json()
            assert resp.status == 422, body
            assert body["fields"][0]["field"] == field, body
    async with hub.admin.get(f"{V1}/deployments/dep-none/monitoring") as resp:
        assert resp.status == 404


async def _purged_at(hub: Running, moment: datetime) -> None:
    stamp_ = moment.isoformat().replace("+00:00", "Z")
    async with asyncio.timeout(30):
        while True:  # polling the API: nothing in the hub to wait on from outside
            if (await ok(hub.admin.get(f"{V1}/settings/retention")))["last_purge_at"] == stamp_:
                return
            await asyncio.sleep(0.02)


async def test_hourly_rollups_add_up_and_duplicates_stay_duplicates(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    hour = now.replace(minute=0, second=0) - timedelta(hours=3)
    clock = ManualClock(now)
    hub_settings = settings(tmp_path / "hub", monitoring={"minute_windows_hours": 1.0},
                            retention={"purge_batch": 7})  # fmt: skip
    async with running(hub_settings, clock) as hub:
        pe = await hub.pe()
        dep = await hub.deployment(pe["id"], (await hub.package())["id"])
        pkg = dep["desired"]["model_package_id"]
        agent = await hub.agent(pe["id"])
        old = [  # two hours of minute windows, rolled up; the last minutes stay as they are
            window(dep["id"], pkg, minute(i * 7, base=hour), requests=10 + i, server_errors=i % 3,
                   latencies=(0.001 * (i + 1),) * (10 + i),
                   features={"x1": SHIFTED if i % 2 else NORMAL})
            for i in range(17)
        ]  # fmt: skip
        recent = [window(dep["id"], pkg, now - timedelta(minutes=5 - i)) for i in range(3)]
        assert (await post(agent, old + recent))[0] == 200
        span = {"from": stamp(hour), "to": stamp(hour + timedelta(hours=3)), "step": "3600"}
        before = await series(hub.admin, dep["id"], **span)
        await ok(hub.admin.put(f"{V1}/settings/retention", json={"days": 90}))
        await _purged_at(hub, now)
        assert await rows(hub, "monitoring_hourly") == 2  # the span's first two hours
        unrolled = await query(
            hub.settings, "SELECT count(*) FROM monitoring_windows WHERE body IS NOT NULL"
        )
        assert unrolled[0][0] == len(recent)
        after = await series(hub.admin, dep["id"], **span)
        assert after["points"] == before["points"]
        by_hour: dict[int, list[StatsWindow]] = {}
        for w in old:
            by_hour.setdefault(int((w.start - hour).total_seconds() // 3600), []).append(w)
        assert sorted(by_hour) == [0, 1]
        got = [_got([p]) for p in after["points"][:2]]
        assert got == [_expected(by_hour[h]) for h in sorted(by_hour)]
        assert await post(agent, old) == (200, {"accepted": 0, "duplicates": len(old)})
        assert (await series(hub.admin, dep["id"], **span))["points"] == before["points"]


async def test_the_retention_purges_statistics(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    clock = ManualClock(now)
    async with running(settings(tmp_path / "hub", retention={"purge_batch": 4}), clock) as hub:
        pe = await hub.pe()
        dep = await hub.deployment(pe["id"], (await hub.package())["id"])
        pkg = dep["desired"]["model_package_id"]
        agent = await hub.agent(pe["id"])
        old = [window(dep["id"], pkg, now - timedelta(days=9, minutes=i)) for i in range(10)]
        young = [window(dep["id"], pkg, now - timedelta(days=2, minutes=i)) for i in range(3)]
        assert (await post(agent, old + young))[0] == 200
        await ok(hub.admin.put(f"{V1}/settings/retention", json={"days": 5}))
        await _purged_at(hub, now)
        assert await rows(hub, "monitoring_windows") == len(young)
        assert await rows(hub, "monitoring_hourly") > 0  # the young ones, rolled up
        span = {"from": stamp(now - timedelta(days=10)), "to": stamp(now), "step": "86400"}
        found = await series(hub.admin, dep["id"], **span)
        assert sum(p["requests"] for p in found["points"]) == 100 * len(young)
