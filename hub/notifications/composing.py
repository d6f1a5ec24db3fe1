"""What a due alert group sends, and what it waits for next. Pure.

Run by the store inside the flush transaction when a group's ``flush_at`` has
come (its window closed, or its repeat interval ran out). In order:

1. a group of a deleted deployment is forgotten, silently;
2. a firing group whose deployment is passing again sends ``resolved`` (if the
   policy wants it) and closes;
3. new incident events — or any new events while firing — send ``firing``;
   the group fires and may speak again after the repeat interval. If the
   deployment is already passing again by then, a group that was not firing
   sends a single ``resolved`` message listing what happened instead;
4. other new events (a policy may match ``passing`` or ``informational``)
   send ``notice`` and the group closes;
5. a firing group with nothing new, still failing or at risk, sends a
   ``repeat`` reminder with its last incident event;
6. anything else: nothing to say; a firing group of unknown status waits one
   more interval, an idle group is forgotten.

A closed group is forgotten, not kept: the next matching event opens a fresh one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pilothouse.foundation.domain.vocabulary import Status
from pilothouse.hub import clock
from pilothouse.hub.api.schemas import DeliveryKind, EventOut, WebhookMessage
from pilothouse.hub.clock import us
from pilothouse.hub.notifications import messages, routing
from pilothouse.hub.notifications.routing import INCIDENT, SEVERITY
from pilothouse.hub.service.naming import new_id
from pilothouse.hub.store.records import AlertGroup, DueGroup, Flushed, NewDelivery


@dataclass(frozen=True, slots=True)
class Context:
    """What composing needs besides the group: the hub's URL, how many events to list."""

    hub_url: str
    max_events: int


def compose(due: DueGroup, context: Context) -> Flushed:
    """The group's next state and the message it sends now, if any."""
    group, policy = due.group, due.policy
    if group.deployment_id is not None and due.deployment_deleted:
        return Flushed(None)
    now_status = routing.status_now(group, due.health)
    incidents = [e for e in due.pending if SEVERITY[e.status] >= INCIDENT]
    repeat_at = due.now_us + us(policy.repeat_interval_s)
    if group.firing and now_status is Status.PASSING:
        if not policy.send_resolved:
            return Flushed(None)
        return Flushed(None, _delivery(due, context, "resolved", Status.PASSING, due.pending))
    if incidents and not group.firing and now_status is Status.PASSING:
        kind: DeliveryKind = "resolved" if policy.send_resolved else "firing"
        status = Status.PASSING if policy.send_resolved else incidents[-1].status
        return Flushed(None, _delivery(due, context, kind, status, due.pending))
    if incidents or (group.firing and due.pending):
        status = _incident_status(now_status, group, incidents)
        firing = dataclasses.replace(
            group,
            firing=True,
            resolving=False,
            notified_severity=SEVERITY[status],
            last_sent_us=due.now_us,
            flush_at_us=repeat_at,
            last_incident=incidents[-1] if incidents else group.last_incident,
        )
        return Flushed(firing, _delivery(due, context, "firing", status, due.pending))
    if due.pending:
        latest = due.pending[-1].status
        return Flushed(None, _delivery(due, context, "notice", latest, due.pending))
    if group.firing and SEVERITY[now_status] >= INCIDENT:
        reminded = dataclasses.replace(group, last_sent_us=due.now_us, flush_at_us=repeat_at)
        events = [group.last_incident] if group.last_incident is not None else []
        return Flushed(reminded, _delivery(due, context, "repeat", now_status, events))
    if group.firing:
        return Flushed(dataclasses.replace(group, resolving=False, flush_at_us=repeat_at))
    return Flushed(None)


def message(
    due: DueGroup, context: Context, kind: DeliveryKind, status: Status, events: list[EventOut]
) -> WebhookMessage:
    """The message of a due group."""
    group = due.group
    shown = events[-context.max_events :]
    draft = WebhookMessage(
        id=new_id("dlv"),
        kind=kind,
        status=status,
        summary="",
        policy={"id": due.policy.id, "name": due.policy.name},
        prediction_environment_id=group.prediction_environment_id,
        prediction_environment_name=due.environment_name,
        deployment_id=group.deployment_id,
        deployment_name=due.deployment_name,
        deployment_url=messages.deployment_link(context.hub_url, group.deployment_id),
        events=shown,
        omitted_events=len(events) - len(shown),
        created_at=clock.from_us(due.now_us),
    )
    latest = _latest_incident_event(events) if kind in ("firing", "repeat") else None
    latest = latest or (events[-1] if events else None)
    text = messages.summary(kind, status, messages.subject(draft), latest)
    return draft.model_copy(update={"summary": text})


def _delivery(
    due: DueGroup, context: Context, kind: DeliveryKind, status: Status, events: list[EventOut]
) -> NewDelivery | None:
    if due.channel is None:  # cannot happen: a channel in use cannot be deleted
        return None
    said = message(due, context, kind, status, events)
    return NewDelivery(
        id=said.id,
        channel_id=due.channel.id,
        policy_id=due.policy.id,
        kind=kind,
        status=status,
        prediction_environment_id=due.group.prediction_environment_id,
        deployment_id=due.group.deployment_id,
        event_ids=[e.id for e in events],
        body=messages.render(due.channel.type, said),
        created_us=due.now_us,
    )


def _incident_status(now_status: Status, group: AlertGroup, incidents: list[EventOut]) -> Status:
    """The status a firing message reports: the current one, else the latest incident's."""
    if SEVERITY[now_status] >= INCIDENT:
        return now_status
    if incidents:
        return incidents[-1].status
    if group.last_incident is not None:
        return group.last_incident.status
    return Status.FAILING


def _latest_incident_event(events: list[EventOut]) -> EventOut | None:
    found = [e for e in events if SEVERITY[e.status] >= INCIDENT]
    return found[-1] if found else None
