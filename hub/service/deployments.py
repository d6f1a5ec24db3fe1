"""Deployments: creating them, acting on them, deleting them, and what their agent sees.

Each write goes through the store as one atomic change of the deployment's PE
(so the watch streams of that PE wake) together with a ``user``-source event
recording it; every reference to a PE or a model package is checked first and
refused with 404 naming the field. What the agent reports (``PUT …/status``)
is stored as the observed state — unless it claims a generation the hub never
asked for (ahead of the desired one: refused with 409, since storing it would
make every later, correct report look stale); the service health is computed
by the rule in :mod:`pilothouse.hub.service.health` from each source's latest report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from pilothouse.foundation.domain.desired import RollbackRecord
from pilothouse.foundation.domain.events import new_id as new_event_id
from pilothouse.foundation.domain.vocabulary import Source, Status
from pilothouse.hub import clock
from pilothouse.hub.api.schemas import (
    ActionRequest,
    Deployment,
    DeploymentCreate,
    Desired,
    DesiredStateSnapshot,
    EventIn,
    Observed,
    ObservedStatus,
    Page,
    PromoteRequest,
    RollbackRequest,
)
from pilothouse.hub.errors import Conflict, FieldProblem, NotFound
from pilothouse.hub.service import actions, cursors, health
from pilothouse.hub.service.auth import Principal
from pilothouse.hub.service.naming import new_id
from pilothouse.hub.store.interface import Store
from pilothouse.hub.store.records import Cursor, DeploymentRecord, PageQuery


class Deployments:
    """Create, change, delete and read deployments."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(self, body: DeploymentCreate) -> Deployment:
        """Create a deployment, desired launched at generation 1."""
        pe_id = body.prediction_environment_id
        if not await self._store.known_environments([pe_id]):
            raise NotFound.of("prediction environment", pe_id, "prediction_environment_id")
        await self._require_packages(body.model_package_id, body.challenger_ids)
        now = clock.now()
        record = DeploymentRecord(actions.first(new_id("dep"), body), pe_id, Observed(), now, now)
        data = {"generation": 1, "model_package_id": body.model_package_id}
        event = _event(record, "deployment.created", "deployment created", data)
        await self._store.add_deployment(record, event)
        return view(_noted(record, event))

    async def act(self, deployment_id: str, request: ActionRequest) -> Deployment:
        """Apply an action; the generation grows by one and a user event records it."""
        actions.check(request)
        await self._require_packages(request.model_package_id, request.challenger_ids or [])

        def change(record: DeploymentRecord) -> tuple[DeploymentRecord, EventIn]:
            desired = actions.apply(record.desired, request)
            new = dataclasses.replace(record, desired=desired, updated_at=clock.now())
            data = actions.describe(record.desired, desired, request.action)
            message = f"{request.action.value} requested"
            event = _event(new, "deployment.action_requested", message, data)
            return _noted(new, event), event

        return view(await self._store.update_deployment(deployment_id, change))

    async def rollback(
        self, deployment_id: str, request: RollbackRequest, who: Principal
    ) -> Deployment:
        """Record a rollback: the champion back to ``to_package_id``, with why, a new generation.

        The agent of the deployment's PE (which rolled back by itself) or the admin
        may ask. Refused with 409 when the desired champion is no longer
        ``from_package_id`` (someone changed it since: the agent then follows the
        desired state). Asked again for a rollback already recorded, it answers
        the deployment unchanged — the agent's delivery is at least once.
        """
        record = await self._store.get_deployment(deployment_id)
        who.require_environment(record.prediction_environment_id)
        if not await self._store.known_packages([request.to_package_id]):
            raise NotFound.of("model package", request.to_package_id, "to_package_id")
        at = clock.now()
        source = Source.USER if who.admin else Source.AGENT

        def change(record: DeploymentRecord) -> tuple[DeploymentRecord, EventIn]:
            desired = record.desired
            done = desired.rollback
            if (
                done is not None
                and desired.model_package_id == request.to_package_id
                and (done.from_package_id, done.to_package_id)
                == (request.from_package_id, request.to_package_id)
            ):
                raise _AlreadyRecorded(record)
            if desired.model_package_id != request.from_package_id:
                raise _moved(desired.model_package_id, request.from_package_id)
            rollback = RollbackRecord(
                from_package_id=request.from_package_id,
                to_package_id=request.to_package_id,
                reason=request.reason,
                at=at,
                figures=request.figures,
            )
            new_desired = desired.model_copy(
                update={
                    "model_package_id": request.to_package_id,
                    "generation": desired.generation + 1,
                    "rollback": rollback,
                }
            )
            new = dataclasses.replace(record, desired=new_desired, updated_at=at)
            data = {
                "generation": new_desired.generation,
                "from_package_id": request.from_package_id,
                "to_package_id": request.to_package_id,
                "reason": request.reason,
                "figures": request.figures,
            }
            event = _event(new, "deployment.rollback_recorded", "rollback recorded", data)
            event = event.model_copy(update={"source": source})
            return _noted(new, event), event

        try:
            return view(await self._store.update_deployment(deployment_id, change))
        except _AlreadyRecorded as done:
            return view(done.record)

    async def promote(self, deployment_id: str, request: PromoteRequest) -> Deployment:
        """Make a challenger the champion; the old champion leaves the challengers."""
        package = request.package_id

        def change(record: DeploymentRecord) -> tuple[DeploymentRecord, EventIn]:
            desired = record.desired
            if package not in desired.challenger_ids:
                message = f"model package {package!r} is not a challenger of this deployment"
                raise Conflict(message, [FieldProblem("package_id", message, package)])
            new_desired = desired.model_copy(
                update={
                    "model_package_id": package,
                    "challenger_ids": tuple(c for c in desired.challenger_ids if c != package),
                    "generation": desired.generation + 1,
                    "rollback": None,
                }
            )
            new = dataclasses.replace(record, desired=new_desired, updated_at=clock.now())
            data = {
                "generation": new_desired.generation,
                "model_package_id": package,
                "previous_model_package_id": desired.model_package_id,
                "challenger_ids": list(new_desired.challenger_ids),
            }
            event = _event(new, "deployment.promoted", f"challenger {package} promoted", data)
            return _noted(new, event), event

        return view(await self._store.update_deployment(deployment_id, change))

    async def delete(self, deployment_id: str) -> None:
        """Remove the deployment from the desired state (a tombstone keeps its generation)."""

        def change(record: DeploymentRecord) -> tuple[DeploymentRecord, EventIn]:
            desired = actions.removed(record.desired)
            new = dataclasses.replace(record, desired=desired, deleted=True, updated_at=clock.now())
            data = {"generation": desired.generation}
            return new, _event(new, "deployment.deleted", "deployment deleted", data)

        await self._store.update_deployment(deployment_id, change)

    async def get(self, deployment_id: str) -> Deployment:
        """One live deployment."""
        return view(await self._store.get_deployment(deployment_id))

    async def page(self, pe_id: str | None, limit: int, cursor: str | None) -> Page[Deployment]:
        """A page of live deployments, newest first, optionally of one PE."""
        query = PageQuery(limit + 1, cursors.decode(cursor))
        records = await self._store.list_deployments(pe_id, query)
        items, after = cursors.split(records, limit, _key)
        return Page[Deployment](items=[view(r) for r in items], next_cursor=after)

    async def observe(self, deployment_id: str, status: ObservedStatus, who: Principal) -> None:
        """Store what the PE's agent observes of one of its deployments."""
        record = await self._store.get_deployment(deployment_id)
        who.require_environment(record.prediction_environment_id)
        desired = record.desired.generation  # only grows: checking an older read is safe
        if status.generation > desired:
            message = (
                f"observed generation {status.generation} is ahead of the desired generation "
                f"{desired}: report the generation the observation answers"
            )
            raise Conflict(message, [FieldProblem("generation", message, status.generation)])
        observed = Observed(
            state=status.state,
            model_package_id=status.model_package_id,
            prediction_url=status.prediction_url,
            grpc_target=status.grpc_target,
            generation=status.generation,
            updated_at=clock.now(),
        )
        await self._store.set_observed(deployment_id, observed)

    async def desired_state(self, pe_id: str) -> DesiredStateSnapshot:
        """What the PE's agent must run, and the revision to watch from."""
        revision, desired = await self._store.desired_state(pe_id)
        return DesiredStateSnapshot(
            prediction_environment_id=pe_id, revision=revision, deployments=desired
        )

    async def _require_packages(self, champion: str | None, challengers: Sequence[str]) -> None:
        wanted = {"model_package_id": champion} if champion else {}
        wanted |= {f"challenger_ids.{i}": pkg for i, pkg in enumerate(challengers)}
        known = await self._store.known_packages(set(wanted.values())) if wanted else set()
        for field, pkg in wanted.items():
            if pkg not in known:
                raise NotFound.of("model package", pkg, field)


