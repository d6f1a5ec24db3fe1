"""Notifications end to end: real receivers, a manual clock, grouping, repeats, retries, restarts.

Events are posted to a real hub; its dispatcher routes them into alert groups
and sends messages to receivers on 127.0.0.1. The hub's background clock is a
:class:`ManualClock`: windows, repeat intervals and backoffs pass when the test
advances it, never in real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pilothouse.hub.clock import ManualClock
from pilothouse.hub.notifications import signing
from tests.hub.quiet import WatchedClock
from tests.hub.receivers import LOCAL_TARGETS, Answer, Receiver, down_url, receiving
from tests.hub.support import V1, Running, at, event, ok, rows, running, settings

pytestmark = pytest.mark.anyio

SECRET = "the-receivers-shared-secret"
HUB_URL = "http://hub.example:8700"


@contextlib.asynccontextmanager
async def notifying(
    tmp_path: Path, clock: WatchedClock, **overrides: Any
) -> AsyncIterator[Running]:
    notifications = {
        "hub_url": HUB_URL,
        "backoff_initial_s": 10,
        "backoff_max_s": 10,
        "max_attempts": 3,
        **LOCAL_TARGETS,
    } | overrides.pop("notifications", {})
    hub_settings = settings(tmp_path / "hub", notifications=notifications, **overrides)
    async with running(hub_settings, clock) as hub:
        yield hub


@pytest.fixture
def clock() -> WatchedClock:
    return WatchedClock(ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC)))


async def webhook(hub: Running, receiver: Receiver, name: str = "hook") -> str:
    body = {"name": name, "type": "webhook", "url": receiver.url, "secret": SECRET}
    channel = await ok(hub.admin.post(f"{V1}/notification-channels", json=body), 201)
    return str(channel["id"])


async def policy(hub: Running, channel_id: str, **rules: Any) -> dict[str, Any]:
    body = {"name": rules.pop("name", "p"), "channel_id": channel_id} | rules
    created: dict[str, Any] = await ok(
        hub.admin.post(f"{V1}/notification-policies", json=body), 201
    )
    return created


async def post(hub: Running, *events: dict[str, Any]) -> None:
    await ok(hub.admin.post(f"{V1}/events", json={"events": list(events)}))


async def until(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    async with asyncio.timeout(timeout):
        while not (found := await check()):  # noqa: ASYNC110 - polling the hub's API
            await asyncio.sleep(0.02)
    return found


async def routed(hub: Running, pending: int) -> None:
    """Wait until the dispatcher holds ``pending`` events for the next messages."""

    async def check() -> bool:
        return await rows(hub, "notification_pending") == pending

    await until(check)


async def deliveries(hub: Running, **params: str) -> list[dict[str, Any]]:
    page = await ok(hub.admin.get(f"{V1}/notification-deliveries", params=params))
    return list(page["items"])


def failing(pe: str, dep: str, t: float, **fields: Any) -> dict[str, Any]:
    base = {"deployment_id": dep, "time": at(t), "status": "failing", "type": "deployment.errored"}
    return event(pe, **(base | {"message": f"{dep} errored at {t:g}"} | fields))


def passing(pe: str, dep: str, t: float) -> dict[str, Any]:
    return event(pe, deployment_id=dep, time=at(t), status="passing", type="deployment.ready")


def signed(request: Any) -> dict[str, Any]:
    assert signing.verify(SECRET, request.body, request.headers[signing.HEADER], time.time())
    message: dict[str, Any] = request.json()
    return message


async def test_events_of_one_deployment_in_a_window_become_one_message(
    tmp_path: Path, clock: WatchedClock
) -> None:
    async with notifying(tmp_path, clock) as hub, receiving() as receiver:
        pe = await hub.pe()
        pkg = await hub.package()
        dep = await hub.deployment(pe["id"], pkg["id"], "fraud")
        channel = await webhook(hub, receiver)
        await policy(hub, channel, statuses=["failing", "at_risk"], group_window_s=60)
        first = [failing(pe["id"], dep["id"], i) for i in range(3)]
        other = failing(pe["id"], "dep-other", 1)
        await post(hub, *first, other, passing(pe["id"], "dep-third", 2))
        await routed(hub, 4)
        clock.advance(59)
        await receiver.nothing_more(0, clock)
        clock.advance(1)
        requests = await receiver.wait_for(2)
        await receiver.nothing_more(2, clock)
    by_deployment = {m["deployment_id"]: m for m in map(signed, requests)}
    message = by_deployment[dep["id"]]
    assert [e["id"] for e in message["events"]] == [e["id"] for e in first]
    assert message["kind"] == "firing" and message["status"] == "failing"
    assert (
        message["deployment_name"] == "fraud" and message["prediction_environment_name"] == "prod"
    )
    assert message["deployment_url"] == f"{HUB_URL}/api/v1/deployments/{dep['id']}"
    assert message["summary"] == f"fraud is failing: {dep['id']} errored at 2"
    assert message["policy"]["name"] == "p" and message["omitted_events"] == 0
    assert [e["id"] for e in by_deployment["dep-other"]["events"]] == [other["id"]]
    assert requests[0].headers["X-Pilothouse-Kind"] == "firing"


async def test_filters_choose_the_events(tmp_path: Path, clock: WatchedClock) -> None:
    async with notifying(tmp_path, clock) as hub, receiving() as receiver:
        pe, other_pe = await hub.pe("a"), await hub.pe("b")
        channel = await webhook(hub, receiver)
        await policy(
            hub,
            channel,
            event_types=["action.*.failed"],
            prediction_environment_ids=[pe["id"]],
            deployment_ids=["d1", "d2"],
            group_window_s=0,
        )
        wanted = failing(pe["id"], "d1", 1, type="action.launch.failed")
        await post(
            hub,
            failing(pe["id"], "d1", 0, type="action.launch.retrying"),  # another type
            failing(other_pe["id"], "d1", 0, type="action.launch.failed"),  # another PE
            failing(pe["id"], "d9", 0, type="action.launch.failed"),  # another deployment
            wanted,
        )
        (request,) = await receiver.wait_for(1)
        await receiver.nothing_more(1, clock)
    assert [e["id"] for e in signed(request)["events"]] == [wanted["id"]]


async def test_a_still_failing_deployment_is_renotified_at_most_every_repeat_interval(
    tmp_path: Path, clock: WatchedClock
) -> None:
    start = clock.now()

    async def advance_to(second: float) -> None:
        # Time moves on once what was due is done, as it would: a jump of minutes while a
        # send is still being recorded would outrun the delivery's claim (timeout + 30 s)
        # and send it again, as at-least-once allows after a real outage (CI saw it).
        await clock.until_idle()
        clock.advance(second - (clock.now() - start).total_seconds())

    async with notifying(tmp_path, clock) as hub, receiving() as receiver:
        pe = await hub.pe()
        channel = await webhook(hub, receiver)
        await policy(hub, channel, statuses=["failing"], group_window_s=10, repeat_interval_s=300)
        await post(hub, failing(pe["id"], "d1", 0))
        await routed(hub, 1)
        await advance_to(10)
        await receiver.wait_for(1)
        for second in (20, 100):
            await advance_to(second)
            await post(hub, failing(pe["id"], "d1", second))
        await routed(hub, 2)
        await advance_to(309)
        await receiver.nothing_more(1, clock)
        await advance_to(310)  # 300 s after the first message: what came in since
        await receiver.wait_for(2)
        await advance_to(609)
        await receiver.nothing_more(2, clock)
        await advance_to(610)  # 300 s later, nothing new: a reminder
        await receiver.wait_for(3)
    kinds = [(m["kind"], m["status"], len(m["events"])) for m in map(signed, receiver.requests)]
    assert kinds == [("firing", "failing", 1), ("firing", "failing", 2), ("repeat", "failing", 1)]
    reminded = receiver.requests[2].json()["events"][0]
    assert reminded["time"] == at(100).isoformat().replace("+00:00", "Z")


async def test_a_worse_status_is_not_held_back_by_the_repeat_interval(
    tmp_path: Path, clock: WatchedClock
) -> None:
    async with notifying(tmp_path, clock) as hub, receiving() as receiver:
        pe = await hub.pe()
        channel = await webhook(hub, receiver)
        await policy(hub, channel, group_window_s=5, repeat_interval_s=3600)
        await post(hub, failing(pe["id"], "d1", 0, status="at_risk"))
        await routed(hub, 1)
        clock.advance(5)
        await receiver.wait_for(1)
        await post(hub, failing(pe["id"], "d1", 10))
        await routed(hub, 1)
        clock.advance(5)
        await receiver.wait_for(2)
    assert [signed(r)["status"] for r in receiver.requests] == ["at_risk", "failing"]


async def test_resolved_when_the_deployment_is_passing_again(
    tmp_path: Path, clock: WatchedClock
) -> None:
    async with notifying(tmp_path, clock) as hub, receiving() as receiver:
        pe = await hub.pe()
        channel = await webhook(hub, receiver)
        await policy(hub, channel, statuses=["failing"], group_window_s=10, repeat_interval_s=600)
        await post(hub, failing(pe["id"], "d1", 0))
        await routed(hub, 1)
        clock.advance(10)
        await receiver.wait_for(1)
        # a green report from elsewhere does not resolve a red agent report (DESIGN.md)
        await post(hub, passing(pe["id"], "d1", 20) | {"source": "monitor"})
        clock.advance(30)
        await receiver.nothing_more(1, clock)
        await post(hub, passing(pe["id"], "d1", 40))  # the agent: passing again
        await clock.until_idle()  # routed before time moves on
        clock.advance(10)
        await receiver.wait_for(2)
        await post(hub, failing(pe["id"], "d1", 60))  # a new incident opens a new group
        await routed(hub, 1)
        clock.advance(10)
        await receiver.wait_for(3)
    messages = [signed(r) for r in receiver.requests]
    assert [(m["kind"], m["status"]) for m in messages] == [
        ("firing", "failing"),
        ("resolved", "passing"),
        ("firing", "failing"),
    ]
    assert messages[1]["summary"] == "d1 is passing again"


async def test_a_blip_inside_the_window_is_one_resolved_message(
    tmp_path: Path, clock: WatchedClock
) -> None:
    async with notifying(tmp_path, clock) as hub, receiving() as receiver:
        pe = await hub.pe()
        channel = await webhook(hub, receiver)
        await policy(hub, channel, group_window_s=30)
        await post(hub, failing(pe["id"], "d1", 0), passing(pe["id"], "d1", 1))
        await routed(hub, 2)
        clock.advance(30)
        (request,) = await receiver.wait_for(1)
        await receiver.nothing_more(1, clock)
    message = signed(request)
    assert (message["kind"], message["status"], len(message["events"])) == (
        "resolved",
        "passing",
        2,
    )


async def test_events_without_a_deployment_group_per_environment(
    tmp_path: Path, clock: WatchedClock
) -> None:
    async with notifying(tmp_path, clock) as hub, receiving() as receiver:
        pe = await hub.pe()
        channel = await webhook(hub, receiver)
        await policy(hub, channel, event_types=["agent.*"], group_window_s=10)
        offline = event(pe["id"], time=at(0), type="agent.offline", status="failing")
        await post(hub, offline)
        await routed(hub, 1)
        clock.advance(10)
        await receiver.wait_for(1)
        await post(hub, event(pe["id"], time=at(20), type="agent.online", status="passing"))
        await clock.until_idle()  # routed before time moves on
        clock.advance(10)
        await receiver.wait_for(2)
    messages = [signed(r) for r in receiver.requests]
    assert [m["kind"] for m in messages] == ["firing", "resolved"]
    assert messages[0]["deployment_id"] is None and messages[0]["deployment_url"] is None
    assert messages[0]["summary"].startswith("prediction environment prod is failing")


async def test_slack_gets_block_kit_with_colour_deployment_pe_message_time_and_link(
    tmp_path: Path, clock: WatchedClock
) -> None:
    async with notifying(tmp_path, clock) as hub, receiving() as slack:
        pe = await hub.pe()
        pkg = await hub.package()
        dep = await hub.deployment(pe["id"], pkg["id"], "fraud")
        body = {"name": "oncall", "type": "slack", "url": slack.url}
        channel = await ok(hub.admin.post(f"{V1}/notification-channels", json=body), 201)
        await policy(hub, channel["id"], statuses=["failing"], group_window_s=0)
        await post(hub, failing(pe["id"], dep["id"], 0, message="OOM <killed> & restarted"))
        (request,) = await slack.wait_for(1)
    payload = request.json()
    attachment = payload["attachments"][0]
    assert attachment["color"] == "#E01E5A"
    text = repr(attachment["blocks"])
    link = f"{HUB_URL}/api/v1/deployments/{dep['id']}"
    assert f"<{link}|fraud>" in text and "failing" in text and "prod" in text
    assert "OOM &lt;killed&gt; &amp; restarted" in text
    assert "<!date^" in text and "2026-01-01T00:00:00Z" in text
    assert attachment["blocks"][-1]["elements"][0]["url"] == link
    assert payload["text"].startswith("FAILING: fraud")


async def test_failed_attempts_are_retried_with_backoff_and_all_recorded(
    tmp_path: Path, clock: WatchedClock
) -> None:
    async with notifying(tmp_path, clock) as hub, receiving(answers=[500, 503]) as receiver:
        pe = await hub.pe()
        channel = await webhook(hub, receiver)
        await policy(hub, channel, group_window_s=0)
        await post(hub, failing(pe["id"], "d1", 0))
        for attempts in (1, 2):
            await until(lambda n=attempts: _attempted(hub, n))
            clock.advance(10)
        await until(lambda: _state(hub, "delivered"))
        (delivery,) = await deliveries(hub)
        await receiver.wait_for(3)
    assert [(a["outcome"], a["http_status"]) for a in delivery["attempt_log"]] == [
        ("retry", 500),
        ("retry", 503),
        ("delivered", 200),
    ]
    assert "500" in delivery["attempt_log"][0]["error"]
    assert len({r.headers["X-Pilothouse-Delivery"] for r in receiver.requests}) == 1


async def test_a_receiver_that_is_down_is_retried_then_given_up(
    tmp_path: Path, clock: WatchedClock
) -> None:
    async with notifying(tmp_path, clock) as hub:
        pe = await hub.pe()
        body = {"name": "down", "type": "webhook", "url": down_url()}
        channel = await ok(hub.admin.post(f"{V1}/notification-channels", json=body), 201)
        await policy(hub, channel["id"], group_window_s=0)
        await post(hub, failing(pe["id"], "d1", 0))
        for attempts in (1, 2):
            await until(lambda n=attempts: _attempted(hub, n))
            (pending,) = await deliveries(hub, state="pending")
            assert pending["next_attempt_at"] is not None
            clock.advance(10)
        await until(lambda: _state(hub, "failed"))
        (delivery,) = await deliveries(hub)
    assert [a["outcome"] for a in delivery["attempt_log"]] == ["retry", "retry", "failed"]
    assert all(a["http_status"] is None and a["error"] for a in delivery["attempt_log"])
    assert delivery["next_attempt_at"] is None and "s3cr3t" not in delivery["last_error"]


async def test_an_answer_that_will_not_change_is_not_retried(
    tmp_path: Path, clock: WatchedClock
) -> None:
    async with notifying(tmp_path, clock) as hub, receiving(answers=[404]) as receiver:
        pe = await hub.pe()
        channel = await webhook(hub, receiver)
        await policy(hub, channel, group_window_s=0)
        await post(hub, failing(pe["id"], "d1", 0))
        await until(lambda: _state(hub, "failed"))
        (delivery,) = await deliveries(hub)
    assert [(a["outcome"], a["http_status"]) for a in delivery["attempt_log"]] == [("failed", 404)]


async def test_ingest_never_waits_for_a_slow_receiver(tmp_path: Path, clock: WatchedClock) -> None:
    async with notifying(tmp_path, clock) as hub, receiving(delay_s=3) as receiver:
        pe = await hub.pe()
        channel = await webhook(hub, receiver)
        await policy(hub, channel, group_window_s=0)
        await post(hub, failing(pe["id"], "d1", 0))
        await receiver.wait_for(1)  # the receiver now sits on the request
        began = time.perf_counter()
        for i in range(20):
            await post(hub, failing(pe["id"], f"d{i + 2}", i))
        assert time.perf_counter() - began < 2.0


async def test_a_restart_loses_no_pending_notification(tmp_path: Path, clock: WatchedClock) -> None:
    async with receiving(answers=[500]) as receiver:
        async with notifying(tmp_path, clock) as hub:
            pe = await hub.pe()
            channel = await webhook(hub, receiver)
            await policy(hub, channel, deployment_ids=["d1"], group_window_s=60)
            await post(hub, failing(pe["id"], "d1", 0))
            await routed(hub, 1)  # waiting for its window
            retried = await policy(
                hub, channel, name="now", deployment_ids=["d2"], group_window_s=0
            )
            await post(hub, failing(pe["id"], "d2", 0))
            await until(lambda: _attempted(hub, 1))  # the first attempt failed: a retry is due
            await post(hub, failing(pe["id"], "d1", 1))
        clock.advance(60)
        async with notifying(tmp_path, clock) as hub:
            await receiver.wait_for(3)
            await until(lambda: _delivered(hub, 2))
            await receiver.nothing_more(3, clock)
    first, *later = [signed(r) for r in receiver.requests]
    assert (first["deployment_id"], first["policy"]["id"]) == ("d2", retried["id"])
    assert sorted((m["deployment_id"], len(m["events"])) for m in later) == [("d1", 2), ("d2", 1)]
    assert receiver.requests[0].headers["X-Pilothouse-Delivery"] in {
        r.headers["X-Pilothouse-Delivery"] for r in receiver.requests[1:]
    }


async def _attempted(hub: Running, count: int) -> bool:
    found = await deliveries(hub)
    return bool(found) and found[0]["attempts"] >= count


async def _state(hub: Running, state: str) -> bool:
    return bool(await deliveries(hub, state=state))


async def _delivered(hub: Running, count: int) -> bool:
    return len(await deliveries(hub, state="delivered")) >= count


async def test_a_429_is_retried_no_sooner_than_its_retry_after(
    tmp_path: Path, clock: WatchedClock
) -> None:
    throttled = Answer(429, headers={"Retry-After": "120"})
    slow_backoff = {"backoff_initial_s": 10, "backoff_max_s": 600}
    async with (
        notifying(tmp_path, clock, notifications=slow_backoff) as hub,
        receiving(answers=[throttled]) as receiver,
    ):
        pe = await hub.pe()
        channel = await webhook(hub, receiver)
        await policy(hub, channel, group_window_s=0)
        await post(hub, failing(pe["id"], "d1", 0))
        await until(lambda: _attempted(hub, 1))
        (pending,) = await deliveries(hub, state="pending")
        retry_at = clock.now() + timedelta(seconds=120)  # not the 5-10 s of the backoff
        assert pending["next_attempt_at"] == retry_at.isoformat().replace("+00:00", "Z")
        clock.advance(119)
        await receiver.nothing_more(1, clock)
        clock.advance(1)
        await receiver.wait_for(2)
        await until(lambda: _state(hub, "delivered"))
        (delivery,) = await deliveries(hub)
    assert [(a["outcome"], a["http_status"]) for a in delivery["attempt_log"]] == [
        ("retry", 429),
        ("delivered", 200),
    ]
    assert "the receiver answered 429" in delivery["attempt_log"][0]["error"]


@pytest.mark.parametrize("status", [408, 425])
async def test_request_timeout_and_too_early_are_retried(
    tmp_path: Path, clock: WatchedClock, status: int
) -> None:
    async with notifying(tmp_path, clock) as hub, receiving(answers=[status]) as receiver:
        pe = await hub.pe()
        channel = await webhook(hub, receiver)
        await policy(hub, channel, group_window_s=0)
        await post(hub, failing(pe["id"], "d1", 0))
        await until(lambda: _attempted(hub, 1))
        clock.advance(10)  # the backoff: at most backoff_max_s
        await until(lambda: _state(hub, "delivered"))
        (delivery,) = await deliveries(hub)
        await receiver.nothing_more(2, clock)
    assert [(a["outcome"], a["http_status"]) for a in delivery["attempt_log"]] == [
        ("retry", status),
        ("delivered", 200),
    ]


async def test_a_receiver_slower_than_the_timeout_is_retried(
    tmp_path: Path, clock: WatchedClock
) -> None:
    late = Answer(200, delay_s=3.0)  # answers, but long after the hub gave up on it
    async with (
        notifying(tmp_path, clock, notifications={"timeout_s": 0.5}) as hub,
        receiving(answers=[late]) as receiver,
    ):
        pe = await hub.pe()
        channel = await webhook(hub, receiver)
        await policy(hub, channel, group_window_s=0)
        await post(hub, failing(pe["id"], "d1", 0))
        await until(lambda: _attempted(hub, 1))
        (pending,) = await deliveries(hub, state="pending")
        clock.advance(10)
        await until(lambda: _state(hub, "delivered"))
        (delivery,) = await deliveries(hub)
        first, second = await receiver.wait_for(2)
    (timed_out, delivered) = delivery["attempt_log"]
    assert (timed_out["outcome"], timed_out["http_status"]) == ("retry", None)
    assert timed_out["error"] == "no answer within 0.5s"
    assert 500 <= timed_out["duration_ms"] < 3000
    assert (delivered["outcome"], delivered["http_status"]) == ("delivered", 200)
    assert pending["attempts"] == 1 and pending["next_attempt_at"] is not None
    delivery_ids = {r.headers["X-Pilothouse-Delivery"] for r in (first, second)}
    assert delivery_ids == {delivery["id"]}, "the same delivery, sent again"
