"""Events: idempotent batch ingest, filtered newest-first pages, service health views.

A batch is refused whole (nothing stored) if it is larger than the configured
limit, if an event's time lies outside the clock-skew allowance (422 naming
``events.N.time``), or if it names an unknown PE (404). An agent token speaks only
for its own PE (DESIGN.md): each of its events must be of its PE, of source
``agent`` (403 otherwise), and name no deployment but one of its PE's (403
for another PE's, 404 for one the hub never had: the agent's outbox drops such
an event instead of retrying it forever). Ingest is idempotent by event id:
a retried batch is answered with the number of events that were new and the
number already stored. The search string ``q`` is turned into a safe FTS5
query: each word becomes a quoted phrase (so no FTS5 syntax can be injected),
all must occur, and a trailing ``*`` keeps prefix search.
"""

from __future__ import annotations

from collections.abc import Sequence

from pilothouse.foundation.domain.vocabulary import Source
from pilothouse.hub import clock
from pilothouse.hub.api.schemas import (
    EventBatch,
    EventBatchResult,
    EventFilters,
    EventIn,
    EventOut,
    EventQuery,
    Page,
    ServiceHealthView,
)
from pilothouse.hub.errors import FieldProblem, Forbidden, InvalidInput, NotFound
from pilothouse.hub.service import cursors, health
from pilothouse.hub.service.auth import Principal
from pilothouse.hub.settings import EventSettings
from pilothouse.hub.store.interface import Store
from pilothouse.hub.store.records import Cursor, EventFilter
from pilothouse.hub.telemetry import HubMetrics

RECENT_EVENTS = 20


class Events:
    """Ingest and query events."""

    def __init__(
        self, store: Store, metrics: HubMetrics, max_batch: int, times: EventSettings
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._max_batch = max_batch
        self._ahead_us = round(times.max_clock_skew_s * 1_000_000)
        self._behind_us = round(times.max_age_days * 86_400 * 1_000_000)

    async def ingest(self, batch: EventBatch, who: Principal) -> EventBatchResult:
        """Store the batch's new events; refuse the whole batch if any event may not be."""
        if len(batch.events) > self._max_batch:
            raise InvalidInput.field("events", f"at most {self._max_batch} events per batch")
        self._check_times(batch.events)
        envs = {event.prediction_environment_id for event in batch.events}
        if not who.admin:
            await self._check_agent(batch.events, who)
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

    def _check_times(self, events: Sequence[EventIn]) -> None:
        """Refuse a time beyond the clock-skew allowance: health must not hang on it."""
        now = clock.now_us()
        earliest, latest = now - self._behind_us, now + self._ahead_us
        problems = [
            FieldProblem(
                f"events.{i}.time", _time_problem(at, earliest, latest), e.time.isoformat()
            )
            for i, e in enumerate(events)
            if not earliest <= (at := clock.to_us(e.time)) <= latest
        ]
        if problems:
            first = problems[0]
            message = f"{first.field}: {first.message}" + (
                f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            )
            raise InvalidInput(message, problems[:20])

    async def _check_agent(self, events: Sequence[EventIn], who: Principal) -> None:
        """An agent token writes only ``agent`` events of its own PE and its own deployments."""
        own = who.prediction_environment_id
        for i, event in enumerate(events):
            if event.prediction_environment_id != own:
                raise Forbidden(
                    f"events.{i}: this agent token may not post events of "
                    f"{event.prediction_environment_id!r} (it speaks for {own!r})"
                )
            if event.source is not Source.AGENT:
                raise Forbidden(
                    f"events.{i}.source: an agent token posts only source 'agent' events, "
                    f"not {event.source.value!r}"
                )
        named = {e.deployment_id for e in events if e.deployment_id is not None}
        owners = await self._store.deployment_environments(named) if named else {}
        for i, event in enumerate(events):
            dep = event.deployment_id
            if dep is None:
                continue
            if dep not in owners:
                raise NotFound.of("deployment", dep, f"events.{i}.deployment_id")
            if owners[dep] != own:
                raise Forbidden(
                    f"events.{i}.deployment_id: deployment {dep!r} is not of this agent's "
                    f"prediction environment {own!r}"
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
        message = f"prediction environment(s) not found: {', '.join(sorted(unknown))}"
        raise NotFound(message, problems[:20])


def _time_problem(at_us: int, earliest_us: int, latest_us: int) -> str:
    if at_us > latest_us:
        return (
            f"more than the allowed clock skew ahead of the hub's clock "
            f"(latest accepted: {clock.from_us(latest_us).isoformat()})"
        )
    return f"too far in the past (earliest accepted: {clock.from_us(earliest_us).isoformat()})"


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
