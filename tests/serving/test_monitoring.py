"""Statistics and metrics: counted per request, summarized with vectorized NumPy."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from pilothouse.modelpkg import Feature, FeatureType, Manifest, Schema
from pilothouse.modelpkg.profiling import baseline
from pilothouse.serving.monitoring import FeatureMonitor, RequestStats, psi
from tests.modelpkg.factory import SETOSA, VIRGINICA
from tests.serving.harness import predict, put, server

pytestmark = pytest.mark.anyio


def test_feature_monitor_matches_numpy() -> None:
    rng = np.random.default_rng(3)
    features = [
        Feature(name="a"),
        Feature(name="b", nullable=True),
        Feature(name="c", type=FeatureType.STRING),
    ]
    train = np.empty((500, 3), dtype=object)
    train[:, 0] = rng.normal(size=500)
    train[:, 1] = rng.uniform(0, 10, size=500)
    train[:, 2] = rng.choice(["red", "green"], size=500)
    manifest = Manifest.model_validate(
        {
            "name": "m",
            "version": "1",
            "format": "python",
            "artifact": "m.py",
            "target": {"type": "regression"},
            "features": features,
            "baseline": baseline(features, train, rng.normal(size=500), classifier=False),
        }
    )
    monitor = FeatureMonitor(manifest, flush_rows=64)
    schema = Schema(features)
    batches = []
    for i in range(40):
        rows = [
            {
                "a": float(rng.normal() + 1),
                "b": None if i % 7 == 0 else float(rng.uniform(0, 20)),
                "c": "red",
            }
            for _ in range(i % 5 + 1)
        ]
        table = schema.from_rows(rows)
        monitor.observe(table, np.full(table.rows, 0.5))
        batches.append(table.numeric)
    snap = monitor.snapshot()
    numeric = np.concatenate(batches)
    a = snap["features"]["a"]
    assert a["count"] == numeric.shape[0] == snap["rows"]
    assert a["mean"] == pytest.approx(numeric[:, 0].mean())
    assert (a["min"], a["max"]) == (numeric[:, 0].min(), numeric[:, 0].max())
    b = snap["features"]["b"]
    assert b["missing"] == int(np.isnan(numeric[:, 1]).sum()) > 0
    assert b["count"] + b["missing"] == numeric.shape[0]
    edges = np.asarray(a["histogram"]["edges"])
    expected = np.bincount(
        np.clip(np.searchsorted(edges, numeric[:, 0], side="right") - 1, 0, len(edges) - 2),
        minlength=len(edges) - 1,
    )
    assert a["histogram"]["counts"] == expected.tolist()
    assert a["histogram"]["psi"] > 0.1, "shifted by one standard deviation"
    assert snap["features"]["c"]["categories"] == {"red": numeric.shape[0]}
    assert snap["features"]["c"]["psi"] > 0.1
    assert snap["predictions"]["count"] == numeric.shape[0] and snap["predictions"]["mean"] == 0.5


def test_psi_and_latency_quantiles() -> None:
    assert psi(np.array([50, 50]), np.array([0.5, 0.5])) == 0
    assert psi(np.array([0, 0]), np.array([0.5, 0.5])) is None
    stats = RequestStats()
    for seconds in [0.0002] * 98 + [0.2, 3.0]:
        stats.record(1, seconds)
    assert stats.quantile(0.5) == 0.0005 and stats.quantile(0.99) == 0.25
    assert stats.snapshot()["rows"] == 100


async def test_stats_and_metrics_count_requests(tmp_path: Path, iris: dict[str, Path]) -> None:
    async with server(tmp_path, monitor_flush_rows=8) as client:
        await put(
            client,
            "iris",
            model_package_id="v1",
            package_dir=iris["v1"],
            challengers=[{"model_package_id": "rules", "package_dir": str(iris["rules"])}],
        )
        for _ in range(5):
            await predict(client, "iris", [SETOSA, VIRGINICA, SETOSA])
        await predict(client, "iris", [{"sepal_length": "bad"}])
        stats = await (await client.get("/v1/deployments/iris/stats")).json()
        assert stats["requests"] == 6 and stats["rows"] == 15
        assert stats["errors"] == {"client": 1, "server": 0}
        assert sum(stats["latency_seconds"]["counts"]) == 6
        petal = stats["features"]["petal_length"]
        assert petal["count"] == 15 and petal["min"] == 1.4 and petal["max"] == 6.6
        assert sum(petal["histogram"]["counts"]) == 15 and petal["histogram"]["psi"] is not None
        assert stats["predictions"]["categories"] == {"setosa": 10, "virginica": 5}
        for _ in range(200):  # replays run after the answers, in batches gathered briefly
            if stats["challengers"][0]["rows"] == 15:
                break
            await asyncio.sleep(0.01)
            stats = await (await client.get("/v1/deployments/iris/stats")).json()
        challenger = stats["challengers"][0]
        assert challenger["model_package_id"] == "rules"
        assert challenger["rows"] == 15 and challenger["agreement"] == 1.0
        metrics = await (await client.get("/metrics")).text()
        assert 'pilothouse_serving_requests_total{deployment="iris"} 6.0' in metrics
        assert 'pilothouse_serving_rows_total{deployment="iris"} 15.0' in metrics
        assert (
            'pilothouse_serving_request_errors_total{deployment="iris",kind="client"} 1.0'
            in metrics
        )
        assert 'pilothouse_serving_request_duration_seconds_count{deployment="iris"} 6.0' in metrics
        assert (
            "pilothouse_serving_model_info"
            '{deployment="iris",model_package_id="rules",role="challenger"} 1.0' in metrics
        )
        assert 'pilothouse_serving_feature_psi{deployment="iris",feature="petal_length"}' in metrics
