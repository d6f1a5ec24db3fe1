"""Actuals joined to predictions give exact accuracy and MAE; retraining triggers are signed,
recorded, and sent at most once per cooldown (a webhook on 127.0.0.1, or a command)."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from pilothouse.foundation.domain.monitoring import Association
from pilothouse.hub.clock import ManualClock
from pilothouse.hub.notifications import signing
from tests.hub.receivers import LOCAL_TARGETS, receiving
from tests.hub.stats_windows import NORMAL, SHIFTED, minute, post, series, stamp, window
from tests.hub.support import V1, Running, ok, running, settings

pytestmark = pytest.mark.anyio

SECRET = "retraining-secret-0123456789"


async def _deployment(hub: Running, **retraining: Any) -> dict[str, Any]:
    pe = await hub.pe()
    pkg = await hub.package()
    body = {"name": "dep", "prediction_environment_id": pe["id"], "model_package_id": pkg["id"],
            "settings": {"retraining": retraining}}  # fmt: skip
    return dict(await ok(hub.admin.post(f"{V1}/deployments", json=body), 201))


def _actuals(pairs: dict[str, Any]) -> dict[str, Any]:
    return {"actuals": [{"association_id": k, "value": v} for k, v in pairs.items()]}


async def test_actuals_give_the_exact_accuracy_and_error(hub: Running) -> None:
    pe = await hub.pe()
    pkg = await hub.package()
    labels = await hub.deployment(pe["id"], pkg["id"], "labels")
    numbers = await hub.deployment(pe["id"], pkg["id"], "numbers")
    agent = await hub.agent(pe["id"])
    classified = [
        window(labels["id"], pkg["id"], minute(0), associations=[
            Association(request_id="r1", predictions=["a", "b", "a"]),
            Association(request_id="r2", predictions=["b", "b"]),
        ]),
        window(labels["id"], pkg["id"], minute(1), associations=[
            Association(request_id="r3", predictions=[1, 0]),
        ]),
    ]  # fmt: skip
    regressed = [
        window(numbers["id"], pkg["id"], minute(0), associations=[
            Association(request_id="q1", predictions=[1.5, 2.0, 10.0]),
        ]),
    ]  # fmt: skip
    assert (await post(agent, classified + regressed))[0] == 200
    path = f"{V1}/deployments/{labels['id']}/actuals"
    given = {"r1:0": "a", "r1:1": "a", "r1:2": "a", "r2:0": "b", "r2:1": "a",
             "r3:0": 1, "r3:1": 1, "zz:0": "a", "q1:0": 2.0}  # fmt: skip
    assert await ok(hub.admin.post(path, json=_actuals(given))) == {"matched": 7, "unmatched": 2}
    span = {"from": stamp(minute(0)), "to": stamp(minute(2)), "step": "60"}
    points = (await series(hub.admin, labels["id"], **span))["points"]
    assert [(p["actuals"], p["accuracy"]) for p in points] == [(5, 3 / 5), (2, 1 / 2)]
    assert points[0]["mae"] is None and points[1]["mae"] == 1 / 2  # r3: |1-1|, |0-1|
    path = f"{V1}/deployments/{numbers['id']}/actuals"
    given = {"q1:0": 2.0, "q1:1": 1.0, "q1:2": 10}
    assert await ok(hub.admin.post(path, json=_actuals(given))) == {"matched": 3, "unmatched": 0}
    (point,) = (await series(hub.admin, numbers["id"], **span))["points"]
    assert (point["actuals"], point["mae"], point["accuracy"]) == (3, (0.5 + 1.0 + 0) / 3, 1 / 3)
    # a second value for the same row replaces the first
    await ok(hub.admin.post(path, json=_actuals({"q1:0": 1.5})))
    (point,) = (await series(hub.admin, numbers["id"], **span))["points"]
    assert point["mae"] == 1.0 / 3


async def test_a_drift_webhook_is_signed_and_sent_once_per_cooldown(tmp_path: Path) -> None:
    clock = ManualClock(datetime.now(UTC))
    hub_settings = settings(tmp_path / "hub", notifications=LOCAL_TARGETS,
                            monitoring={"retraining_secret": SECRET})  # fmt: skip
    base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=40)
    async with receiving() as receiver, running(hub_settings, clock) as hub:
        dep = await _deployment(hub, on_drift_failing=True, webhook_url=receiver.url,
                                cooldown_s=3600)  # fmt: skip
        pkg = dep["desired"]["model_package_id"]
        agent = await hub.agent(dep["prediction_environment_id"])

        async def traffic(first: int, counts: list[int]) -> None:
            batch = [window(dep["id"], pkg, minute(first + i, base=base), features={"x1": counts})
                     for i in range(5)]  # fmt: skip
            assert (await post(agent, batch))[0] == 200

        await traffic(0, SHIFTED)  # failing: a trigger
        (request,) = await receiver.wait_for(1)
        header = request.headers[signing.HEADER]
        assert signing.verify(SECRET, request.body, header, time.time())
        assert not signing.verify(SECRET + "x", request.body, header, time.time())
        payload = request.json()
        assert payload["reason"] == "drift_failing" and payload["deployment"]["id"] == dep["id"]
        assert payload["model_package_id"] == pkg
        assert payload["summary"]["drift"]["features"]["x1"] > 0.25
        assert payload["link"].endswith(f"/api/v1/deployments/{dep['id']}/monitoring")
        await traffic(5, NORMAL)
        await traffic(10, SHIFTED)  # failing again within the cooldown: nothing sent
        clock.advance(3601)
        await traffic(15, NORMAL)
        await traffic(20, SHIFTED)  # after the cooldown: sent
        requests = await receiver.wait_for(2)
        assert len(requests) == 2  # the trigger within the cooldown was never queued before it
        params = {"type": "deployment.retraining_triggered", "deployment_id": dep["id"]}
        async with _eventually():
            while (
                len((page := await ok(hub.admin.get(f"{V1}/events", params=params)))["items"]) < 2
            ):
                await _tick()
        for event in page["items"]:
            assert event["data"]["delivered"] is True and event["data"]["http_status"] == 200
            assert event["data"]["reason"] == "drift_failing" and event["source"] == "hub"


async def test_a_command_runs_on_low_accuracy_and_is_killed_past_its_timeout(
    tmp_path: Path,
) -> None:
    out = tmp_path / "retrain.json"
    script = f"import sys; open({str(out)!r}, 'wb').write(sys.stdin.buffer.read())"
    hub_settings = settings(tmp_path / "hub", monitoring={"retraining_timeout_s": 2})
    async with running(hub_settings) as hub:
        dep = await _deployment(hub, accuracy_below=0.9, cooldown_s=0,
                                command=[sys.executable, "-c", script])  # fmt: skip
        pkg = dep["desired"]["model_package_id"]
        agent = await hub.agent(dep["prediction_environment_id"])
        ten = [Association(request_id="r", predictions=["a"] * 10)]
        predicted = window(dep["id"], pkg, minute(0), associations=ten)
        assert (await post(agent, [predicted]))[0] == 200
        path = f"{V1}/deployments/{dep['id']}/actuals"
        good = {f"r:{i}": "a" for i in range(10)}
        await ok(hub.admin.post(path, json=_actuals(good)))  # accuracy 1.0: nothing
        await ok(hub.admin.post(path, json=_actuals({"r:0": "b", "r:1": "b"})))  # 0.8 < 0.9
        events = await _triggered(hub, dep["id"], 1)
        assert events[0]["data"]["delivered"] is True and events[0]["data"]["exit_code"] == 0
        assert events[0]["data"]["summary"] == {"accuracy": 0.8, "accuracy_below": 0.9}
        written = orjson.loads(out.read_bytes())
        assert written["reason"] == "accuracy_below" and written["deployment"]["id"] == dep["id"]
        slow = [sys.executable, "-c", "import time; time.sleep(30)"]
        body = {"name": "slow", "prediction_environment_id": dep["prediction_environment_id"],
                "model_package_id": pkg,
                "settings": {"retraining": {"accuracy_below": 0.9, "command": slow}}}  # fmt: skip
        slow_dep = await ok(hub.admin.post(f"{V1}/deployments", json=body), 201)
        one = [Association(request_id="s", predictions=["a"])]
        predicted = window(slow_dep["id"], pkg, minute(0), associations=one)
        assert (await post(agent, [predicted]))[0] == 200
        began = time.monotonic()
        await ok(hub.admin.post(f"{V1}/deployments/{slow_dep['id']}/actuals",
                                json=_actuals({"s:0": "b"})))  # fmt: skip
        (event,) = await _triggered(hub, slow_dep["id"], 1)
        assert event["data"]["delivered"] is False and "killed after 2s" in event["data"]["error"]
        assert time.monotonic() - began < 20


async def test_a_scheduled_policy_triggers_every_period(tmp_path: Path) -> None:
    clock = ManualClock(datetime.now(UTC))
    hub_settings = settings(tmp_path / "hub", notifications=LOCAL_TARGETS,
                            monitoring={"schedule_interval_s": 10})  # fmt: skip
    async with receiving() as receiver, running(hub_settings, clock) as hub:
        dep = await _deployment(hub, every_s=60, cooldown_s=0, webhook_url=receiver.url)
        clock.advance(11)  # the scheduler looks: due, as it was never triggered
        (first,) = await receiver.wait_for(1)
        assert first.json()["reason"] == "schedule" and signing.HEADER not in first.headers
        clock.advance(61)  # a period later: again
        await receiver.wait_for(2)
        assert len(receiver.requests) == 2
        assert len(await _triggered(hub, dep["id"], 2)) == 2


async def _triggered(hub: Running, dep_id: str, count: int) -> list[dict[str, Any]]:
    params = {"type": "deployment.retraining_triggered", "deployment_id": dep_id}
    async with _eventually():
        while (
            len((page := await ok(hub.admin.get(f"{V1}/events", params=params)))["items"]) < count
        ):
            await _tick()
    return list(page["items"])


def _eventually() -> Any:
    return asyncio.timeout(20)


async def _tick() -> None:
    await asyncio.sleep(0.02)  # polling the API: the test has nothing else to wait on
