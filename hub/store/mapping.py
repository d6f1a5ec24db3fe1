"""Rows to records and records to rows: what both backends read and write alike.

Both backends select the same columns in the same order, and a result row
indexes the same way whether sqlite3 hands back a tuple or asyncpg a
``Record``; so turning a row into what the store returns (an API model, a
record of :mod:`.records`), and a record into the values an ``INSERT`` takes, is
written once, here, with the column lists those functions read. Everything
around it — placeholders, the dialect's SQL, sync or async I/O — stays in each
backend. Nothing here does I/O or imports a backend. The notification tables'
rows are in :mod:`.notification_mapping`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import orjson

from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.vocabulary import Source, Status
from pilothouse.hub import clock
from pilothouse.hub.api.schemas import (
    AgentInfo,
    AgentTokenInfo,
    EventIn,
    EventOut,
    ModelPackage,
    Observed,
    PredictionEnvironment,
)
from pilothouse.hub.store.records import (
    Change,
    DeploymentRecord,
    EventFilter,
    MonitoringState,
    RetentionState,
    SourceStatus,
    StoredAssociation,
    StoredWindow,
)


class Row(Protocol):
    """A result row, read by position: a tuple (sqlite3) or an ``asyncpg.Record``."""

    def __getitem__(self, index: int, /) -> Any:
        """The value of the column at ``index``."""


def dumps(value: Any) -> str:
    """A JSON column's text."""
    return orjson.dumps(value).decode()


def loads(text: str) -> Any:
    """A JSON column's value."""
    return orjson.loads(text)


# --- events -----------------------------------------------------------------------

EVENT_COLUMNS = (
    "id, time, prediction_environment_id, deployment_id, source, type, status, message, data"
)
"""The columns :func:`event` reads and :func:`event_row` writes, in order."""

EventRow = tuple[str, int, str, str | None, str, str, str, str, str]
"""An event as the values of :data:`EVENT_COLUMNS`."""

HEALTH_COLUMNS = "deployment_id, source, status, message, event_id, time, seq"
"""The columns of ``health_sources`` that :func:`health_sources` reads, in order."""


def event_row(event: EventIn) -> EventRow:
    """The values of :data:`EVENT_COLUMNS` that store ``event``."""
    return (
        event.id,
        clock.to_us(event.time),
        event.prediction_environment_id,
        event.deployment_id,
        event.source.value,
        event.type,
        event.status.value,
        event.message,
        dumps(event.data),
    )


def event(row: Row) -> EventOut:
    """An event from a row of :data:`EVENT_COLUMNS`."""
    return EventOut.model_construct(
        id=row[0],
        time=clock.from_us(row[1]),
        prediction_environment_id=row[2],
        deployment_id=row[3],
        source=Source(row[4]),
        type=row[5],
        status=Status(row[6]),
        message=row[7],
        data=loads(row[8]),
    )


def event_equalities(query: EventFilter) -> dict[str, Any]:
    """The column each equality filter of ``query`` tests, with its value (None: no filter)."""
    return {
        "prediction_environment_id": query.prediction_environment_id,
        "deployment_id": query.deployment_id,
        "status": query.status,
        "type": query.type,
        "source": query.source,
    }


def health_sources(
    deployment_ids: Iterable[str], rows: Iterable[Row]
) -> dict[str, list[SourceStatus]]:
    """The latest status per source of each deployment, from rows of :data:`HEALTH_COLUMNS`."""
    out: dict[str, list[SourceStatus]] = {d: [] for d in deployment_ids}
    for row in rows:
        out[row[0]].append(
            SourceStatus(Source(row[1]), Status(row[2]), row[3], row[4], row[5], row[6])
        )
    return out


# --- prediction environments, agent tokens, model packages ---------------------------

ENVIRONMENT_COLUMNS = (
    "id, name, platform, description, plugin_settings, created_at, online, "
    "last_heartbeat_at, agent_info"
)
"""The stored columns of a PE; :func:`environment` reads them followed by :data:`MANAGED`."""
MANAGED = (  # the Use Management Agent switch is on unless the PE is paused (.management)
    ", NOT EXISTS (SELECT 1 FROM management_paused m "
    "WHERE m.prediction_environment_id = prediction_environments.id)"
)
"""The last column :func:`environment` reads: whether the PE's management agent is on."""
TOKEN_COLUMNS = "id, prediction_environment_id, created_at, revoked_at"
"""The columns of an agent token that :func:`token` reads, in order."""
PACKAGE_COLUMNS = "id, name, version, format, sha256, size, manifest, created_at"
"""The columns :func:`package` reads and :func:`package_row` writes, in order."""


def environment_row(env: PredictionEnvironment) -> tuple[Any, ...]:
    """The values of a new PE's ``id, name, platform, description, plugin_settings, created_at``."""
    return (
        env.id,
        env.name,
        env.platform,
        env.description,
        dumps(env.plugin_settings),
        clock.to_us(env.created_at),
    )


def environment(row: Row) -> PredictionEnvironment:
    """A PE from a row of :data:`ENVIRONMENT_COLUMNS` and :data:`MANAGED`."""
    heard = row[7]
    return PredictionEnvironment(
        id=row[0],
        name=row[1],
        platform=row[2],
        description=row[3],
        plugin_settings=loads(row[4]),
        created_at=clock.from_us(row[5]),
        agent=AgentInfo(
            online=bool(row[6]),
            last_heartbeat_at=None if heard is None else clock.from_us(heard),
            info=loads(row[8]),
        ),
        use_management_agent=bool(row[9]),
    )


