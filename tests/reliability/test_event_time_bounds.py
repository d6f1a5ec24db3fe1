"""Event times are bounded by a clock-skew allowance; health follows what arrived last.

Issue 9, item 5: an event dated 2999-01-01 with status ``failing`` pinned its
deployment at ``failing`` (health was chosen by event time, so a later
``passing`` report with the current time never won), and years 0001 and 9999
and ``"time": 0`` were accepted. An agent with a skewed clock was enough.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.hub.support import V1, Running, answer, event, ok, rows, running, settings

pytestmark = pytest.mark.anyio


def _now(offset_s: float = 0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=offset_s)).isoformat()


async def _deployment(hub: Running) -> tuple[dict[str, Any], dict[str, Any], Any]:
    pe = await hub.pe()
    dep = await hub.deployment(pe["id"], (await hub.package())["id"])
    return pe, dep, await hub.agent(pe["id"])


@pytest.mark.parametrize(
    ("time", "problem"),
    [
        ("2999-01-01T00:00:00Z", "more than the allowed clock skew ahead"),
        ("9999-12-31T23:59:59Z", "more than the allowed clock skew ahead"),
        ("0001-01-01T00:00:00Z", "too far in the past"),
        ("1970-01-01T00:00:00Z", "too far in the past"),
        (0, "expected an RFC 3339 date-time with a time zone"),
        (1767225600, "expected an RFC 3339 date-time with a time zone"),
        ("1767225600", "expected an RFC 3339 date-time with a time zone"),
        ("2026-01-01T00:00:00", "expected an RFC 3339 date-time with a time zone"),
    ],
)
async def test_times_outside_the_allowance_are_refused_naming_the_field(
    hub: Running, time: Any, problem: str
) -> None:
    pe, dep, agent = await _deployment(hub)
    fine = event(pe["id"], deployment_id=dep["id"], time=_now())
    bad = event(pe["id"], deployment_id=dep["id"], status="failing") | {"time": time}
    status, body = await answer(agent.post(f"{V1}/events", json={"events": [fine, bad]}))
    assert status == 422, body
    assert [f["field"] for f in body["fields"]] == ["events.1.time"], body
    assert problem in body["message"], body
    assert await rows(hub, "health_sources") == 0  # the batch is refused whole


async def test_the_allowance_is_a_setting(tmp_path: Path, anyio_backend: str) -> None:
    async with running(settings(tmp_path, events={"max_clock_skew_s": 3600})) as hub:
        pe, dep, agent = await _deployment(hub)
        ahead = event(pe["id"], deployment_id=dep["id"], time=_now(1800))
        await ok(agent.post(f"{V1}/events", json={"events": [ahead]}))
        beyond = event(pe["id"], deployment_id=dep["id"], time=_now(7200))
        status, _ = await answer(agent.post(f"{V1}/events", json={"events": [beyond]}))
        assert status == 422


async def test_a_clock_running_ahead_cannot_pin_health(hub: Running) -> None:
    """A red report dated ahead (within the allowance), then a green one dated now: green."""
    pe, dep, agent = await _deployment(hub)
    ahead = event(pe["id"], deployment_id=dep["id"], status="failing", time=_now(240))
    await ok(agent.post(f"{V1}/events", json={"events": [ahead]}))
    now = event(pe["id"], deployment_id=dep["id"], status="passing", time=_now(), message="ok")
    await ok(agent.post(f"{V1}/events", json={"events": [now]}))
    health = await ok(hub.admin.get(f"{V1}/deployments/{dep['id']}/service-health"))
    assert (health["status"], health["event_id"]) == ("passing", now["id"])


async def test_within_a_batch_the_last_event_wins_whatever_its_time(hub: Running) -> None:
    pe, dep, agent = await _deployment(hub)
    d = {"deployment_id": dep["id"]}
    first = event(pe["id"], status="failing", time=_now(200), **d)
    last = event(pe["id"], status="at_risk", time=_now(-200), **d)
    await ok(agent.post(f"{V1}/events", json={"events": [first, last]}))
    health = await ok(hub.admin.get(f"{V1}/deployments/{dep['id']}/service-health"))
    assert (health["status"], health["event_id"]) == ("at_risk", last["id"])


async def test_a_retried_old_event_changes_nothing(hub: Running) -> None:
    """Idempotent ingest: a duplicate is not "arriving last"."""
    pe, dep, agent = await _deployment(hub)
    d = {"deployment_id": dep["id"]}
    red = event(pe["id"], status="failing", time=_now(-10), **d)
    green = event(pe["id"], status="passing", time=_now(), **d)
    await ok(agent.post(f"{V1}/events", json={"events": [red]}))
    await ok(agent.post(f"{V1}/events", json={"events": [green]}))
    result = await ok(agent.post(f"{V1}/events", json={"events": [red]}))
    assert result == {"accepted": 0, "duplicates": 1}
    health = await ok(hub.admin.get(f"{V1}/deployments/{dep['id']}/service-health"))
    assert health["status"] == "passing"


async def test_the_agents_red_report_still_beats_green_from_elsewhere(hub: Running) -> None:
    """DESIGN.md: the agent's most recent report wins over a better status from elsewhere."""
    pe, dep, agent = await _deployment(hub)
    d = {"deployment_id": dep["id"]}
    await ok(agent.post(f"{V1}/events", json={"events": [event(pe["id"], status="failing", **d)]}))
    drift_ok = event(pe["id"], status="passing", source="monitor", time=_now(), **d)
    await ok(hub.admin.post(f"{V1}/events", json={"events": [drift_ok]}))
    health = await ok(hub.admin.get(f"{V1}/deployments/{dep['id']}/service-health"))
    assert health["status"] == "failing"
