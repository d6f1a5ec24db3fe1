"""What the store hands back besides the API's own models.

Where a stored thing has exactly the shape the API shows (a prediction
environment, a model package, an event) the store returns the API model
itself; these records are for what the service layer still composes: a
deployment with its tombstone and per-source health, a replay of changes, the
filters of an event query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from agent.model.desired import DesiredDeployment
from agent.model.vocabulary import Source, Status
from hub.api.schemas import Observed


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """The latest non-informational status one source reported for one deployment."""

    source: Source
    status: Status
    message: str
    event_id: str
    time_us: int


@dataclass(frozen=True, slots=True)
class DeploymentRecord:
    """A deployment as stored: its desired spec (with generation), what was observed, health."""

    desired: DesiredDeployment
    prediction_environment_id: str
    observed: Observed
    created_at: datetime
    updated_at: datetime
    deleted: bool = False
    health: tuple[SourceStatus, ...] = ()


@dataclass(frozen=True, slots=True)
class Change:
    """One deployment's latest change after some revision; ``desired`` None: removed."""

    seq: int
    deployment_id: str
    generation: int
    desired: DesiredDeployment | None


@dataclass(frozen=True, slots=True)
class Replay:
    """What a watch stream must send to catch up from ``after``."""

    revision: int
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a newest-first page ends: its last item's time (µs) and id."""

    time_us: int
    id: str


@dataclass(frozen=True, slots=True)
class PageQuery:
    """A page of a list ordered by creation, newest first."""

    limit: int
    after: Cursor | None = None


@dataclass(frozen=True, slots=True)
class EventFilter:
    """The filters of ``GET /events``; ``match`` is an FTS5 query (already quoted)."""

    limit: int
    prediction_environment_id: str | None = None
    deployment_id: str | None = None
    status: Status | None = None
    type: str | None = None
    source: Source | None = None
    since_us: int | None = None
    until_us: int | None = None
    match: str | None = None
    after: Cursor | None = None
