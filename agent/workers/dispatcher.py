"""The dispatcher: routes intake items to per-deployment workers.

It owns every deployment record and every worker task. A worker is started on
a deployment's first change (or when a health finding calls for action) and
retires when idle or when its deployment is gone; the record stays, so a
retired worker costs nothing but its record. Different deployments proceed in
parallel; the action runner bounds how many actions run at once.

The first snapshot is handed to the reconcile hook before anything is routed,
so what already runs is known before the first action is chosen.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable

from pilothouse.agent.actions.runner import ActionRunner
from pilothouse.agent.events.bus import EventBus
from pilothouse.agent.observability.metrics import AgentMetrics
from pilothouse.agent.settings import AgentSettings
from pilothouse.agent.workers.intake_queue import IntakeQueue
from pilothouse.agent.workers.records import DeploymentRecord
from pilothouse.agent.workers.worker import ChangeInbox, Worker, WorkerContext
from pilothouse.foundation.domain.changes import Change, IntakeItem, Snapshot
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.vocabulary import DeploymentState, Status

log = logging.getLogger("pilothouse.dispatcher")

ReconcileHook = Callable[["Dispatcher", Snapshot], Awaitable[None]]


class Dispatcher:
    """Owns deployment records and their workers."""

    def __init__(
        self,
        inbox: IntakeQueue,
        runner: ActionRunner,
        bus: EventBus,
        metrics: AgentMetrics,
        settings: AgentSettings,
        *,
        reconcile: ReconcileHook | None = None,
        on_observed: Callable[[DeploymentRecord], None] | None = None,
    ) -> None:
        self.inbox = inbox
        self.records: dict[str, DeploymentRecord] = {}
        self._ctx = WorkerContext(
            runner=runner,
            bus=bus,
            metrics=metrics,
            actions=settings.actions,
            workers=settings.workers,
            settled=self._settle,
            gone=self._forget,
        )
        if on_observed is not None:
            self._ctx.observed = on_observed
        self._reconcile = reconcile
        self._workers: dict[str, tuple[asyncio.Task[None], ChangeInbox]] = {}
        self._unsettled: set[str] = set()
        self._settled = asyncio.Event()
        self._settled.set()
        self._first_snapshot_seen = reconcile is None

    # --- intake side -------------------------------------------------------------

    async def run(self, started: Callable[[], None]) -> None:
        """The dispatcher task: route intake items until cancelled."""
        started()
        while True:
            item = await self.inbox.get()
            try:
                if isinstance(item, Snapshot) and not self._first_snapshot_seen:
                    assert self._reconcile is not None
                    await self._reconcile(self, item)
                    self._first_snapshot_seen = True
                self.route(item)
            finally:
                self.inbox.done()

    def route(self, item: IntakeItem) -> None:
        """Hand a snapshot's differences, or one change, to the workers."""
        if isinstance(item, Change):
            self._route_change(item)
            return
        # Compare with what was *routed*, not with what the worker applied: a
        # worker may not have absorbed its pending changes yet.
        for dep_id, desired in item.deployments.items():
            rec = self.records.get(dep_id)
            if rec is None or desired.generation > rec.routed_generation:
                self._route_change(Change(dep_id, desired, desired.generation))
        for rec in list(self.records.values()):
            if not rec.routed_removal and not rec.adopted and rec.id not in item.deployments:
                self._route_change(Change(rec.id, None, rec.routed_generation + 1))

    def _route_change(self, change: Change) -> None:
        rec = self.records.get(change.deployment_id)
        if rec is None:
            if change.desired is None:
                return
            rec = self.records[change.deployment_id] = DeploymentRecord(
                change.deployment_id, state=DeploymentState.STOPPED
            )
        if change.generation <= rec.routed_generation and rec.routed_generation:
            self._ctx.metrics.superseded.inc()  # stale: something newer was routed already
            return
        rec.routed_generation = change.generation
        rec.routed_removal = change.desired is None
        rec.adopted = False
        self._send(rec, change)

    # --- records ----------------------------------------------------------------

    def seed(
        self,
        deployment_id: str,
        *,
        state: DeploymentState,
        status: Status,
        applied: DesiredDeployment | None,
        model_package_id: str | None,
        prediction_url: str | None,
        adopted: bool = False,
    ) -> DeploymentRecord:
        """Record what reconcile found running, before any change is routed."""
        rec = self.records[deployment_id] = DeploymentRecord(
            deployment_id,
            state=state,
            status=status,
            applied=applied,
            desired=applied if adopted else None,
            model_package_id=model_package_id,
            prediction_url=prediction_url,
            adopted=adopted,
            routed_removal=not adopted,  # nothing desired yet: no removal to route
        )
        return rec

    def observed(self, rec: DeploymentRecord) -> None:
        """Tell the observers that ``rec`` changed outside a worker (a health finding)."""
        self._ctx.observed(rec)

    def poke(self, deployment_id: str) -> None:
        """Ask the deployment's worker to look again (a health finding may need action)."""
        rec = self.records.get(deployment_id)
        if rec is not None and not self._ctx.closing:
            self._send(rec, None)

    def idle_records(self) -> Iterable[DeploymentRecord]:
        """Records with no action in flight."""
        return (r for r in self.records.values() if not r.busy)

    def by_state(self) -> dict[str, int]:
        """How many deployments are in each state."""
        counts = Counter(r.state.value for r in self.records.values())
        return {s.value: counts.get(s.value, 0) for s in DeploymentState}

    def queue_depths(self) -> dict[str, int]:
        """Items waiting in the intake queue and in all worker inboxes."""
        return {
            "intake": self.inbox.qsize(),
            "workers": sum(q.qsize() for _, q in self._workers.values()),
        }

    @property
    def worker_count(self) -> int:
        """Workers alive now."""
        return len(self._workers)

    async def wait_settled(self) -> None:
        """Wait until every deployment has converged (nothing queued, running or to retry)."""
        while True:
            await self.inbox.wait_routed()
            await self._settled.wait()
            if self._settled.is_set() and self.inbox.qsize() == 0:
                return

    # --- workers ----------------------------------------------------------------

    def _send(self, rec: DeploymentRecord, change: Change | None) -> None:
        self._unsettled.add(rec.id)
        self._settled.clear()
        entry = self._workers.get(rec.id)
        if entry is None:
            inbox: ChangeInbox = ChangeInbox()
            worker = Worker(rec, inbox, self._ctx)
            task = asyncio.create_task(self._guarded(worker), name=f"worker {rec.id}")
            entry = self._workers[rec.id] = (task, inbox)
        entry[1].put_nowait(change)

    async def _guarded(self, worker: Worker) -> None:
        dep_id = worker.record.id
        try:
            await worker.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("worker of %s failed", dep_id)
            self._ctx.bus.report(
                "agent.worker_failed",
                Status.FAILING,
                f"the worker of {dep_id} failed: {type(exc).__name__}: {exc}",
                deployment_id=dep_id,
                data={"error": str(exc), "error_type": type(exc).__name__},
            )
        finally:
            # Retire synchronously: no await between the worker's last look at its
            # inbox and its removal, so no change can be queued to a dead worker.
            entry = self._workers.get(dep_id)
            if entry is not None and entry[0] is asyncio.current_task():
                del self._workers[dep_id]
                if not entry[1].empty() and not self._ctx.closing:
                    self._requeue(worker.record, entry[1])

    def _requeue(self, rec: DeploymentRecord, old: ChangeInbox) -> None:
        while not old.empty():
            self._send(rec, old.get_nowait())

    def _settle(self, deployment_id: str) -> None:
        self._unsettled.discard(deployment_id)
        if not self._unsettled:
            self._settled.set()

    def _forget(self, deployment_id: str) -> bool:
        entry = self._workers.get(deployment_id)
        if entry is not None and not entry[1].empty():
            return False  # a change arrived meanwhile: keep going
        self.records.pop(deployment_id, None)
        self._settle(deployment_id)
        return True

    async def shutdown(self, grace_s: float) -> None:
        """Let in-flight actions finish for up to ``grace_s``, then cancel every worker."""
        self._ctx.closing = True
        busy: list[asyncio.Task[None]] = []
        for dep_id, (task, _) in self._workers.items():
            rec = self.records.get(dep_id)
            if rec is not None and rec.busy:
                busy.append(task)
            else:
                task.cancel()  # waiting, not acting: nothing to finish
        if busy:
            await asyncio.wait(busy, timeout=grace_s)
        tasks = [t for t, _ in self._workers.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
