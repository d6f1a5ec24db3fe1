"""The rollback guard: after a replacement, watch the new model, and undo it if it regresses.

The guard learns of a replacement from the dispatcher's observed-state hook: a
deployment that was ready with package A is ready with package B. From then
on, for ``settings.rollback.guard_s``, it reads that deployment's counters
every ``monitoring.guard_poll_s`` (seconds, not the relay's minute: the guard
uses the agent's own readings and never waits for the hub) and judges B's
requests since it serves against A's last figures (:mod:`.judging`). A's
figures are its requests since the relay's last window if there were
``min_requests`` of them, else its whole time serving on this server. A
failing probe of B (the health reporter's finding) is a regression too.

On a regression the guard

1. keeps an override (:mod:`.overrides`, stored durably) so B is not applied again
   until the desired state names it in a new revision after the rollback,
2. emits ``deployment.rolled_back`` (``failing``) with from, to, reason and figures,
3. stores a notice for the hub (``POST /api/v1/deployments/{id}/rollback``, sent by
   :class:`~.shipping.NoticeSender`, kept until delivered),
4. has the dispatcher route the amended spec: the deployment's worker replaces B
   by A through the ordinary zero-downtime replacement.

A guard that saw nothing wrong for ``guard_s`` ends with ``deployment.guard_passed``.
A rollback never starts a guard of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from pilothouse.agent.errors import PluginError, StatisticsError
from pilothouse.agent.events.bus import EventBus
from pilothouse.agent.monitoring.judging import Verdict, judge
from pilothouse.agent.monitoring.overrides import Override, Overrides
from pilothouse.agent.monitoring.readings import ModelReading, Reading, RequestCounters
from pilothouse.agent.monitoring.relay import StatisticsRelay
from pilothouse.agent.monitoring.store import MonitoringStore
from pilothouse.agent.workers.records import DeploymentRecord
from pilothouse.foundation.domain.desired import RollbackSettings
from pilothouse.foundation.domain.vocabulary import DeploymentState, Status

log = logging.getLogger("pilothouse.monitoring")

Amend = Callable[[str], bool]
"""Route a deployment's desired spec again, amended by the overrides (the dispatcher)."""


@dataclass(slots=True)
class _Watch:
    deployment_id: str
    from_package_id: str
    """The package that served before (rolled back to)."""
    to_package_id: str
    """The package under watch."""
    generation: int
    rules: RollbackSettings
    began: float
    began_wall: datetime
    old: RequestCounters | None = None
    base: ModelReading | None = None
    """The new model's counters when the watch began (a reused model's earlier requests)."""
    primed: bool = False
    probe_failure: str | None = None
    last: Verdict | None = None


