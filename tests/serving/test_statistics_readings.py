"""The agent's reading of a deployment: cumulative counters per model, request ids, mirroring.

Real servers on 127.0.0.1 and real packages; every figure is checked against
the traffic the test sent.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from pilothouse.foundation.domain.monitoring import (
    Association,
    ChallengerWindow,
    FeatureWindow,
    LatencyHistogram,
)
from pilothouse.serving.statistics import RETIRED_KEPT
from tests.modelpkg.factory import SETOSA, VIRGINICA, python_package
from tests.serving.harness import AUTH, predict, put, server

pytestmark = pytest.mark.anyio


async def reading(client: TestClient[Any, Any], deployment: str, **query: Any) -> Any:
    resp = await client.get(
        f"/admin/deployments/{deployment}/statistics",
        params={k: str(v) for k, v in query.items()},
        headers=AUTH,
    )
    assert resp.status == 200, await resp.text()
    return await resp.json()


def by_package(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["package_id"]: m for m in doc["models"]}


async def test_counters_are_cumulative_per_model_and_fit_the_window_types(
    tmp_path: Path, iris: dict[str, Path]
) -> None:
    async with server(tmp_path, monitor_flush_rows=4) as client:
        await put(client, "iris", model_package_id="v1", package_dir=iris["v1"])
        for _ in range(3):
            await predict(client, "iris", [SETOSA, VIRGINICA])
        await predict(client, "iris", [{"sepal_length": "bad"}])
        first = await reading(client, "iris")
        champion = by_package(first)["v1"]
        assert champion["role"] == "champion"
        assert champion["requests"]["requests"] == 4 and champion["requests"]["rows"] == 6
        assert champion["requests"]["client_errors"] == 1
        latency = LatencyHistogram.model_validate(champion["requests"]["latency"])
        assert latency.total == 4
        petal = FeatureWindow.model_validate(champion["monitor"]["features"]["petal_length"])
        assert petal.count == 6 and petal.sum == pytest.approx(3 * (1.4 + 6.6))
        assert petal.distribution is not None and sum(petal.distribution.counts) == 6
        prediction = FeatureWindow.model_validate(champion["monitor"]["prediction"])
        assert prediction.count == 6
        for _ in range(2):
            await predict(client, "iris", [SETOSA])
        second = by_package(await reading(client, "iris"))["v1"]
        assert second["instance"] == champion["instance"]
        assert second["requests"]["requests"] == 6, "counters only grow: the agent subtracts"
        assert second["monitor"]["features"]["petal_length"]["count"] == 8


async def test_every_answer_names_its_request_and_the_server_keeps_the_association(
    tmp_path: Path, iris: dict[str, Path]
) -> None:
    async with server(tmp_path) as client:
        await put(client, "iris", model_package_id="v1", package_dir=iris["v1"])
        resp = await client.post("/v1/deployments/iris/predict", json={"rows": [SETOSA, VIRGINICA]})
        plain = await resp.json()
        assert plain["request_id"] == resp.headers["Pilothouse-Request-Id"]
        body = {
            "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",
                        "data": list(SETOSA.values())}],
        }  # fmt: skip
        resp = await client.post("/v2/models/iris/infer", json=body)
        v2 = await resp.json()
        assert v2["id"] and v2["id"] == resp.headers["Pilothouse-Request-Id"]
        assert v2["id"] != plain["request_id"]
        resp = await client.post("/v2/models/iris/infer", json={**body, "id": "client-7"})
        assert (await resp.json())["id"] == resp.headers["Pilothouse-Request-Id"] == "client-7"
        doc = await reading(client, "iris")
        items = doc["associations"]["items"]
        assert [a["request_id"] for a in items] == [plain["request_id"], v2["id"], "client-7"]
        assert (
            Association.model_validate(
                {"request_id": items[0]["request_id"], "predictions": items[0]["predictions"]}
            ).predictions
            == plain["predictions"]
        )
        assert doc["associations"]["last_seq"] == items[-1]["seq"]
        await predict(client, "iris", [SETOSA])
        newer = await reading(
            client, "iris", server=doc["server"], associations_after=items[-1]["seq"]
        )
        assert len(newer["associations"]["items"]) == 1, "only what came after"
        other = await reading(client, "iris", server="another-process", associations_after=99)
        assert len(other["associations"]["items"]) == 4, "another server's seq means nothing here"
        resp = await client.get(
            "/admin/deployments/iris/statistics?associations_after=x", headers=AUTH
        )
        assert resp.status == 400 and "associations_after" in (await resp.json())["error"]


async def test_a_replaced_model_keeps_its_final_counters_readable(
    tmp_path: Path, iris: dict[str, Path]
) -> None:
    async with server(tmp_path) as client:
        await put(client, "iris", model_package_id="v1", package_dir=iris["v1"])
        for _ in range(5):
            await predict(client, "iris", [SETOSA])
        await put(client, "iris", model_package_id="v2", package_dir=iris["v2"])
        await predict(client, "iris", [SETOSA])
        models = by_package(await reading(client, "iris"))
        assert models["v1"]["role"] == "retired" and models["v1"]["requests"]["requests"] == 5
        assert models["v2"]["role"] == "champion" and models["v2"]["requests"]["requests"] == 1
        for i in range(RETIRED_KEPT + 2):
            package = "v1" if i % 2 else "v2"
            await put(client, "iris", model_package_id=f"{package}-{i}", package_dir=iris[package])
        doc = await reading(client, "iris")
        assert len(doc["models"]) == RETIRED_KEPT + 1, "bounded: the oldest are forgotten"


async def test_mirror_percent_is_honoured_and_challengers_are_timed(
    tmp_path: Path, iris: dict[str, Path]
) -> None:
    async with server(tmp_path) as client:
        challenger = {"model_package_id": "rules", "package_dir": str(iris["rules"])}
        await put(client, "iris", model_package_id="v1", package_dir=iris["v1"],
                  challengers=[challenger], mirror_percent=25)  # fmt: skip
        for _ in range(40):
            await predict(client, "iris", [SETOSA])
        await asyncio.sleep(0.2)  # the replay worker runs after the answers
        shadow = by_package(await reading(client, "iris"))["rules"]["shadow"]
        window = ChallengerWindow.model_validate({"package_id": "rules", **shadow})
        assert window.rows == 10, "a quarter of 40 requests"
        assert window.agreement == 1.0 and window.latency.total == 10
        assert (await reading(client, "iris"))["mirror_percent"] == 25
        await put(client, "iris", model_package_id="v1", package_dir=iris["v1"],
                  challengers=[challenger], mirror_percent=0)  # fmt: skip
        for _ in range(10):
            await predict(client, "iris", [SETOSA])
        await asyncio.sleep(0.1)
        assert by_package(await reading(client, "iris"))["rules"]["shadow"]["rows"] == 10


async def test_a_slow_challenger_never_slows_the_champion(
    tmp_path: Path, iris: dict[str, Path]
) -> None:
    slow = python_package(tmp_path / "slow", name="iris-slow", predict="time.sleep(0.2)")
    async with server(tmp_path, challenger_queue=4) as client:
        await put(client, "iris", model_package_id="v1", package_dir=iris["v1"])
        alone = await _timed(client, 60)
        await put(client, "iris", model_package_id="v1", package_dir=iris["v1"],
                  challengers=[{"model_package_id": "slow", "package_dir": str(slow)}])  # fmt: skip
        beside = await _timed(client, 60)
        shadow = by_package(await reading(client, "iris"))["slow"]["shadow"]
        assert shadow["dropped"] > 0, "the bounded queue sheds instead of blocking"
        for _ in range(100):  # the first replay ends 200 ms after it began
            if sum(shadow["latency"]["counts"]):
                break
            await asyncio.sleep(0.05)
            shadow = by_package(await reading(client, "iris"))["slow"]["shadow"]
        latency = LatencyHistogram.model_validate(shadow["latency"])
        assert latency.total >= 1 and latency.sum / latency.total >= 0.2
        # A 200 ms challenger replayed on every request would add ≥ 200 ms; the
        # champion's median stays where it was, give or take this noisy machine.
        assert beside < alone + 0.05, (alone, beside)


async def test_monitoring_off_keeps_request_counts_only(
    tmp_path: Path, iris: dict[str, Path]
) -> None:
    async with server(tmp_path, monitoring=False) as client:
        rules = {"model_package_id": "rules", "package_dir": str(iris["rules"])}
        await put(client, "iris", model_package_id="v1", package_dir=iris["v1"],
                  challengers=[rules])  # fmt: skip
        for _ in range(5):
            await predict(client, "iris", [SETOSA])
        doc = await reading(client, "iris")
        models = by_package(doc)
        assert models["v1"]["requests"]["requests"] == 5
        assert models["v1"]["monitor"]["rows"] == 0 and models["rules"]["shadow"]["rows"] == 0
        assert doc["associations"]["items"] == []


async def _timed(client: TestClient[Any, Any], n: int) -> float:
    """The median latency of ``n`` one-row predictions, one after another."""
    took = []
    for _ in range(n):
        began = time.perf_counter()
        status, _ = await predict(client, "iris", [SETOSA])
        took.append(time.perf_counter() - began)
        assert status == 200
    return sorted(took)[n // 2]
