"""Service health: the worst latest status of each source wins; a red agent report stays red."""

from __future__ import annotations

import pytest

from pilothouse.foundation.domain.vocabulary import Source, Status
from pilothouse.hub.service.health import decide
from pilothouse.hub.store.records import SourceStatus
from tests.hub.support import V1, Running, at, event, ok

P, R, F, U = Status.PASSING, Status.AT_RISK, Status.FAILING, Status.UNKNOWN


def _s(source: Source, status: Status, t: int) -> SourceStatus:
    return SourceStatus(source, status, f"{source}:{status}", f"E{t:03d}", t, seq=t)


@pytest.mark.parametrize(
    ("latest", "status", "reason"),
    [
        ([], U, ""),
        ([_s(Source.AGENT, U, 1)], U, "agent:unknown"),
        ([_s(Source.AGENT, P, 1)], P, "agent:passing"),
        ([_s(Source.AGENT, F, 1), _s(Source.MONITOR, P, 2)], F, "agent:failing"),
        ([_s(Source.AGENT, P, 2), _s(Source.MONITOR, R, 1)], R, "monitor:at_risk"),
        ([_s(Source.AGENT, U, 2), _s(Source.MONITOR, P, 1)], P, "monitor:passing"),
        ([_s(Source.AGENT, R, 1), _s(Source.HUB, R, 2)], R, "hub:at_risk"),
        ([_s(Source.AGENT, F, 1), _s(Source.HUB, R, 2), _s(Source.USER, P, 3)], F, "agent:failing"),
    ],
)
def test_rule(latest: list[SourceStatus], status: Status, reason: str) -> None:
    health = decide(latest)
    assert (health.status, health.reason) == (status, reason)


@pytest.mark.anyio
async def test_health_follows_each_sources_latest_report(hub: Running) -> None:
    pe = await hub.pe()
    pkg = await hub.package()
    dep = await hub.deployment(pe["id"], pkg["id"])
    agent = await hub.agent(pe["id"])

    async def post(*events: dict[str, object]) -> None:
        await ok(agent.post(f"{V1}/events", json={"events": list(events)}))

    async def health() -> dict[str, object]:
        view: dict[str, object] = await ok(
            hub.admin.get(f"{V1}/deployments/{dep['id']}/service-health")
        )
        return view

    d = {"deployment_id": dep["id"]}
    red = event(pe["id"], time=at(10), status="failing", message="agent: crashed", **d)
    await post(event(pe["id"], time=at(1), status="passing", **d), red)
    drift_ok = event(pe["id"], time=at(20), status="passing", source="monitor", **d)
    await ok(hub.admin.post(f"{V1}/events", json={"events": [drift_ok]}))
    view = await health()
    assert (view["status"], view["reason"], view["event_id"]) == (
        "failing",
        "agent: crashed",
        red["id"],
    )
    assert view["deployment_id"] == dep["id"]
    recent = [e["id"] for e in view["recent_events"] if e["source"] != "user"]  # type: ignore[attr-defined]
    assert recent[:2] == [drift_ok["id"], red["id"]]

    # what arrived last counts, whatever time its sender wrote into it (no clock decides)
    older = event(pe["id"], time=at(5), status="passing", message="agent: back", **d)
    await post(older, event(pe["id"], time=at(30), status="informational", **d))
    assert ((await health())["status"], (await health())["reason"]) == ("passing", "agent: back")
    await post(event(pe["id"], time=at(35), status="failing", message="agent: crashed", **d))
    assert (await health())["status"] == "failing"

    await post(event(pe["id"], time=at(40), status="passing", message="agent: ready", **d))
    view = await health()
    assert (view["status"], view["reason"]) == ("passing", "agent: ready")
    deployment = await ok(hub.admin.get(f"{V1}/deployments/{dep['id']}"))
    assert deployment["service_health"]["status"] == "passing"

    await ok(hub.admin.post(f"{V1}/events", json={"events": [
        event(pe["id"], time=at(50), status="at_risk", source="monitor", message="drift", **d),
    ]}))  # fmt: skip
    assert (await health())["status"] == "at_risk"
