"""One deployment's worker: the one writer of its record, applying changes one at a time.

A worker owns a queue (its *inbox*) of desired changes and findings (health
checks, the plugin's own reports, what reconcile found). It takes everything
queued, keeps only the newest generation (older pending changes are
superseded and dropped, never executed), folds the findings in by the state
machine, and then asks the machine for the next action until the deployment
has converged. A failed action errors the deployment and is tried again after
a growing delay (the kit's :class:`~pilothouse.foundation.aio.backoff.Backoff`),
unless a newer change or a finding that changes something arrives first. With
nothing to do for ``idle_timeout_s`` the worker retires; the dispatcher keeps
the record and starts a new worker on the next item.

Every action is written to the action journal before the plugin is asked for
it, and its outcome after, so a crash in between is redone or proven done at
the next start. Every state change and every action outcome is an event, and
every decision — doing nothing included — ends with the record handed to the
``observed`` hook, so the hub sees what runs at the newest generation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from pilothouse.agent.actions.journal import ActionJournal
from pilothouse.agent.actions.runner import ActionRunner, Retry
from pilothouse.agent.errors import JournalError, PluginError
from pilothouse.agent.events.bus import EventBus
from pilothouse.agent.machine import transitions
from pilothouse.agent.machine.transitions import Trigger
from pilothouse.agent.observability.metrics import AgentMetrics
from pilothouse.agent.plugin import ActionResult
from pilothouse.agent.settings import WorkerSettings
from pilothouse.agent.workers.findings import Finding, FindingSource
from pilothouse.agent.workers.inbox import Inbox
from pilothouse.agent.workers.records import DeploymentRecord
from pilothouse.foundation import logcontext
from pilothouse.foundation.aio.backoff import Backoff
from pilothouse.foundation.domain.changes import Change
from pilothouse.foundation.domain.vocabulary import Action, DeploymentState, Status

log = logging.getLogger("pilothouse.worker")

ChangeInbox = Inbox[Change | Finding]
"""Desired changes and findings for one deployment, in the order they came."""


@dataclass(slots=True)
class WorkerContext:
    """What all workers share; owned by the dispatcher."""

    runner: ActionRunner
    journal: ActionJournal
    bus: EventBus
    metrics: AgentMetrics
    workers: WorkerSettings
    retry: Backoff
    """Delays before an errored deployment is tried again."""
    settled: Callable[[str], None]
    """Called when a deployment has converged to its desired state."""
    gone: Callable[[str], bool]
    """Called when a removed deployment has stopped; True if the record was dropped."""
    observed: Callable[[DeploymentRecord], None] = lambda _rec: None
    """Called after every change of the record and every decision (the hub link reports it)."""
    closing: bool = False


class Worker:
    """Serializes the changes of one deployment."""

    def __init__(self, record: DeploymentRecord, inbox: ChangeInbox, ctx: WorkerContext) -> None:
        self.record = record
        self.inbox = inbox
        self._ctx = ctx
        self._retry_at: float | None = None
        self._unapplied = 0

    async def run(self) -> None:
        """Apply changes until idle for too long, or until the deployment is gone."""
        logcontext.deployment_id.set(self.record.id)
        loop = asyncio.get_running_loop()
        while not self._ctx.closing:
            retry_at = self._retry_at
            idle = self._ctx.workers.idle_timeout_s
            if await self.inbox.wait(idle if retry_at is None else retry_at - loop.time()):
                if not self._drain() and retry_at is not None and loop.time() < retry_at:
                    continue  # nothing new: the errored deployment keeps its retry time
            elif retry_at is None:
                return  # idle: retire
            self._retry_at = None
            if await self._converge():
                return

    def _drain(self) -> bool:
        """Take everything queued; tell whether any of it changed the record."""
        moved = False
        while not self.inbox.empty():
            moved = self._absorb(self.inbox.get_nowait()) or moved
        return moved

    def _absorb(self, item: Change | Finding) -> bool:
        if isinstance(item, Finding):
            return self._found(item)
        rec = self.record
        if rec.generation > 0 and (
            item.generation < rec.generation
            or (item.generation == rec.generation and item.desired == rec.desired)
        ):
            # Stale: a newer one was applied already. The same generation with another
            # spec is the agent's own amendment of it (a rollback): that one is taken.
            self._ctx.metrics.superseded.inc()
            return False
        self._unapplied += 1
        rec.generation = item.generation
        rec.desired = item.desired
        rec.failures = 0
        return True

    # --- findings ---------------------------------------------------------------------

    def _found(self, finding: Finding) -> bool:
        """Fold a finding into the record by the state machine; tell whether it changed it."""
        rec = self.record
        if finding.stamp != rec.stamp:
            return False  # an action started or ended since: its outcome is newer
        report = finding.report
        if finding.source is FindingSource.RECONCILE:
            self._seed(finding)
            return True
        state, status = transitions.observe(rec.state, rec.status, report.state, report.status)
        if (state, status) == (rec.state, rec.status):
            return False
        old_state, old_status = rec.state, rec.status
        rec.state, rec.status = state, status
        if state is DeploymentState.ERRORED:
            rec.applied = None
        cause = f" ({report.message})" if report.message else ""
        if state is not old_state:
            rec.message = f"found {report.state.value} by {finding.source.value}{cause}"
            self._report(
                f"deployment.{state.value}",
                transitions.event_status(state, status),
                f"{rec.id} is {state.value}: {rec.message}",
                {"state": state.value, "found": report.state.value, **report.data},
            )
        else:
            self._report(
                "deployment.health_changed",
                status,
                f"{rec.id} is {status.value}" + (f": {report.message}" if report.message else ""),
                {"previous": old_status.value, "status": status.value, **report.data},
            )
        self._ctx.observed(rec)
        return True

    def _seed(self, finding: Finding) -> None:
        """What reconcile found at start: the record's first observation, without events."""
        rec, report = self.record, finding.report
        rec.state, rec.status = transitions.observe(
            DeploymentState.UNKNOWN, Status.UNKNOWN, report.state, report.status
        )
        rec.applied = finding.applied if rec.state is DeploymentState.READY else None
        rec.model_package_id = report.model_package_id
        rec.prediction_url = report.prediction_url
        rec.grpc_target = report.grpc_target
        rec.message = f"found {report.state.value} by reconcile"
        if finding.adopt:
            rec.desired = finding.applied

    async def _converge(self) -> bool:
        """Act until converged; True when the worker should end (deployment gone)."""
        rec = self.record
        while not self._ctx.closing:
            self._drain()
            action = transitions.decide(rec.state, rec.applied, rec.desired)
            if action is None:
                self._account_superseded()
                break
            if not await self._execute(action):
                self._schedule_retry()
                self._ctx.observed(rec)
                return False
        if self._ctx.closing:
            return True
        if rec.desired is None and rec.state is DeploymentState.STOPPED:
            return self._ctx.gone(rec.id)
        # Converged, maybe with nothing to do (a stop of a stopped deployment, a launch
        # of a ready one): the hub learns it is so at the newest generation.
        self._ctx.observed(rec)
        self._ctx.settled(rec.id)
        return False

    def _account_superseded(self) -> None:
        if self._unapplied > 1:
            # Changes that were pending together: only the newest is acted on.
            self._ctx.metrics.superseded.inc(self._unapplied - 1)
        self._unapplied = 0

    def _schedule_retry(self) -> None:
        delay = self._ctx.retry.delay(max(self.record.failures - 1, 0))
        self._retry_at = asyncio.get_running_loop().time() + delay

    async def _execute(self, action: Action) -> bool:
        rec = self.record
        spec = rec.spec_for_stop() if action is Action.STOP else rec.desired
        assert spec is not None  # decide() only launches or replaces a desired deployment
        self._account_superseded()
        rec.busy = True
        rec.actions_started += 1
        try:
            try:
                await self._ctx.journal.begin(rec.id, action, spec)
            except JournalError as exc:
                return self._not_started(action, exc)
            self._move(transitions.start_trigger(action), action, f"{action.value} started")
            try:
                result = await self._ctx.runner.run(action, spec, self._retrying)
            except PluginError as exc:
                done = self._failed(action, exc)
            except asyncio.CancelledError:
                self._cancelled(action)  # left in flight in the journal: redone or proven
                raise
            else:
                if result.old_model_in_use and action is Action.REPLACE_MODEL:
                    done = self._rolled_back(action, result)
                else:
                    done = self._succeeded(action, result)
        finally:
            rec.busy = False
        self._ctx.journal.settle(rec.id, rec.applied)
        return done

    def _not_started(self, action: Action, exc: JournalError) -> bool:
        """The action could not be recorded, so it was not asked of the plugin."""
        self.record.failures += 1
        self._report(
            f"action.{action.value}.failed",
            Status.FAILING,
            f"{action.value} not started: {exc}",
            self._data(action) | {"error": str(exc), "error_type": type(exc).__name__},
        )
        return False

    def _succeeded(self, action: Action, result: ActionResult) -> bool:
        rec = self.record
        stopped = action is Action.STOP
        rec.failures = 0
        rec.applied = None if stopped else rec.desired
        rec.model_package_id = (
            None
            if stopped
            else result.model_package_id or (rec.desired.model_package_id if rec.desired else None)
        )
        rec.prediction_url = None if stopped else result.prediction_url
        rec.grpc_target = None if stopped else result.grpc_target
        data = self._data(action) | result.data
        if result.prediction_url:
            data["prediction_url"] = result.prediction_url
        if result.grpc_target:
            data["grpc_target"] = result.grpc_target
        self._report(
            f"action.{action.value}.succeeded",
            Status.INFORMATIONAL,
            result.message or f"{action.value} succeeded",
            data,
        )
        self._move(
            Trigger.SUCCEEDED,
            action,
            result.message or f"{action.value} succeeded",
            reported=result.status,
        )
        return True

    def _failed(self, action: Action, exc: PluginError) -> bool:
        rec = self.record
        rec.failures += 1
        data = self._data(action) | {
            "error": str(exc),
            "error_type": type(exc).__name__,
            "old_model_in_use": False,
        }
        self._report(
            f"action.{action.value}.failed", Status.FAILING, f"{action.value} failed: {exc}", data
        )
        if action is not Action.REPLACE_MODEL:
            rec.applied = None
        self._move(Trigger.FAILED, action, str(exc))
        return False

    def _rolled_back(self, action: Action, result: ActionResult) -> bool:
        rec = self.record
        rec.failures += 1
        if result.model_package_id:
            rec.model_package_id = result.model_package_id
        data = self._data(action) | result.data | {"old_model_in_use": True}
        msg = result.message or "new model failed; the previous model is still serving"
        self._report(f"action.{action.value}.failed", Status.FAILING, msg, data)
        serving: dict[str, object] = {
            "model_package_id": rec.model_package_id,
            "old_model_in_use": True,
        }
        self._move(Trigger.ROLLED_BACK, action, msg, reported=result.status, extra=serving)
        return False

    def _cancelled(self, action: Action) -> None:
        self._report(
            f"action.{action.value}.cancelled",
            Status.AT_RISK,
            f"{action.value} cancelled before it finished",
            self._data(action),
        )
        self._move(Trigger.CANCELLED, action, f"{action.value} cancelled; state not known")

    def _retrying(self, retry: Retry) -> None:
        self._report(
            f"action.{retry.action.value}.retrying",
            Status.AT_RISK,
            f"{retry.action.value} attempt {retry.attempt} failed ({retry.error}); "
            f"retrying in {retry.delay_s:.1f}s",
            self._data(retry.action)
            | {
                "attempt": retry.attempt,
                "error": str(retry.error),
                "delay_s": round(retry.delay_s, 3),
            },
        )

    def _move(
        self,
        trigger: Trigger,
        action: Action,
        message: str,
        reported: Status | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        """Move the state by the machine; the health follows the state, as the machine says."""
        rec = self.record
        new = transitions.transition(rec.state, trigger)
        rec.state = new
        rec.status = transitions.health(new, reported or rec.status, rec.status)
        rec.message = message
        self._report(
            f"deployment.{new.value}",
            transitions.event_status(new, rec.status),
            f"{rec.id} is {new.value}: {message}",
            self._data(action) | {"state": new.value} | (extra or {}),
        )
        self._ctx.observed(rec)

    def _data(self, action: Action) -> dict[str, object]:
        rec = self.record
        desired = rec.desired
        return {
            "action": action.value,
            "generation": rec.generation,
            "model_package_id": desired.model_package_id if desired else rec.model_package_id,
        }

    def _report(self, type_: str, status: Status, message: str, data: dict[str, object]) -> None:
        self._ctx.bus.report(type_, status, message, deployment_id=self.record.id, data=data)
