"""One deployment's worker: applies its desired changes one at a time.

A worker owns a queue (its *inbox*). It takes everything queued, keeps only
the newest generation (older pending changes are superseded and dropped,
never executed), and then asks the state machine for the next action until
the deployment has converged. A failed action errors the deployment and is
tried again after a growing delay, unless a newer change arrives first. With
nothing to do for ``idle_timeout_s`` the worker retires; the dispatcher keeps
the record and starts a new worker on the next change.

Every state change and every action outcome is an event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from pilothouse.agent.actions.runner import ActionRunner, Retry
from pilothouse.agent.errors import PluginError
from pilothouse.agent.events.bus import EventBus
from pilothouse.agent.machine import transitions
from pilothouse.agent.machine.transitions import Trigger
from pilothouse.agent.observability.metrics import AgentMetrics
from pilothouse.agent.plugin import ActionResult
from pilothouse.agent.settings import ActionSettings, WorkerSettings
from pilothouse.agent.workers.inbox import Inbox
from pilothouse.agent.workers.records import DeploymentRecord
from pilothouse.foundation import logcontext
from pilothouse.foundation.domain.changes import Change
from pilothouse.foundation.domain.vocabulary import Action, DeploymentState, Status

log = logging.getLogger("pilothouse.worker")

ChangeInbox = Inbox[Change | None]
"""Changes for one deployment; ``None`` asks the worker to look again (a health finding)."""

_STATE_STATUS = {
    DeploymentState.READY: Status.PASSING,
    DeploymentState.ERRORED: Status.FAILING,
    DeploymentState.UNKNOWN: Status.UNKNOWN,
}


@dataclass(slots=True)
class WorkerContext:
    """What all workers share; owned by the dispatcher."""

    runner: ActionRunner
    bus: EventBus
    metrics: AgentMetrics
    actions: ActionSettings
    workers: WorkerSettings
    settled: Callable[[str], None]
    """Called when a deployment has converged to its desired state."""
    gone: Callable[[str], bool]
    """Called when a removed deployment has stopped; True if the record was dropped."""
    observed: Callable[[DeploymentRecord], None] = lambda _rec: None
    """Called after every state change (the hub link reports it as observed state)."""
    closing: bool = False


class Worker:
    """Serializes the changes of one deployment."""

    def __init__(self, record: DeploymentRecord, inbox: ChangeInbox, ctx: WorkerContext) -> None:
        self.record = record
        self.inbox = inbox
        self._ctx = ctx
        self._retry_in: float | None = None
        self._unapplied = 0

    async def run(self) -> None:
        """Apply changes until idle for too long, or until the deployment is gone."""
        logcontext.deployment_id.set(self.record.id)
        while not self._ctx.closing:
            timeout = (
                self._retry_in if self._retry_in is not None else self._ctx.workers.idle_timeout_s
            )
            if await self.inbox.wait(timeout):
                self._absorb(self.inbox.get_nowait())
            elif self._retry_in is None:
                return  # idle: retire
            self._retry_in = None
            self._drain()
            if await self._converge():
                return

    def _drain(self) -> None:
        while not self.inbox.empty():
            self._absorb(self.inbox.get_nowait())

    def _absorb(self, change: Change | None) -> None:
        rec = self.record
        if change is None:
            return
        if change.generation <= rec.generation and rec.generation > 0:
            self._ctx.metrics.superseded.inc()  # stale: a newer one was applied already
            return
        self._unapplied += 1
        rec.generation = change.generation
        rec.desired = change.desired
        rec.failures = 0

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
                return False
        if self._ctx.closing:
            return True
        if rec.desired is None and rec.state is DeploymentState.STOPPED:
            return self._ctx.gone(rec.id)
        self._ctx.settled(rec.id)
        return False

    def _account_superseded(self) -> None:
        if self._unapplied > 1:
            # Changes that were pending together: only the newest is acted on.
            self._ctx.metrics.superseded.inc(self._unapplied - 1)
        self._unapplied = 0

    def _schedule_retry(self) -> None:
        base = self._ctx.actions.errored_retry_s
        ceiling = max(self._ctx.actions.backoff_max_s, base)
        self._retry_in = min(base * 2 ** min(self.record.failures - 1, 16), ceiling)

    async def _execute(self, action: Action) -> bool:
        rec = self.record
        spec = rec.spec_for_stop() if action is Action.STOP else rec.desired
        assert spec is not None  # decide() only launches or replaces a desired deployment
        self._account_superseded()
        self._move(transitions.start_trigger(action), action, f"{action.value} started")
        rec.busy = True
        try:
            result = await self._ctx.runner.run(action, spec, self._retrying)
        except PluginError as exc:
            return self._failed(action, exc)
        except asyncio.CancelledError:
            self._cancelled(action)
            raise
        finally:
            rec.busy = False
        if result.old_model_in_use and action is Action.REPLACE_MODEL:
            return self._rolled_back(action, result)
        self._succeeded(action, result)
        return True

    def _succeeded(self, action: Action, result: ActionResult) -> None:
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
        rec.status = Status.UNKNOWN if stopped else result.status
        data = self._data(action) | result.data
        if result.prediction_url:
            data["prediction_url"] = result.prediction_url
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
            status=None if stopped else result.status,
        )

    def _failed(self, action: Action, exc: PluginError) -> bool:
        rec = self.record
        rec.failures += 1
        rec.status = Status.FAILING
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
        self._move(Trigger.ROLLED_BACK, action, msg, status=result.status, extra=serving)
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
        status: Status | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        rec = self.record
        new = transitions.transition(rec.state, trigger)
        rec.state = new
        rec.message = message
        shown = status if status is not None else _STATE_STATUS.get(new, Status.INFORMATIONAL)
        self._report(
            f"deployment.{new.value}",
            shown,
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