class RollbackGuard:
    """Watches replacements and rolls regressions back."""

    def __init__(
        self,
        relay: StatisticsRelay,
        overrides: Overrides,
        bus: EventBus,
        *,
        poll_s: float,
        store: MonitoringStore | None,
        hub: bool,
    ) -> None:
        self._relay = relay
        self._overrides = overrides
        self._bus = bus
        self._poll_s = poll_s
        self._store = store
        self._hub = hub
        self._serving: dict[str, str] = {}
        self._watches: dict[str, _Watch] = {}
        self._wake = asyncio.Event()
        self.amend: Amend = lambda _deployment_id: False
        self.rollbacks = 0

    # --- the observed-state hook (sync, on the loop) --------------------------------

    def observe(self, rec: DeploymentRecord) -> None:
        """Every change of a deployment record: replacements start watches, probes end them."""
        package = rec.model_package_id if rec.state is DeploymentState.READY else None
        watch = self._watches.get(rec.id)
        # A failing probe of the new model while it serves; not an outage of its server
        # (errored: a crash or a kill is the server's, and the crash watch restarts it).
        failing = rec.state is DeploymentState.READY and rec.status is Status.FAILING
        if watch is not None and rec.model_package_id == watch.to_package_id and failing:
            watch.probe_failure = rec.message or f"{rec.id} is failing"
            self._wake.set()
        if package is None:
            return
        before = self._serving.get(rec.id)
        self._serving[rec.id] = package
        if before is None or before == package or rec.desired is None:
            return
        if watch is not None and watch.to_package_id != package:
            del self._watches[rec.id]  # replaced again (or rolled back): that watch is over
        override = self._overrides.get(rec.id)
        if override is not None and override.to_package_id == package:
            return  # the rollback itself: nothing to watch
        rules = rec.desired.settings.rollback
        if not rules.enabled or rules.guard_s <= 0:
            return
        loop = asyncio.get_running_loop()
        self._watches[rec.id] = _Watch(
            rec.id, before, package, rec.generation, rules, loop.time(), datetime.now(UTC)
        )
        self._wake.set()

    def watching(self) -> dict[str, str]:
        """Deployments under watch: id to the package watched."""
        return {k: w.to_package_id for k, w in self._watches.items()}

    # --- the task -------------------------------------------------------------------

    async def run(self, started: Callable[[], None]) -> None:
        """Judge every watch each ``guard_poll_s`` until cancelled."""
        started()
        while True:
            await self._persist()
            if not self._watches:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self.check_all()
            self._wake.clear()
            try:
                async with asyncio.timeout(self._next_look()):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _next_look(self) -> float:
        """Seconds until the watches need another look.

        Every ``guard_poll_s`` while statistics can be read. Without them only a failing
        probe (which wakes the guard) or the end of a watch changes anything: thousands of
        watches are then looked at once, when the first ends, not every poll.
        """
        if self._relay.readable or not self._watches:
            return self._poll_s
        ends = min(w.began + w.rules.guard_s for w in self._watches.values())
        return max(0.0, ends - asyncio.get_running_loop().time())

    async def check_all(self) -> None:
        """One look at every watch."""
        for watch in list(self._watches.values()):
            if self._watches.get(watch.deployment_id) is watch:
                await self._check(watch)

    async def _check(self, watch: _Watch) -> None:
        loop = asyncio.get_running_loop()
        if watch.probe_failure is not None:
            verdict = Verdict(True, f"probe failed: {watch.probe_failure}", {})
            await self._roll_back(watch, verdict)
            return
        reading = await self._read(watch)
        judged = self._judge(watch, reading) if reading is not None else None
        if judged is not None and judged.regressed:
            await self._roll_back(watch, judged)
            return
        if loop.time() - watch.began >= watch.rules.guard_s:
            del self._watches[watch.deployment_id]
            figures = watch.last.figures if watch.last else {}
            self._bus.report(
                "deployment.guard_passed",
                Status.INFORMATIONAL,
                f"{watch.deployment_id}: {watch.to_package_id} showed no regression against "
                f"{watch.from_package_id} in {watch.rules.guard_s:g}s",
                deployment_id=watch.deployment_id,
                data={"from_package_id": watch.from_package_id,
                      "to_package_id": watch.to_package_id, "figures": figures},
            )  # fmt: skip

    async def _read(self, watch: _Watch) -> Reading | None:
        if not self._relay.readable:
            return None  # only a failing probe can show a regression then
        try:
            return await self._relay.read(watch.deployment_id, associations=False)
        except (PluginError, StatisticsError, TimeoutError) as exc:
            log.warning("guard of %s cannot read statistics: %s", watch.deployment_id, exc)
            return None

    def _judge(self, watch: _Watch, reading: Reading) -> Verdict | None:
        new = reading.champion()
        if new is None or new.package_id != watch.to_package_id:
            return None  # not (yet, or any more) serving the watched package
        if not watch.primed:
            watch.primed = True
            watch.old = self._old_figures(watch, reading)
            cursor = self._relay.cursor(watch.deployment_id)
            if cursor is not None and cursor.server == reading.server:
                # A challenger promoted: only what it answered as the champion counts.
                watch.base = cursor.model(new.instance)
        counters = new.requests.minus(watch.base.requests if watch.base else None)
        verdict = judge(counters, watch.old, watch.rules)
        if verdict is not None:
            watch.last = verdict
        return verdict

    def _old_figures(self, watch: _Watch, reading: Reading) -> RequestCounters | None:
        """The replaced package's last figures: since the last window, or its whole life."""
        olds = [m for m in reading.models if m.package_id == watch.from_package_id]
        if not olds:
            return None
        old = olds[-1]
        cursor = self._relay.cursor(watch.deployment_id)
        base = cursor.model(old.instance) if cursor and cursor.server == reading.server else None
        recent = old.requests.minus(base.requests) if base is not None else None
        if recent is not None and recent.requests >= watch.rules.min_requests:
            return recent
        return old.requests

    async def _roll_back(self, watch: _Watch, verdict: Verdict) -> None:
        dep = watch.deployment_id
        del self._watches[dep]
        self.rollbacks += 1
        now = datetime.now(UTC)
        self._overrides.add(
            Override(
                deployment_id=dep,
                from_package_id=watch.to_package_id,
                to_package_id=watch.from_package_id,
                generation=watch.generation,
                released_after=None if self._hub else watch.generation,
                at=now,
                reason=verdict.reason,
            )
        )
        await self._persist()
        after_s = round(now.timestamp() - watch.began_wall.timestamp(), 3)
        figures = {**verdict.figures, "seconds_after_replacement": after_s}
        self._bus.report(
            "deployment.rolled_back",
            Status.FAILING,
            f"{dep}: rolled back from {watch.to_package_id} to {watch.from_package_id}: "
            f"{verdict.reason}",
            deployment_id=dep,
            data={"from_package_id": watch.to_package_id, "to_package_id": watch.from_package_id,
                  "reason": verdict.reason, "figures": figures, "generation": watch.generation},
        )  # fmt: skip
        if self._hub and self._store is not None:
            body = {"from_package_id": watch.to_package_id, "to_package_id": watch.from_package_id,
                    "reason": verdict.reason, "figures": figures}  # fmt: skip
            await self._store.add_notice(dep, orjson.dumps(body))
        if not self.amend(dep):
            log.warning("%s: a newer change is on its way; it is amended as it is routed", dep)

    async def _persist(self) -> None:
        if self._store is None or not self._overrides.dirty:
            return
        for deployment_id, override in self._overrides.pop_dirty().items():
            body = None if override is None else override.model_dump_json().encode()
            await self._store.put_override(deployment_id, body)
