"""Routing events into alert groups: which policy wants an event, and when its group speaks next.

Pure functions, run by the store inside the routing transaction. The model is
Prometheus Alertmanager's, per policy and per deployment (events without a
deployment form one group per PE):

* an event *matches* a policy when every non-empty filter holds (status, event
  type with ``*`` wildcards, PE, deployment); it joins its group's next message;
* the first matching event opens the group's *window*: everything that matches
  until ``group_window_s`` later goes out as one message;
* once an incident (``at_risk`` or ``failing``) was notified the group is
  *firing*: further events wait for the *repeat interval* — the group speaks at
  most once per ``repeat_interval_s`` — unless the status got worse than what
  was notified (an escalation goes out when its window closes);
* any event of a firing group's deployment may *resolve* it: when the
  deployment's service health (DESIGN.md's rule: the worst source wins) is
  ``passing`` again, the group says so when its window closes. A flap back to
  failing inside the window cancels the resolution.

What a due group then sends is :mod:`pilothouse.hub.notifications.composing`'s decision.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Iterable

from pilothouse.foundation.domain.vocabulary import Status
from pilothouse.hub.api.schemas import EventOut, NotificationPolicy
from pilothouse.hub.clock import us
from pilothouse.hub.service import health
from pilothouse.hub.store.records import (
    AlertGroup,
    Routed,
    RoutedEvent,
    RoutingBatch,
    SourceStatus,
    group_key,
)

SEVERITY = {
    Status.INFORMATIONAL: 0,
    Status.UNKNOWN: 0,
    Status.PASSING: 1,
    Status.AT_RISK: 2,
    Status.FAILING: 3,
}
INCIDENT = SEVERITY[Status.AT_RISK]
"""Severity from which an event is an incident."""
_HEALTH_WORDS = {Status.PASSING, Status.AT_RISK, Status.FAILING, Status.UNKNOWN}


def in_scope(policy: NotificationPolicy, event: EventOut) -> bool:
    """Whether ``event`` is about what the policy watches (its PE and deployment filters)."""
    if policy.prediction_environment_ids and (
        event.prediction_environment_id not in policy.prediction_environment_ids
    ):
        return False
    return not policy.deployment_ids or event.deployment_id in policy.deployment_ids


def matches(policy: NotificationPolicy, event: EventOut) -> bool:
    """Whether ``event`` goes into a message of the policy (every filter holds)."""
    if not in_scope(policy, event):
        return False
    if policy.statuses and event.status not in policy.statuses:
        return False
    types = policy.event_types
    return not types or _type_pattern(types).fullmatch(event.type) is not None


def route(batch: RoutingBatch) -> Routed:
    """The groups the batch changes, and the events each holds for its next message."""
    groups = dict(batch.groups)
    pending: list[tuple[str, str, RoutedEvent]] = []
    for routed in batch.events:
        event = routed.event
        key = group_key(event.prediction_environment_id, event.deployment_id)
        for policy in batch.policies:
            if not in_scope(policy, event):
                continue
            ident = (policy.id, key)
            group = groups.get(ident)
            if matches(policy, event):
                group = take(group or _new(policy, event, key), policy, event, batch.now_us)
                pending.append((policy.id, key, routed))
            if group is not None:
                groups[ident] = follow(group, policy, event, batch.health, batch.now_us)
    changed = [g for ident, g in groups.items() if batch.groups.get(ident) != g]
    return Routed(changed, pending)


def take(group: AlertGroup, policy: NotificationPolicy, event: EventOut, now_us: int) -> AlertGroup:
    """The group after a matching event joined its next message."""
    window_end = now_us + us(policy.group_window_s)
    severity = SEVERITY[event.status]
    if not group.firing:
        flush_at = group.flush_at_us if group.flush_at_us is not None else window_end
    elif severity > group.notified_severity and not group.resolving:
        flush_at = min(group.flush_at_us or window_end, window_end)  # an escalation
    else:
        flush_at = group.flush_at_us if group.flush_at_us is not None else window_end
    last_incident = event if severity >= INCIDENT else group.last_incident
    return dataclasses.replace(group, flush_at_us=flush_at, last_incident=last_incident)


def follow(
    group: AlertGroup,
    policy: NotificationPolicy,
    event: EventOut,
    healths: dict[str, tuple[SourceStatus, ...]],
    now_us: int,
) -> AlertGroup:
    """The group after an event in its scope: a PE group's status, resolution or its undoing."""
    if group.deployment_id is None and event.status in _HEALTH_WORDS:
        group = dataclasses.replace(group, status=event.status)
    if not group.firing:
        return group
    passing = status_now(group, healths.get(group.deployment_id or "", ())) is Status.PASSING
    if passing and not group.resolving:
        window_end = now_us + us(policy.group_window_s)
        flush_at = min(group.flush_at_us or window_end, window_end)
        return dataclasses.replace(group, resolving=True, flush_at_us=flush_at)
    if group.resolving and not passing:
        return dataclasses.replace(group, resolving=False, flush_at_us=next_repeat(group, policy))
    return group


def status_now(group: AlertGroup, sources: Iterable[SourceStatus]) -> Status:
    """The status a group is about now: its deployment's service health, or its PE's events."""
    if group.deployment_id is None:
        return group.status
    return health.decide(sources).status


def next_repeat(group: AlertGroup, policy: NotificationPolicy) -> int | None:
    """When a firing group may speak again."""
    if group.last_sent_us is None:
        return None
    return group.last_sent_us + us(policy.repeat_interval_s)


def _new(policy: NotificationPolicy, event: EventOut, key: str) -> AlertGroup:
    return AlertGroup(
        policy_id=policy.id,
        key=key,
        prediction_environment_id=event.prediction_environment_id,
        deployment_id=event.deployment_id,
    )


_PATTERNS: dict[tuple[str, ...], re.Pattern[str]] = {}


def _type_pattern(patterns: list[str]) -> re.Pattern[str]:
    """One compiled regular expression for a policy's event type patterns (cached)."""
    key = tuple(patterns)
    found = _PATTERNS.get(key)
    if found is None:
        if len(_PATTERNS) > 1024:
            _PATTERNS.clear()
        found = _PATTERNS[key] = re.compile("|".join(fnmatch.translate(p) for p in patterns))
    return found