def view(record: DeploymentRecord) -> Deployment:
    """The API's view of a stored deployment."""
    desired = record.desired
    return Deployment(
        id=desired.id,
        name=desired.name,
        prediction_environment_id=record.prediction_environment_id,
        desired=Desired(
            state=desired.state,
            model_package_id=desired.model_package_id,
            challenger_ids=list(desired.challenger_ids),
            settings=desired.settings,
            generation=desired.generation,
            rollback=desired.rollback,
        ),
        observed=record.observed,
        service_health=health.decide(record.health),
        created_at=record.created_at,
        updated_at=record.updated_at,
        last_event_at=None if record.last_event_us is None else clock.from_us(record.last_event_us),
    )


class _AlreadyRecorded(Exception):
    """Raised inside a change to leave a deployment as it is (the rollback is recorded)."""

    def __init__(self, record: DeploymentRecord) -> None:
        super().__init__("rollback already recorded")
        self.record = record


def _moved(champion: str, expected: str) -> Conflict:
    message = (
        f"the desired champion is {champion!r}, no longer {expected!r}: it was changed since; "
        "follow the desired state"
    )
    return Conflict(message, [FieldProblem("from_package_id", message, expected)])


def _event(record: DeploymentRecord, kind: str, message: str, data: dict[str, Any]) -> EventIn:
    return EventIn(
        id=new_event_id(),
        time=clock.now(),
        prediction_environment_id=record.prediction_environment_id,
        deployment_id=record.desired.id,
        source=Source.USER,
        type=kind,
        status=Status.INFORMATIONAL,
        message=f"{record.desired.name or record.desired.id}: {message}",
        data=data,
    )


def _noted(record: DeploymentRecord, event: EventIn) -> DeploymentRecord:
    """``record`` with ``event`` counted in its last event time."""
    at = clock.to_us(event.time)
    return dataclasses.replace(record, last_event_us=max(record.last_event_us or at, at))


def _key(record: DeploymentRecord) -> Cursor:
    return Cursor(clock.to_us(record.created_at), record.desired.id)
