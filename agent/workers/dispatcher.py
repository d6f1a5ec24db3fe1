"""The dispatcher: routes intake items and findings to per-deployment workers.

It owns every deployment record and every worker task. A worker is started on
a deployment's first change or finding and retires when idle or when its
deployment is gone; the record stays, so a retired worker costs nothing but
its record. Different deployments proceed in parallel; the action runner
bounds how many actions run at once. The dispatcher never writes what a record
observes: health findings, the plugin's reports and reconcile results go to
the deployment's worker, which is the one writer of its record.

The first snapshot is handed to the reconcile hook before anything is routed;
the hook returns what it found running, which reaches each worker before its
first change, so what already runs is known before the first action is chosen.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence

from pilothouse.agent.actions.journal import ActionJournal
from pilothouse.agent.actions.runner import ActionRunner
from pilothouse.agent.events.bus import EventBus
from pilothouse.agent.observability.metrics import AgentMetrics
from pilothouse.agent.plugin import DeploymentReport
from pilothouse.agent.settings import AgentSettings
from pilothouse.agent.workers import findings
from pilothouse.agent.workers.findings import Finding, FindingSource
from pilothouse.agent.workers.intake_queue import IntakeQueue
from pilothouse.agent.workers.records import DeploymentRecord
from pilothouse.agent.workers.worker import ChangeInbox, Worker, WorkerContext
from pilothouse.foundation.aio.backoff import Backoff
from pilothouse.foundation.domain.changes import Change, IntakeItem, Snapshot
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.vocabulary import DeploymentState, Status

log = logging.getLogger("pilothouse.dispatcher")

ReconcileHook = Callable[[Snapshot], Awaitable[Sequence[Finding]]]
"""Given the first snapshot, report what runs (as findings) before anything is routed."""


class Dispatcher:
    """Owns deployment records and their workers."""

    def __init__(
        self,
        inbox: IntakeQueue,
        runner: ActionRunner,
        journal: ActionJournal,
        bus: EventBus,
        metrics: AgentMetrics,
        settings: AgentSettings,
        *,
        reconcile: ReconcileHook | None = None,
        on_observed: Callable[[DeploymentRecord], None] | None = None,
        amend: Callable[[DesiredDeployment], DesiredDeployment] | None = None,
    ) -> None:
        self.inbox = inbox
        self.records: dict[str, DeploymentRecord] = {}
        actions = settings.actions
        self._ctx = WorkerContext(
            runner=runner,
            journal=journal,
            bus=bus,
            metrics=metrics,
            workers=settings.workers,
            retry=Backoff(
                actions.errored_retry_s, max(actions.backoff_max_s, actions.errored_retry_s)
            ),
            settled=self._settle,
            gone=self._forget,
        )
        if on_observed is not None:
            self._ctx.observed = on_observed
        self._reconcile = reconcile
        self._amend = amend
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
            item = self._amended(await self.inbox.get())
            try:
                if isinstance(item, Snapshot) and not self._first_snapshot_seen:
                    assert self._reconcile is not None
                    for finding in await self._reconcile(item):
                        self._found_at_start(finding)
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

    def _amended(self, item: IntakeItem) -> IntakeItem:
        """``item`` as the agent applies it: the amend hook's rewrite (a rollback in force)."""
        amend = self._amend
        if amend is None:
            return item
        if isinstance(item, Change):
            desired = None if item.desired is None else amend(item.desired)
            return Change(item.deployment_id, desired, item.generation)
        return Snapshot({k: amend(d) for k, d in item.deployments.items()}, item.source)

    def reapply(self, deployment_id: str) -> bool:
        """Route a deployment's current desired spec again, amended, at its generation.

        For a decision the agent made itself (a rollback): the worker takes a spec
        that differs at the same generation. False when there is nothing to amend,
        or a newer change is already routed (it is amended as it is routed).
        """
        rec = self.records.get(deployment_id)
        if rec is None or rec.desired is None or self._amend is None:
            return False
        if rec.routed_generation != rec.generation or rec.routed_removal:
            return False
        amended = self._amend(rec.desired)
        if amended == rec.desired:
            return False
        self._send(rec, Change(deployment_id, amended, rec.generation))
        return True

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

    # --- findings ---------------------------------------------------------------

    def _found_at_start(self, finding: Finding) -> None:
        """A deployment reconcile found running: its record, then the finding to its worker."""
        dep_id = finding.report.deployment_id
        rec = self.records[dep_id] = DeploymentRecord(
            dep_id,
            adopted=finding.adopt,
            routed_removal=not finding.adopt,  # nothing desired yet: no removal to route
        )
        self._send(rec, finding)

    def deliver(self, finding: Finding) -> None:
        """Hand a finding to its deployment's worker (unknown deployments are ignored)."""
        rec = self.records.get(finding.report.deployment_id)
        if rec is not None and not self._ctx.closing:
            self._send(rec, finding)

    def report(self, report: DeploymentReport) -> None:
        """A plugin's own report (``ctx.report``): to the deployment's worker at once."""
        rec = self.records.get(report.deployment_id)
        if rec is None:
            log.debug("report of unknown deployment %s ignored", report.deployment_id)
            return
        if rec.busy:
            # The action in flight ends with its own outcome, newer than this report.
            log.debug("report of %s during an action ignored", report.deployment_id)
            return
        if findings.news(rec, report):
            self.deliver(Finding(report, FindingSource.PLUGIN, rec.stamp))

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

    def _send(self, rec: DeploymentRecord, item: Change | Finding) -> None:
        self._unsettled.add(rec.id)
        self._settled.clear()
        entry = self._workers.get(rec.id)
        if entry is None:
            inbox: ChangeInbox = ChangeInbox()
            worker = Worker(rec, inbox, self._ctx)
            # ``_guarded`` reports the worker's failure itself, so no done-callback: with
            # ten thousand workers, one closure and context each is 50,000 more objects
            # for every full garbage collection to scan (and more full collections).
            task = asyncio.create_task(self._guarded(worker), name=f"worker {rec.id}")
            entry = self._workers[rec.id] = (task, inbox)
        entry[1].put_nowait(item)

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
        workers = [t for t, _ in self._workers.values()]
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
