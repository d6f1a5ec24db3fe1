"""Replacing a model drops no request; a model that fails to load or warm up changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.modelpkg.factory import SETOSA, python_package
from tests.serving.harness import AUTH, predict, put, server

pytestmark = pytest.mark.anyio


async def hammer(client: Any, stop: anyio.Event, seen: list[tuple[int, str]]) -> None:
    while not stop.is_set():
        status, doc = await predict(client, "iris", [SETOSA, SETOSA])
        seen.append((status, doc.get("model_package_id", doc.get("error", ""))))


async def test_replacement_under_steady_traffic_drops_nothing(
    tmp_path: Path, iris: dict[str, Path]
) -> None:
    async with server(tmp_path) as client:
        assert (
            await put(client, "iris", model_package_id="v1", package_dir=iris["v1"])
        ).status == 201
        seen: list[tuple[int, str]] = []
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(hammer, client, stop, seen)
            await anyio.sleep(0.3)
            for target, source in (
                ("v2", iris["v2"]),
                ("rules", iris["rules"]),
                ("v1-again", iris["v1"]),
            ):
                resp = await put(client, "iris", model_package_id=target, package_dir=source)
                assert resp.status == 200, await resp.text()
                assert (await resp.json())["model_package_id"] == target
                await anyio.sleep(0.2)
            stop.set()
        failures = [s for s in seen if s[0] != 200]
        assert not failures, failures[:5]
        ids = [pkg for _, pkg in seen]
        assert len(seen) > 50
        assert ids[0] == "v1" and ids[-1] == "v1-again"
        order = list(dict.fromkeys(ids))
        assert order == ["v1", "v2", "rules", "v1-again"], "answers switch, never go back"
        stats = await (await client.get("/v1/deployments/iris/stats")).json()
        assert stats["requests"] == len(seen) and stats["errors"] == {"client": 0, "server": 0}


async def test_in_flight_requests_finish_on_the_model_they_started_on(tmp_path: Path) -> None:
    busy = tmp_path / "busy"  # created by the slow model when the slow prediction starts
    slow = python_package(
        tmp_path / "slow",
        predict="if float(np.asarray(rows, dtype=float)[0, 0]) == 9.5: "
        f"open({str(busy)!r}, 'w').close(); time.sleep(0.5)",
    )
    fast = python_package(
        tmp_path / "fast", predict="return np.full(len(rows), 'versicolor', dtype=object)"
    )
    async with server(tmp_path, inline_budget_ms=0) as client:
        await put(client, "iris", model_package_id="slow", package_dir=slow)
        in_flight = asyncio.ensure_future(
            predict(client, "iris", [{**SETOSA, "sepal_length": 9.5}])
        )
        async with asyncio.timeout(10):
            while not busy.exists():  # noqa: ASYNC110 - a file written by the model
                await asyncio.sleep(0.01)
        resp = await put(client, "iris", model_package_id="fast", package_dir=fast)
        assert resp.status == 200
        status, doc = await predict(client, "iris", [SETOSA])
        assert doc["model_package_id"] == "fast" and doc["predictions"] == ["versicolor"]
        status, doc = await in_flight
        assert (
            status == 200 and doc["model_package_id"] == "slow" and doc["predictions"] == ["setosa"]
        )


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (
            {"init": "raise RuntimeError('weights are corrupt')"},
            "RuntimeError: weights are corrupt",
        ),
        ({"predict": "raise ValueError('cannot predict')"}, "ValueError: cannot predict"),
        ({"predict": "return rows[:, :2]"}, "answered shape [2, 2] for 2 rows"),
        ({"python_class": "Nope"}, "no class 'Nope'"),
    ],
)
async def test_a_failing_new_model_leaves_the_old_one_serving(
    tmp_path: Path, iris: dict[str, Path], failure: dict[str, str], message: str
) -> None:
    broken = python_package(tmp_path / "broken", **failure)
    async with server(tmp_path) as client:
        await put(client, "iris", model_package_id="v1", package_dir=iris["v1"])
        seen: list[tuple[int, str]] = []
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(hammer, client, stop, seen)
            resp = await put(client, "iris", model_package_id="broken", package_dir=broken)
            doc = await resp.json()
            await anyio.sleep(0.1)
            stop.set()
        assert resp.status == 422, doc
        assert doc["old_model_in_use"] is True and doc["model_package_id"] == "v1"
        assert "the old model 'v1' is still serving" in doc["error"] and message in doc["error"]
        assert set(seen) == {(200, "v1")}
        current = await (await client.get("/admin/deployments/iris", headers=AUTH)).json()
        assert current["model_package_id"] == "v1" and current["generation"] == 1
        metrics = await (await client.get("/metrics")).text()
        assert (
            'pilothouse_serving_model_changes_total{action="replace",result="failed"} 1.0'
            in metrics
        )


async def test_a_failing_challenger_fails_the_whole_change(
    tmp_path: Path, iris: dict[str, Path]
) -> None:
    broken = python_package(tmp_path / "broken", init="raise RuntimeError('no')")
    async with server(tmp_path) as client:
        await put(client, "iris", model_package_id="v1", package_dir=iris["v1"])
        resp = await put(
            client,
            "iris",
            model_package_id="v2",
            package_dir=iris["v2"],
            challengers=[{"model_package_id": "broken", "package_dir": str(broken)}],
        )
        assert resp.status == 422 and (await resp.json())["old_model_in_use"] is True
        _, doc = await predict(client, "iris", [SETOSA])
        assert doc["model_package_id"] == "v1"


async def test_deployments_are_restored_after_a_restart(
    tmp_path: Path, iris: dict[str, Path]
) -> None:
    async with server(tmp_path) as client:
        await put(client, "iris", model_package_id="v2", package_dir=iris["v2"])
        await put(client, "rules", package_dir=iris["rules"])
        await client.delete("/admin/deployments/rules", headers=AUTH)
    async with server(tmp_path) as client:
        status, doc = await predict(client, "iris", [SETOSA])
        assert status == 200 and doc["model_package_id"] == "v2"
        assert (await client.get("/v2/models/rules/ready")).status == 404
