"""Events: idempotent batch ingest, filtered newest-first pages, service health views.

A batch is refused whole (nothing stored) if it is larger than the configured
limit, if an agent posts for another PE, or if it names an unknown PE. Ingest
is idempotent by event id: a retried batch is answered with the number of
events that were new and the number already stored. The search string ``q``
is turned into a safe FTS5 query: each word becomes a quoted phrase (so no
FTS5 syntax can be injected), all must occur, and a trailing ``*`` keeps
prefix search.
"""

from __future__ import annotations

from pilothouse.hub import clock
from pilothouse.hub.api.schemas import (
    EventBatch,
    EventBatchResult,
    EventFilters,
    EventOut,
    EventQuery,
    Page,
    ServiceHealthView,
)
from pilothouse.hub.errors import FieldProblem, Forbidden, InvalidInput
from pilothouse.hub.service import cursors, health
from pilothouse.hub.service.auth import Principal
from pilothouse.hub.store.interface import Store
from pilothouse.hub.store.records import Cursor, EventFilter
from pilothouse.hub.telemetry import HubMetrics

RECENT_EVENTS = 20


class Events:
    """Ingest and query events."""

    def __init__(self, store: Store, metrics: HubMetrics, max_batch: int) -> None:
        self._store = store
        self._metrics = metrics
        self._max_batch = max_batch

    async def ingest(self, batch: EventBatch, who: Principal) -> EventBatchResult:
        """Store the batch's new events; refuse the whole batch if any event may not be."""
        if len(batch.events) > self._max_batch:
            raise InvalidInput.field("events", f"at most {self._max_batch} events per batch")
        envs = {event.prediction_environment_id for event in batch.events}
        for pe_id in sorted(envs):
            if not who.admin and pe_id != who.prediction_environment_id:
                raise Forbidden(f"this agent token may not post events of {pe_id!r}")
        await self._require_environments(batch, envs)
        accepted = await self._store.add_events(batch.events) if batch.events else 0
        self._metrics.events_ingested.inc(accepted)
        self._metrics.events_duplicate.inc(len(batch.events) - accepted)
        return EventBatchResult(accepted=accepted, duplicates=len(batch.events) - accepted)

    async def page(self, query: EventQuery) -> Page[EventOut]:
        """A page of events matching ``query``, newest first."""
        found = await self._store.list_events(_filter(query))
        items, after = cursors.split(found, query.limit, _key)
        return Page[EventOut](items=items, next_cursor=after)

    async def service_health(self, deployment_id: str) -> ServiceHealthView:
        """The deployment's service health, with its recent events."""
        record = await self._store.get_deployment(deployment_id)
        recent = await self._store.list_events(
            EventFilter(limit=RECENT_EVENTS, deployment_id=deployment_id)
        )
        current = health.decide(record.health)
        return ServiceHealthView(
            deployment_id=deployment_id, recent_events=recent, **current.model_dump()
        )

    async def _require_environments(self, batch: EventBatch, envs: set[str]) -> None:
        unknown = envs - await self._store.known_environments(envs) if envs else set()
        if not unknown:
            return
        problems = [
            FieldProblem(f"events.{i}.prediction_environment_id", "unknown", event_pe)
            for i, event_pe in enumerate(e.prediction_environment_id for e in batch.events)
            if event_pe in unknown
        ]
        message = f"unknown prediction environment(s): {', '.join(sorted(unknown))}"
        raise InvalidInput(message, problems[:20])


def match_query(text: str | None) -> str | None:
    """A safe FTS5 query requiring every word of ``text``; None if it has none."""
    words = (text or "").split()
    if not words:
        return None
    return " ".join(_phrase(word) for word in words)


def _phrase(word: str) -> str:
    core = word.rstrip("*") or word
    quoted = '"' + core.replace('"', '""') + '"'
    return quoted + "*" if core != word else quoted


def _filter(query: EventQuery) -> EventFilter:
    return filter_of(query, query.limit + 1, cursors.decode(query.cursor))


def filter_of(filters: EventFilters, limit: int, after: Cursor | None) -> EventFilter:
    """The store's filter for the event list's (or an export's) query parameters."""
    return EventFilter(
        limit=limit,
        prediction_environment_id=filters.prediction_environment_id,
        deployment_id=filters.deployment_id,
        status=filters.status,
        type=filters.type,
        source=filters.source,
        since_us=None if filters.since is None else clock.to_us(filters.since),
        until_us=None if filters.until is None else clock.to_us(filters.until),
        match=match_query(filters.q),
        after=after,
    )


def _key(event: EventOut) -> Cursor:
    return Cursor(clock.to_us(event.time), event.id)
