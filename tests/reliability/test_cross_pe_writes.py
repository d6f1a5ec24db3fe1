"""An agent token speaks only for its own PE: every agent-channel endpoint, tried across PEs.

Issue 9, item 1: PE A's agent token could post events about PE B's
deployments (turning B's health red), post as source ``user`` or ``hub``
(forging the audit trail) and post about deployments that do not exist. The
matrix below has one entry per route an agent token may call — taken from the
route table, so a new agent route without an entry fails here — and tries each
with A's token on A's own resources (allowed) and on B's (403, nothing stored).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from pilothouse.foundation.domain.events import new_id
from pilothouse.hub.api.keys import Access
from pilothouse.hub.api.routes import ROUTES
from tests.hub import stats_windows as statistics
from tests.hub.stats_windows import minute
from tests.hub.support import V1, Running, answer, event, ok, rows

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Side:
    """One PE's resources."""

    pe: str
    deployment: str
    package: str
    package_token: str
    """The id of a package token of the PE."""


Call = Callable[[aiohttp.ClientSession, Side, Side], Any]
"""A request by ``own``'s agent, aimed at ``target``'s resources."""


def _revoke_package_token(http: aiohttp.ClientSession, target: Side) -> Any:
    return http.delete(
        f"{V1}/prediction-environments/{target.pe}/package-tokens/{target.package_token}"
    )


MATRIX: dict[str, Call] = {
    "GET /api/v1/prediction-environments/{id}": lambda http, own, target: http.get(
        f"{V1}/prediction-environments/{target.pe}"
    ),
    "GET /api/v1/prediction-environments/{id}/desired-state": lambda http, own, target: http.get(
        f"{V1}/prediction-environments/{target.pe}/desired-state"
    ),
    "GET /api/v1/prediction-environments/{id}/watch": lambda http, own, target: http.get(
        f"{V1}/prediction-environments/{target.pe}/watch"
    ),
    "POST /api/v1/prediction-environments/{id}/heartbeat": lambda http, own, target: http.post(
        f"{V1}/prediction-environments/{target.pe}/heartbeat", json={"deployments": {}}
    ),
    "PUT /api/v1/deployments/{id}/status": lambda http, own, target: http.put(
        f"{V1}/deployments/{target.deployment}/status", json={"state": "ready", "generation": 1}
    ),
    "POST /api/v1/prediction-environments/{id}/package-tokens": lambda http, own, target: http.post(
        f"{V1}/prediction-environments/{target.pe}/package-tokens"
    ),
    "DELETE /api/v1/prediction-environments/{id}/package-tokens/{token_id}": (
        lambda http, own, target: _revoke_package_token(http, target)
    ),
    "POST /api/v1/events": lambda http, own, target: http.post(
        f"{V1}/events",
        json={"events": [event(target.pe, deployment_id=target.deployment, status="failing")]},
    ),
    "POST /api/v1/agent/monitoring": lambda http, own, target: http.post(
        f"{V1}/agent/monitoring",
        data=statistics.body([statistics.window(target.deployment, target.package, minute(0))]),
        headers={"Content-Type": "application/json"},
    ),
    "POST /api/v1/deployments/{id}/rollback": lambda http, own, target: http.post(
        f"{V1}/deployments/{target.deployment}/rollback",
        json={"from_package_id": target.package, "to_package_id": target.package, "reason": "x"},
    ),
}
SHARED: dict[str, Call] = {  # model packages: readable by every agent, owned by no PE
    "GET /api/v1/model-packages": lambda http, own, target: http.get(f"{V1}/model-packages"),
    "GET /api/v1/model-packages/{id}": lambda http, own, target: http.get(
        f"{V1}/model-packages/{target.package}"
    ),
    "GET /api/v1/model-packages/{id}/archive": lambda http, own, target: http.get(
        f"{V1}/model-packages/{target.package}/archive"
    ),
}


def test_the_matrix_covers_every_agent_route() -> None:
    agent_routes = {
        f"{r.method} {r.path}" for r in ROUTES if r.access in (Access.AGENT, Access.PACKAGES)
    }
    assert set(MATRIX) | set(SHARED) == agent_routes
    assert not set(MATRIX) & set(SHARED)


async def _two_pes(hub: Running) -> tuple[Side, Side, aiohttp.ClientSession]:
    pkg = await hub.package()
    sides = []
    for name in ("a", "b"):
        pe = await hub.pe(name)
        dep = await hub.deployment(pe["id"], pkg["id"], f"dep-{name}")
        tokens = f"{V1}/prediction-environments/{pe['id']}/package-tokens"
        token = await ok(hub.admin.post(tokens), 201)
        sides.append(Side(pe["id"], dep["id"], pkg["id"], token["id"]))
    return sides[0], sides[1], await hub.agent(sides[0].pe)


