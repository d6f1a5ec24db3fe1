"""Drift status: drifted windows turn a deployment at_risk or failing, normal ones bring it back;
an agent's failing report is never hidden by passing drift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.hub.stats_windows import NORMAL, SHIFTED, SLIGHT, minute, post, series, window
from tests.hub.support import V1, Running, event, ok

pytestmark = pytest.mark.anyio

MODERATE = [12, 20, 30, 38]
"""Counts whose PSI lies between 0.1 and 0.25 (at_risk by default)."""


async def _drift_events(hub: Running, dep_id: str) -> list[dict[str, Any]]:
    params = {"deployment_id": dep_id, "type": "deployment.drift_changed", "limit": "100"}
    page = await ok(hub.admin.get(f"{V1}/events", params=params))
    return list(reversed(page["items"]))


async def _health(hub: Running, dep_id: str) -> dict[str, Any]:
    return dict((await ok(hub.admin.get(f"{V1}/deployments/{dep_id}")))["service_health"])


async def test_drift_changes_status_naming_the_features_and_comes_back(hub: Running) -> None:
    pe = await hub.pe()
    dep = await hub.deployment(pe["id"], (await hub.package())["id"])
    pkg, agent = dep["desired"]["model_package_id"], await hub.agent(pe["id"])
    # 100 rows per window; min_rows is 100 and window_s 300: the last five minutes count

    base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)

    async def minutes(first: int, count: int, **features: list[int]) -> None:
        feats = {"x1": NORMAL, "x2": NORMAL} | features
        batch = [
            window(dep["id"], pkg, minute(first + i, base=base), features=feats)
            for i in range(count)
        ]
        assert (await post(agent, batch))[0] == 200

    await minutes(0, 2)
    assert [e["status"] for e in await _drift_events(hub, dep["id"])] == ["passing"]
    await minutes(2, 5, x2=MODERATE)
    await minutes(7, 5, x1=SHIFTED, x2=MODERATE)
    await minutes(12, 1, x1=SHIFTED, x2=MODERATE)  # the same status again: no new event
    changes = await _drift_events(hub, dep["id"])
    assert [e["status"] for e in changes] == ["passing", "at_risk", "failing"]
    assert list(changes[1]["data"]["features"]) == ["x2"]
    assert list(changes[2]["data"]["features"]) == ["x1", "x2"]  # worst first
    assert changes[2]["source"] == "monitor" and "x1 PSI" in changes[2]["message"]
    assert changes[2]["data"]["features"]["x1"] > 0.25 > changes[2]["data"]["features"]["x2"]
    health = await _health(hub, dep["id"])
    assert (health["status"], health["source"]) == ("failing", "monitor")
    found = await series(hub.admin, dep["id"])
    assert found["drift"]["status"] == "failing" and set(found["drift"]["features"]) == {"x1", "x2"}
    await minutes(13, 5, x2=SLIGHT)  # normal traffic again
    changes = await _drift_events(hub, dep["id"])
    assert [e["status"] for e in changes][-1] == "passing" and changes[-1]["data"]["features"] == {}
    assert (await _health(hub, dep["id"]))["status"] == "passing"


async def test_too_few_rows_are_not_judged(hub: Running) -> None:
    pe = await hub.pe()
    dep = await hub.deployment(pe["id"], (await hub.package())["id"])
    pkg, agent = dep["desired"]["model_package_id"], await hub.agent(pe["id"])
    few = window(dep["id"], pkg, minute(0), requests=20, features={"x1": [1, 1, 2, 16]})
    assert (await post(agent, [few]))[0] == 200
    assert await _drift_events(hub, dep["id"]) == []
    assert (await series(hub.admin, dep["id"]))["drift"]["status"] == "unknown"


async def test_an_agents_failing_report_is_never_hidden_by_passing_drift(hub: Running) -> None:
    pe = await hub.pe()
    dep = await hub.deployment(pe["id"], (await hub.package())["id"])
    pkg, agent = dep["desired"]["model_package_id"], await hub.agent(pe["id"])
    failing = event(pe["id"], deployment_id=dep["id"], status="failing", type="deployment.errored",
                    message="the server crashed")  # fmt: skip
    await ok(agent.post(f"{V1}/events", json={"events": [failing]}))
    batch = [window(dep["id"], pkg, minute(i)) for i in range(3)]
    assert (await post(agent, batch))[0] == 200
    assert [e["status"] for e in await _drift_events(hub, dep["id"])] == ["passing"]
    health = await _health(hub, dep["id"])
    assert (health["status"], health["source"]) == ("failing", "agent")
    # and a worse drift is not hidden by a better agent report
    ready = event(pe["id"], deployment_id=dep["id"], status="passing", type="deployment.ready",
                  message="ready")  # fmt: skip
    await ok(agent.post(f"{V1}/events", json={"events": [ready]}))
    drifted = [window(dep["id"], pkg, minute(3 + i), features={"x1": SHIFTED}) for i in range(5)]
    assert (await post(agent, drifted))[0] == 200
    health = await _health(hub, dep["id"])
    assert (health["status"], health["source"]) == ("failing", "monitor")
