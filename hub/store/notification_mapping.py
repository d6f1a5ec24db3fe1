"""Rows to records and records to rows for notifications: channels, alert groups, deliveries.

As in :mod:`.mapping`, both backends select and insert these columns in the
same order; the functions here turn a row into what the store returns and a
record into the values its ``INSERT`` or ``UPDATE`` takes. No I/O, no backend.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pilothouse.foundation.domain.vocabulary import Status
from pilothouse.hub import clock
from pilothouse.hub.api.schemas import (
    DeliveryAttempt,
    EventOut,
    NotificationChannel,
    NotificationDelivery,
)
from pilothouse.hub.store import mapping
from pilothouse.hub.store.records import (
    AlertGroup,
    AttemptRecord,
    ChannelRecord,
    DeliveryFilter,
    DeliveryJob,
    NewDelivery,
)

CHANNEL_COLUMNS = "id, name, type, url_shown, secret_sealed, created_at, updated_at, url_sealed"
"""The columns :func:`channel` reads and :func:`channel_row` writes, in order."""
DELIVERY_COLUMNS = (
    "id, channel_id, policy_id, kind, status, prediction_environment_id, deployment_id, "
    "event_ids, state, attempts, next_attempt_at, last_error, created_at, updated_at"
)
"""The columns :func:`delivery` reads, in order."""
NEW_DELIVERY_COLUMNS = (
    "id, channel_id, policy_id, kind, status, prediction_environment_id, deployment_id, "
    "event_ids, body, max_attempts, next_attempt_at, created_at, updated_at"
)
"""The columns of a new delivery that :func:`new_delivery_row` writes (its state: pending)."""
CLAIM_COLUMNS = (
    "d.id, d.channel_id, c.type, c.url_sealed, c.secret_sealed, d.body, d.kind, "
    "d.attempts, d.max_attempts"
)
"""What :func:`claimed` reads of a delivery ``d`` and its channel ``c`` (joined, if any)."""
ATTEMPT_COLUMNS = "delivery_id, number, at, duration_ms, outcome, http_status, error"
"""The columns of ``notification_attempts`` :func:`attempt_logs` reads and
:func:`attempt_row` writes, in order."""
GROUP_COLUMNS = "policy_id, group_key, flush_at, state"
"""The columns of an alert group that :func:`group` reads and :func:`group_row` writes."""
CHANNEL_GONE = "the channel was deleted"
"""Why a delivery whose channel was deleted failed."""


def channel_row(record: ChannelRecord) -> tuple[Any, ...]:
    """The values of :data:`CHANNEL_COLUMNS` that store ``record``."""
    channel = record.channel
    return (
        channel.id,
        channel.name,
        channel.type,
        channel.url,
        record.secret_sealed,
        clock.to_us(channel.created_at),
        clock.to_us(channel.updated_at),
        record.url_sealed,
    )


def channel_update(record: ChannelRecord, channel_id: str) -> tuple[Any, ...]:
    """The values of ``name, url_shown, secret_sealed, updated_at, url_sealed`` and the id."""
    channel = record.channel
    return (
        channel.name,
        channel.url,
        record.secret_sealed,
        clock.to_us(channel.updated_at),
        record.url_sealed,
        channel_id,
    )


def channel(row: mapping.Row) -> ChannelRecord:
    """A channel with its sealed URL and secret, from a row of :data:`CHANNEL_COLUMNS`."""
    shown = NotificationChannel(
        id=row[0],
        name=row[1],
        type=row[2],
        url=row[3],
        has_secret=row[4] is not None,
        created_at=clock.from_us(row[5]),
        updated_at=clock.from_us(row[6]),
    )
    return ChannelRecord(shown, bytes(row[7]), None if row[4] is None else bytes(row[4]))


def group_row(group: AlertGroup) -> tuple[str, str, int | None, str]:
    """The values of ``policy_id, group_key, flush_at, state`` that store ``group``."""
    body = {
        "prediction_environment_id": group.prediction_environment_id,
        "deployment_id": group.deployment_id,
        "firing": group.firing,
        "resolving": group.resolving,
        "notified_severity": group.notified_severity,
        "status": group.status.value,
        "last_sent_us": group.last_sent_us,
        "last_incident": (
            None if group.last_incident is None else group.last_incident.model_dump(mode="json")
        ),
    }
    return (group.policy_id, group.key, group.flush_at_us, mapping.dumps(body))


def group(row: mapping.Row) -> AlertGroup:
    """An alert group from a row of ``policy_id, group_key, flush_at, state``."""
    body = mapping.loads(row[3])
    incident = body.get("last_incident")
    return AlertGroup(
        policy_id=row[0],
        key=row[1],
        prediction_environment_id=body["prediction_environment_id"],
        deployment_id=body["deployment_id"],
        flush_at_us=row[2],
        firing=body["firing"],
        resolving=body["resolving"],
        notified_severity=body["notified_severity"],
        status=Status(body["status"]),
        last_sent_us=body["last_sent_us"],
        last_incident=None if incident is None else EventOut.model_validate(incident),
    )


def delivery_equalities(query: DeliveryFilter) -> dict[str, Any]:
    """The column each equality filter of ``query`` tests, with its value (None: no filter)."""
    return {
        "channel_id": query.channel_id,
        "policy_id": query.policy_id,
        "deployment_id": query.deployment_id,
        "state": query.state,
        "kind": query.kind,
    }


def new_delivery_row(new: NewDelivery) -> tuple[Any, ...]:
    """The values of :data:`NEW_DELIVERY_COLUMNS` that store ``new``, due now."""
    return (
        new.id,
        new.channel_id,
        new.policy_id,
        new.kind,
        new.status.value,
        new.prediction_environment_id,
        new.deployment_id,
        mapping.dumps(new.event_ids),
        new.body,
        new.max_attempts,
        new.created_us,
        new.created_us,
        new.created_us,
    )


def claimed(rows: Iterable[mapping.Row]) -> tuple[list[DeliveryJob], list[str]]:
    """Due deliveries, as jobs, and the ids of those whose channel is gone.

    A row: :data:`CLAIM_COLUMNS` (the channel's NULL when it was deleted).
    """
    jobs: list[DeliveryJob] = []
    orphans: list[str] = []
    for row in rows:
        if row[2] is None:
            orphans.append(row[0])
            continue
        jobs.append(
            DeliveryJob(
                id=row[0],
                channel_id=row[1],
                channel_type=row[2],
                url_sealed=bytes(row[3]),
                secret_sealed=None if row[4] is None else bytes(row[4]),
                body=bytes(row[5]),
                kind=row[6],
                attempts=row[7],
                max_attempts=row[8],
            )
        )
    return jobs, orphans


def attempt_row(attempt: AttemptRecord) -> tuple[Any, ...]:
    """The values of :data:`ATTEMPT_COLUMNS` that log ``attempt``."""
    return (
        attempt.delivery_id,
        attempt.number,
        attempt.at_us,
        attempt.duration_ms,
        attempt.outcome,
        attempt.http_status,
        attempt.error,
    )


def attempt_outcome(attempt: AttemptRecord) -> tuple[Any, ...]:
    """The delivery's ``state, attempts, next_attempt_at, last_error, updated_at`` and id."""
    return (
        attempt.state,
        attempt.number,
        attempt.next_attempt_us if attempt.state == "pending" else None,
        attempt.error,
        attempt.at_us,
        attempt.delivery_id,
    )


def attempt_logs(
    ids: Iterable[str], rows: Iterable[mapping.Row]
) -> dict[str, list[DeliveryAttempt]]:
    """Each delivery's attempts, from rows of :data:`ATTEMPT_COLUMNS` in attempt order."""
    log: dict[str, list[DeliveryAttempt]] = {i: [] for i in ids}
    for row in rows:
        log[row[0]].append(
            DeliveryAttempt(
                number=row[1],
                at=clock.from_us(row[2]),
                outcome=row[4],
                http_status=row[5],
                error=row[6],
                duration_ms=row[3],
            )
        )
    return log


def delivery(row: mapping.Row, attempts: list[DeliveryAttempt]) -> NotificationDelivery:
    """A delivery from a row of :data:`DELIVERY_COLUMNS`, with its attempts."""
    return NotificationDelivery(
        id=row[0],
        channel_id=row[1],
        policy_id=row[2],
        kind=row[3],
        status=row[4],
        prediction_environment_id=row[5],
        deployment_id=row[6],
        event_ids=mapping.loads(row[7]),
        state=row[8],
        attempts=row[9],
        next_attempt_at=None if row[10] is None else clock.from_us(row[10]),
        last_error=row[11],
        created_at=clock.from_us(row[12]),
        updated_at=clock.from_us(row[13]),
        attempt_log=attempts,
    )