async def test_an_agent_token_is_refused_everything_of_another_pe(hub: Running) -> None:
    a, b, agent_a = await _two_pes(hub)
    before = await ok(hub.admin.get(f"{V1}/deployments/{b.deployment}"))
    events_before = await rows(hub, "events")
    for route, call in MATRIX.items():
        status, body = await answer(call(agent_a, a, b))
        assert status == 403 and body["error"] == "forbidden", (route, status, body)
    for route, call in SHARED.items():
        async with call(agent_a, a, b) as resp:
            assert resp.status == 200, route
    after = await ok(hub.admin.get(f"{V1}/deployments/{b.deployment}"))
    assert after == before  # B's observed state and health untouched
    assert await rows(hub, "events") == events_before


async def test_the_same_calls_on_its_own_pe_are_allowed(hub: Running) -> None:
    a, _, agent_a = await _two_pes(hub)
    for route, call in (MATRIX | SHARED).items():
        async with call(agent_a, a, a) as resp:
            assert resp.status in (200, 201, 204), (route, resp.status, await resp.read())
    health = await ok(hub.admin.get(f"{V1}/deployments/{a.deployment}/service-health"))
    assert health["status"] == "failing"  # its own agent's report counts


async def test_events_about_another_pes_deployment_are_refused_whole(hub: Running) -> None:
    """The exact attack of the issue: A's PE in the event, B's deployment in it."""
    a, b, agent_a = await _two_pes(hub)
    mine = event(a.pe, deployment_id=a.deployment, status="passing")
    forged = event(a.pe, deployment_id=b.deployment, status="failing")
    status, body = await answer(agent_a.post(f"{V1}/events", json={"events": [mine, forged]}))
    assert status == 403 and "events.1.deployment_id" in body["message"], body
    assert b.deployment in body["message"] and a.pe in body["message"]
    health = await ok(hub.admin.get(f"{V1}/deployments/{b.deployment}/service-health"))
    assert health["status"] == "unknown" and health["recent_events"][0]["source"] == "user"
    listed = await ok(hub.admin.get(f"{V1}/events", params={"source": "agent"}))
    assert listed["items"] == []  # the batch was refused whole, its good event too


@pytest.mark.parametrize("source", ["user", "hub", "monitor"])
async def test_an_agent_token_posts_only_agent_events(hub: Running, source: str) -> None:
    a, _, agent_a = await _two_pes(hub)
    forged = event(a.pe, deployment_id=a.deployment, source=source, status="passing")
    status, body = await answer(agent_a.post(f"{V1}/events", json={"events": [forged]}))
    assert status == 403 and "events.0.source" in body["message"], body
    assert f"not {source!r}" in body["message"]
    stored = await ok(hub.admin.get(f"{V1}/events", params={"type": forged["type"]}))
    assert stored["items"] == []


async def test_events_about_a_deployment_the_hub_never_had_are_404(hub: Running) -> None:
    """404, not 403: the agent's outbox drops such an event instead of retrying it forever."""
    a, _, agent_a = await _two_pes(hub)
    ghost = event(a.pe, deployment_id="dep-never-was", status="failing")
    status, body = await answer(agent_a.post(f"{V1}/events", json={"events": [ghost]}))
    assert status == 404, body
    assert body["fields"][0]["field"] == "events.0.deployment_id"
    assert await rows(hub, "health_sources") == 0


async def test_a_deleted_deployment_of_its_own_pe_may_still_be_reported(hub: Running) -> None:
    """The agent reports stopping a deployment after the hub deleted it: that is its own."""
    a, _, agent_a = await _two_pes(hub)
    await answer(hub.admin.delete(f"{V1}/deployments/{a.deployment}"))
    stopped = event(a.pe, deployment_id=a.deployment, type="deployment.stopped", id=new_id())
    result = await ok(agent_a.post(f"{V1}/events", json={"events": [stopped]}))
    assert result == {"accepted": 1, "duplicates": 0}


async def test_the_admin_may_still_record_any_source(hub: Running) -> None:
    a, _, _ = await _two_pes(hub)
    monitor = event(a.pe, deployment_id=a.deployment, source="monitor", status="at_risk")
    await ok(hub.admin.post(f"{V1}/events", json={"events": [monitor]}))
    health = await ok(hub.admin.get(f"{V1}/deployments/{a.deployment}/service-health"))
    assert health["status"] == "at_risk"
