"""The routing and composing rules as pure functions: matching, windows, repeats, resolution."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from pilothouse.foundation.domain.events import new_id
from pilothouse.foundation.domain.vocabulary import Source, Status
from pilothouse.hub.api.schemas import EventOut, NotificationChannel, NotificationPolicy
from pilothouse.hub.notifications import composing, routing
from pilothouse.hub.store.records import (
    AlertGroup,
    DueGroup,
    RoutedEvent,
    RoutingBatch,
    SourceStatus,
    group_key,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
S = 1_000_000
CONTEXT = composing.Context("http://hub", max_events=2)


def policy(**rules: Any) -> NotificationPolicy:
    base: dict[str, Any] = {
        "id": "npo-1",
        "name": "p",
        "channel_id": "nch-1",
        "statuses": [],
        "event_types": [],
        "prediction_environment_ids": [],
        "deployment_ids": [],
        "group_window_s": 10,
        "repeat_interval_s": 100,
        "send_resolved": True,
        "enabled": True,
        "created_at": T0,
        "updated_at": T0,
    }
    return NotificationPolicy(**(base | rules))


def ev(status: str = "failing", dep: str | None = "d1", **fields: Any) -> EventOut:
    base: dict[str, Any] = {
        "id": new_id(),
        "time": T0,
        "prediction_environment_id": "pe-1",
        "deployment_id": dep,
        "source": Source.AGENT,
        "type": "deployment.errored",
        "status": Status(status),
        "message": "m",
        "data": {},
    }
    return EventOut(**(base | fields))


def health(status: str) -> dict[str, tuple[SourceStatus, ...]]:
    return {"d1": (SourceStatus(Source.AGENT, Status(status), "", "e", 0),)}


def route(
    p: NotificationPolicy, events: list[EventOut], groups: list[AlertGroup], now: int, hs: str
) -> dict[str, AlertGroup]:
    batch = RoutingBatch(
        [RoutedEvent(i, e) for i, e in enumerate(events)],
        [p],
        {(g.policy_id, g.key): g for g in groups},
        health(hs),
        now,
    )
    return {g.key: g for g in routing.route(batch).groups}


@pytest.mark.parametrize(
    ("rules", "event", "wanted"),
    [
        ({}, ev(), True),
        ({"statuses": ["at_risk"]}, ev("failing"), False),
        ({"event_types": ["deployment.*"]}, ev(), True),
        ({"event_types": ["action.*.failed"]}, ev(type="action.replace_model.failed"), True),
        ({"event_types": ["action.*.failed"]}, ev(type="action.launch.retrying"), False),
        ({"event_types": ["deployment"]}, ev(), False),
        ({"prediction_environment_ids": ["pe-2"]}, ev(), False),
        ({"deployment_ids": ["d1", "d2"]}, ev(), True),
        ({"deployment_ids": ["d1"]}, ev(dep=None), False),
    ],
)
def test_matching(rules: dict[str, Any], event: EventOut, wanted: bool) -> None:
    assert routing.matches(policy(**rules), event) is wanted


def test_the_first_event_opens_a_window_and_later_ones_join_it() -> None:
    p = policy()
    opened = route(p, [ev()], [], 5 * S, "failing")["d:d1"]
    assert opened.flush_at_us == 15 * S and not opened.firing
    joined = route(p, [ev()], [opened], 12 * S, "failing")
    assert joined["d:d1"].flush_at_us == 15 * S


def test_while_firing_new_events_wait_for_the_repeat_unless_worse() -> None:
    p = policy()
    firing = AlertGroup(
        "npo-1",
        "d:d1",
        "pe-1",
        "d1",
        flush_at_us=150 * S,
        firing=True,
        notified_severity=routing.SEVERITY[Status.AT_RISK],
        last_sent_us=50 * S,
    )
    same = route(p, [ev("at_risk")], [firing], 60 * S, "at_risk")["d:d1"]
    assert same.flush_at_us == 150 * S
    worse = route(p, [ev("failing")], [firing], 60 * S, "failing")["d:d1"]
    assert worse.flush_at_us == 70 * S


def test_passing_health_resolves_and_a_flap_undoes_it() -> None:
    p = policy()
    firing = AlertGroup(
        "npo-1", "d:d1", "pe-1", "d1", flush_at_us=150 * S, firing=True, last_sent_us=50 * S
    )
    ok = route(p, [ev("passing", type="deployment.ready")], [firing], 60 * S, "passing")["d:d1"]
    assert ok.resolving and ok.flush_at_us == 70 * S
    flap = route(p, [ev("failing")], [ok], 65 * S, "failing")["d:d1"]
    assert not flap.resolving and flap.flush_at_us == 150 * S


def test_groups_are_per_deployment_or_per_environment() -> None:
    assert group_key("pe-1", "d1") == "d:d1"
    assert group_key("pe-1", None) == "p:pe-1"
    groups = route(policy(), [ev(), ev(dep=None), ev(dep="d2")], [], 0, "failing")
    assert set(groups) == {"d:d1", "p:pe-1", "d:d2"}


def due(group: AlertGroup, pending: list[EventOut], hs: str, **extra: Any) -> DueGroup:
    channel = NotificationChannel(
        id="nch-1",
        name="c",
        type="webhook",
        url="http://x/…",
        has_secret=False,
        created_at=T0,
        updated_at=T0,
    )
    base: dict[str, Any] = {
        "group": group,
        "policy": policy(),
        "channel": channel,
        "pending": pending,
        "health": health(hs)["d1"],
        "deployment_name": "fraud",
        "deployment_deleted": False,
        "environment_name": "prod",
        "now_us": 200 * S,
    }
    return DueGroup(**(base | extra))


GROUP = AlertGroup("npo-1", "d:d1", "pe-1", "d1", flush_at_us=200 * S)
FIRING = dataclasses.replace(
    GROUP, firing=True, notified_severity=3, last_sent_us=100 * S, last_incident=ev()
)


@pytest.mark.parametrize(
    ("group", "pending", "hs", "kind", "status", "next_flush"),
    [
        (GROUP, ["failing"], "failing", "firing", "failing", 300),
        (GROUP, ["failing", "passing"], "passing", "resolved", "passing", None),
        (GROUP, ["informational"], "unknown", "notice", "informational", None),
        (FIRING, [], "failing", "repeat", "failing", 300),
        (FIRING, ["at_risk"], "at_risk", "firing", "at_risk", 300),
        (FIRING, [], "passing", "resolved", "passing", None),
        (FIRING, [], "unknown", None, None, 300),
        (GROUP, [], "failing", None, None, None),
    ],
)
def test_what_a_due_group_sends(
    group: AlertGroup,
    pending: list[str],
    hs: str,
    kind: str | None,
    status: str | None,
    next_flush: int | None,
) -> None:
    out = composing.compose(due(group, [ev(s) for s in pending], hs), CONTEXT)
    assert (out.delivery.kind if out.delivery else None) == kind
    assert (out.delivery.status if out.delivery else None) == status
    assert (out.group.flush_at_us if out.group else None) == (next_flush and next_flush * S)
    if out.group is not None:
        assert out.group.flush_at_us is None or out.group.flush_at_us > 200 * S


def test_a_deleted_deployment_is_forgotten_silently() -> None:
    out = composing.compose(due(FIRING, [ev()], "failing", deployment_deleted=True), CONTEXT)
    assert out.group is None and out.delivery is None


def test_a_message_lists_the_latest_events_and_counts_the_rest() -> None:
    events = [ev(message=f"m{i}") for i in range(5)]
    out = composing.compose(due(GROUP, events, "failing"), CONTEXT)
    assert out.delivery is not None
    body = orjson.loads(out.delivery.body)
    assert [e["message"] for e in body["events"]] == ["m3", "m4"]
    assert body["omitted_events"] == 3 and out.delivery.event_ids == [e.id for e in events]
    assert body["summary"] == "fraud is failing: m4"