def token(row: Row) -> AgentTokenInfo:
    """An agent (or package) token from a row of :data:`TOKEN_COLUMNS`."""
    return AgentTokenInfo(
        id=row[0],
        prediction_environment_id=row[1],
        created_at=clock.from_us(row[2]),
        revoked_at=None if row[3] is None else clock.from_us(row[3]),
    )


def package_row(package: ModelPackage) -> tuple[Any, ...]:
    """The values of :data:`PACKAGE_COLUMNS` that store ``package``."""
    return (
        package.id,
        package.name,
        package.version,
        package.format,
        package.sha256,
        package.size,
        dumps(package.manifest),
        clock.to_us(package.created_at),
    )


def package(row: Row) -> ModelPackage:
    """A model package from a row of :data:`PACKAGE_COLUMNS`."""
    return ModelPackage(
        id=row[0],
        name=row[1],
        version=row[2],
        format=row[3],
        sha256=row[4],
        size=row[5],
        manifest=loads(row[6]),
        created_at=clock.from_us(row[7]),
    )


# --- deployments and their change log ---------------------------------------------------

DEPLOYMENT_COLUMNS = (
    "id, prediction_environment_id, desired, deleted, observed_state, "
    "observed_model_package_id, observed_prediction_url, observed_generation, "
    "observed_updated_at, created_at, updated_at, observed_grpc_target"
)
"""The columns :func:`deployment` reads, in order."""


NEW_DEPLOYMENT_COLUMNS = (
    "id, prediction_environment_id, name, desired, generation, created_at, updated_at"
)
"""The columns of a new deployment that :func:`deployment_row` writes, in order."""


def deployment_row(record: DeploymentRecord) -> tuple[Any, ...]:
    """The values of :data:`NEW_DEPLOYMENT_COLUMNS` that store a new deployment."""
    desired = record.desired
    return (
        desired.id,
        record.prediction_environment_id,
        desired.name,
        desired.model_dump_json(),
        desired.generation,
        clock.to_us(record.created_at),
        clock.to_us(record.updated_at),
    )


def deployment(
    row: Row, health: tuple[SourceStatus, ...], last_event_us: int | None = None
) -> DeploymentRecord:
    """A deployment from a row of :data:`DEPLOYMENT_COLUMNS`, with its health and last event."""
    observed_at = row[8]
    return DeploymentRecord(
        desired=DesiredDeployment.model_validate_json(row[2]),
        prediction_environment_id=row[1],
        observed=Observed(
            state=row[4],
            model_package_id=row[5],
            prediction_url=row[6],
            grpc_target=row[11],
            generation=row[7],
            updated_at=None if observed_at is None else clock.from_us(observed_at),
        ),
        created_at=clock.from_us(row[9]),
        updated_at=clock.from_us(row[10]),
        deleted=bool(row[3]),
        health=health,
        last_event_us=last_event_us,
    )


def change(row: Row, frozen: dict[str, DesiredDeployment] | None) -> Change:
    """A change from ``seq, deployment_id, generation, removed, desired``.

    While the PE is paused, the deployment is given as frozen (its row may be newer already).
    """
    seq, deployment_id, generation, removed, desired = row[0], row[1], row[2], row[3], row[4]
    if removed:
        spec = None
    elif frozen is not None:
        spec = frozen[deployment_id]
    else:
        spec = DesiredDeployment.model_validate_json(desired)
    return Change(seq, deployment_id, generation, spec)


def frozen(live: Iterable[DesiredDeployment]) -> str:
    """The snapshot (JSON) of a paused PE's deployments, as its agent keeps seeing them."""
    return dumps([d.model_dump(mode="json") for d in live])


def thawed(snapshot: str) -> dict[str, DesiredDeployment]:
    """The deployments of a frozen snapshot, by id."""
    deployments = [DesiredDeployment.model_validate(d) for d in loads(snapshot)]
    return {d.id: d for d in deployments}


# --- prediction statistics, retention ---------------------------------------------------


def window_row(window: StoredWindow) -> tuple[str, str, str, int, int, str]:
    """The values of ``id, deployment_id, package_id, start_at, end_at, body``."""
    w = window
    return (w.id, w.deployment_id, w.package_id, w.start_us, w.end_us, w.body)


def association_row(association: StoredAssociation) -> tuple[str, str, str, int, str]:
    """The values of ``deployment_id, association_id, package_id, window_start, prediction``."""
    a = association
    return (a.deployment_id, a.association_id, a.package_id, a.window_start_us, a.prediction)


def monitoring_state(row: Row | None) -> MonitoringState:
    """A deployment's drift state from its ``drift_status, drift, retrained_at`` (if any)."""
    if row is None:
        return MonitoringState()
    return MonitoringState(Status(row[0]), loads(row[1]), row[2])


DAY_US = 86_400 * 1_000_000
"""One day of retention (µs)."""


def retention_state(
    set_by_api: dict[str, Any] | None, last: dict[str, Any] | None
) -> RetentionState:
    """The retention from the ``hub_state`` values of the retention set and the last purge."""
    set_by_api, last = set_by_api or {}, last or {}
    return RetentionState(
        days=set_by_api.get("days"),
        updated_us=set_by_api.get("updated_at"),
        last_purge_us=last.get("at"),
        last_purge_removed=last.get("removed"),
    )


def cutoff(now_us: int, days: int) -> int:
    """The time (µs) before which what is kept ``days`` days is old."""
    return now_us - days * DAY_US
