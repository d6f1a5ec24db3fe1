"""The agent: wires intake, dispatcher, workers, health and events under a supervisor.

``await Agent(settings).serve()`` runs until :meth:`Agent.request_stop` (the
CLI calls it on SIGTERM/SIGINT), until a task crash-loops (``serve`` then
raises :class:`~pilothouse.agent.errors.CrashLoopError`), or until the task running it is
cancelled. Start-up and shutdown are one ordered stack: each part registers
its own shutdown as it starts, so a start that fails halfway undoes exactly
what it did, and a normal stop runs in the fixed order

1. stop intake, health checks and heartbeats (no new work),
2. let in-flight actions finish within ``shutdown.grace_period_s``, then cancel them,
   and close the action journal (a cancelled action stays in it, to be redone or
   proven done at the next start),
3. unload the plugin and cancel its background tasks,
4. stop the HTTP endpoint,
5. write every remaining event, then close the event sinks.

The agent never installs signal handlers and never cancels a task it did not
create, so it can be embedded in any asyncio program.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from functools import partial
from typing import Any

from pilothouse.agent.actions.journal import ActionJournal
from pilothouse.agent.actions.runner import ActionRunner
from pilothouse.agent.errors import (
    CrashLoopError,
    JournalError,
    PermanentPluginError,
    PluginError,
    PluginNotReadyError,
)
from pilothouse.agent.events.bus import EventBus
from pilothouse.agent.events.sinks import EventSink, JsonLinesLog, LogSink
from pilothouse.agent.health import heartbeat
from pilothouse.agent.health.reporter import HealthReporter
from pilothouse.agent.hublink.link import HubLink
from pilothouse.agent.intake.file import FileIntake
from pilothouse.agent.intake.revisions import Revisions
from pilothouse.agent.monitoring.service import TASKS as MONITORING_TASKS
from pilothouse.agent.monitoring.service import Monitoring
from pilothouse.agent.observability.http import HttpEndpoint, create_app
from pilothouse.agent.observability.metrics import AgentMetrics
from pilothouse.agent.plugin import DeploymentReport, Plugin, PluginContext, PluginRegistry
from pilothouse.agent.reconcile import Reconciler
from pilothouse.agent.settings import AgentSettings
from pilothouse.agent.workers.dispatcher import Dispatcher
from pilothouse.agent.workers.intake_queue import IntakeQueue
from pilothouse.agent.workers.records import DeploymentRecord
from pilothouse.foundation.aio.backoff import Backoff
from pilothouse.foundation.aio.supervisor import Supervisor, TaskFailure
from pilothouse.foundation.domain.changes import Snapshot
from pilothouse.foundation.domain.desired import DesiredState
from pilothouse.foundation.domain.events import Event
from pilothouse.foundation.domain.vocabulary import Status

log = logging.getLogger("pilothouse.agent")


class Agent:
    """One management agent for one prediction environment."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        registry: PluginRegistry | None = None,
        plugin: Plugin | None = None,
        sinks: Sequence[EventSink] = (),
    ) -> None:
        self.settings = settings
        self._registry = registry
        self._plugin_given = plugin
        self._extra_sinks = list(sinks)
        self._stop_requested = asyncio.Event()
        self._ready = asyncio.Event()
        self._revisions = Revisions()
        self.metrics = AgentMetrics()
        self.intake_queue = IntakeQueue()
        self.plugin: Plugin | None = None
        self.bus: EventBus | None = None
        self.dispatcher: Dispatcher | None = None
        self.supervisor: Supervisor | None = None
        self.health: HealthReporter | None = None
        self.http: HttpEndpoint | None = None
        self.link: HubLink | None = None
        self.plugin_context: PluginContext | None = None
        self.monitoring: Monitoring | None = None

    # --- control -------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask :meth:`serve` to shut down cleanly; safe to call at any time, more than once."""
        self._stop_requested.set()

    async def wait_ready(self) -> None:
        """Wait until every task of the agent has started."""
        await self._ready.wait()

    def apply(self, state: DesiredState) -> None:
        """Set the desired state directly (embedding; next to or instead of a file)."""
        rev = self._revisions.assign(state)
        self.intake_queue.put(Snapshot(rev.deployments, source="api"))

    async def wait_settled(self) -> None:
        """Wait until every deployment has converged to its desired state."""
        await self._ready.wait()
        assert self.dispatcher is not None
        await self.dispatcher.wait_settled()

    # --- serving -------------------------------------------------------------

    async def serve(self) -> None:
        """Run the agent until asked to stop; raise ``CrashLoopError`` if it had to give up."""
        s = self.settings
        await asyncio.to_thread(s.state_dir.mkdir, parents=True, exist_ok=True)
        link = self.link = HubLink(s, self.intake_queue) if s.hub.url else None
        sinks: list[EventSink] = [JsonLinesLog(s.event_log_path), LogSink(), *self._extra_sinks]
        if link is not None:
            await link.open()
            sinks.insert(0, link.outbox)  # durable first: what the hub must get
        bus = self.bus = EventBus(s.prediction_environment, sinks, on_emit=self._count_event)
        supervisor = self.supervisor = Supervisor(s.supervisor.policy(), self._task_failed)
        fatal: CrashLoopError | None = None
        async with AsyncExitStack() as stack:
            stack.push_async_callback(self._close_events, bus, supervisor)
            await supervisor.start("event writer", bus.run)
            bus.report(
                "agent.starting",
                Status.INFORMATIONAL,
                f"agent starting for {s.prediction_environment} with plugin {s.plugin!r}",
                data={"plugin": s.plugin},
            )
            await self._start_http(stack, supervisor)
            plugin = await self._start_plugin(stack, bus)
            if plugin is None:
                return  # stopped while the plugin was not ready yet
            await self._start_engine(stack, supervisor, plugin, bus)
            bus.report(
                "agent.started",
                Status.INFORMATIONAL,
                f"agent started for {s.prediction_environment}",
                data={"plugin": s.plugin, "tasks": sorted(supervisor.alive())},
            )
            self._ready.set()
            fatal = await self._until_stop(supervisor)
            bus.report(
                "agent.stopping",
                Status.FAILING if fatal else Status.INFORMATIONAL,
                f"agent stopping: {fatal}" if fatal else "agent stopping",
                data={"reason": "crash_loop" if fatal else "requested"},
            )
        self._ready.clear()
        if fatal is not None:
            raise fatal

    async def _until_stop(self, supervisor: Supervisor) -> CrashLoopError | None:
        stop = asyncio.create_task(self._stop_requested.wait(), name="agent: stop requested")
        crash = asyncio.create_task(supervisor.fatal(), name="agent: crash loop")
        try:
            await asyncio.wait([stop, crash], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stop, crash):
                task.cancel()
            await asyncio.gather(stop, crash, return_exceptions=True)
        return crash.result() if crash.done() and not crash.cancelled() else None

    async def _start_http(self, stack: AsyncExitStack, supervisor: Supervisor) -> None:
        http = self.settings.http
        if not http.enabled:
            return
        app = create_app(self._health_view, self.metrics.registry)
        self.http = HttpEndpoint(app, http.host, http.port)
        stack.push_async_callback(supervisor.stop, ["http endpoint"])
        await supervisor.start("http endpoint", self.http.run)

    async def _start_plugin(self, stack: AsyncExitStack, bus: EventBus) -> Plugin | None:
        s = self.settings
        plugin = self.plugin = self._plugin_given or (
            self._registry or PluginRegistry.from_entry_points()
        ).create(s.plugin)
        plugin.name = plugin.name or s.plugin
        ctx = self.plugin_context = PluginContext(
            prediction_environment_id=s.prediction_environment,
            settings=s.plugin_settings,
            state_dir=s.state_dir / "plugin",
            emit=bus.emit,
            logger=logging.getLogger(f"pilothouse.plugin.{s.plugin}"),
            fetch_package=self.link.packages.fetch if self.link else None,
            package_tokens=self.link.package_tokens if self.link else None,
            reports=self._plugin_report,
            task_policy=s.supervisor.policy(),
        )
        stack.push_async_callback(ctx.stop_tasks)
        if not await self._setup_with_retry(plugin, ctx, bus):
            return None
        stack.push_async_callback(self._stop_plugin, plugin, bus)
        return plugin

    async def _setup_with_retry(self, plugin: Plugin, ctx: PluginContext, bus: EventBus) -> bool:
        sup = self.settings.supervisor
        backoff = Backoff(sup.restart_backoff_initial_s, sup.restart_backoff_max_s)
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + sup.plugin_ready_timeout_s
        attempt = 0
        while True:
            try:
                await plugin.start(ctx)
                return True
            except PluginNotReadyError as exc:
                delay = exc.delay if exc.delay is not None else backoff.delay(attempt)
                attempt += 1
                if loop.time() + delay > give_up_at:
                    raise self._never_ready(plugin, exc, bus) from exc
                bus.report(
                    "agent.plugin_not_ready",
                    Status.AT_RISK,
                    f"plugin {plugin.name!r} is not ready ({exc}); retrying in {delay:.1f}s",
                    data={"error": str(exc), "attempt": attempt},
                )
            except PluginError as exc:
                bus.report(
                    "agent.plugin_failed",
                    Status.FAILING,
                    f"plugin {plugin.name!r} could not start: {exc}",
                    data={"error": str(exc), "error_type": type(exc).__name__},
                )
                raise
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stop_requested.wait()
                    return False

    def _never_ready(
        self, plugin: Plugin, exc: PluginNotReadyError, bus: EventBus
    ) -> PermanentPluginError:
        timeout = self.settings.supervisor.plugin_ready_timeout_s
        error = PermanentPluginError(
            f"plugin {plugin.name!r} was not ready within {timeout:g}s "
            f"(supervisor.plugin_ready_timeout_s); last: {exc}"
        )
        bus.report(
            "agent.plugin_failed",
            Status.FAILING,
            f"plugin {plugin.name!r} could not start: {error}",
            data={"error": str(error), "error_type": type(error).__name__},
        )
        return error

    async def _start_engine(
        self, stack: AsyncExitStack, supervisor: Supervisor, plugin: Plugin, bus: EventBus
    ) -> None:
        s = self.settings
        runner = ActionRunner(plugin, s.actions, self.metrics)
        journal = ActionJournal(s.state_dir / "actions.db", on_error=self._journal_failed)
        left = await journal.open()
        stack.push_async_callback(journal.close)
        reconcile = Reconciler(plugin, bus, s.reconcile.orphans, left)
        link = self.link
        monitoring = self.monitoring = Monitoring(s, plugin, link.client if link else None)
        await monitoring.open()
        stack.push_async_callback(monitoring.finish, s.shutdown.grace_period_s)
        observers = [monitoring.observe, *([link.observe] if link else [])]
        dispatcher = self.dispatcher = Dispatcher(
            self.intake_queue,
            runner,
            journal,
            bus,
            self.metrics,
            s,
            reconcile=reconcile,
            on_observed=partial(_observed, observers),
            amend=monitoring.amend,
        )
        self.metrics.watch(self._queue_depths, dispatcher.by_state)
        stack.push_async_callback(self._drain, supervisor, dispatcher)
        await supervisor.start("dispatcher", dispatcher.run)
        crashed = self.plugin_context.crashed_tasks if self.plugin_context else dict
        health = self.health = HealthReporter(
            plugin, dispatcher, bus, s.health, crashed_tasks=crashed
        )
        beats = [heartbeat.file_beat(s.state_dir / "heartbeat.json")]
        if link is not None:
            beats.append(link.beat)
        stack.push_async_callback(supervisor.stop, ["health reporter", "heartbeat"])
        await supervisor.start("health reporter", health.run)
        await supervisor.start(
            "heartbeat",
            partial(
                heartbeat.run_heartbeat,
                interval_s=s.health.heartbeat_interval_s,
                status=self._health_view,
                beats=beats,
            ),
        )
        stack.push_async_callback(supervisor.stop, list(MONITORING_TASKS))
        await monitoring.start(supervisor.start, dispatcher, bus)
        if link is not None:
            stack.push_async_callback(supervisor.stop, ["intake"])
            await link.start(bus, supervisor.start)
        elif s.intake.desired_state_file is not None:
            intake = FileIntake(
                s.intake.desired_state_file, s.intake.poll_interval_s, self.intake_queue, bus
            )
            stack.push_async_callback(supervisor.stop, ["intake"])
            await supervisor.start("intake", intake.run)

    # --- shutdown steps --------------------------------------------------------

    async def _drain(self, supervisor: Supervisor, dispatcher: Dispatcher) -> None:
        await supervisor.stop(["dispatcher"])
        await dispatcher.shutdown(self.settings.shutdown.grace_period_s)

    async def _stop_plugin(self, plugin: Plugin, bus: EventBus) -> None:
        try:
            await plugin.stop()
        except Exception as exc:
            log.exception("plugin %r failed to stop", plugin.name)
            bus.report(
                "agent.plugin_stop_failed",
                Status.FAILING,
                f"plugin {plugin.name!r} failed to stop cleanly: {exc}",
                data={"error": str(exc), "error_type": type(exc).__name__},
            )

    async def _close_events(self, bus: EventBus, supervisor: Supervisor) -> None:
        bus.report("agent.stopped", Status.INFORMATIONAL, "agent stopped")
        await supervisor.stop_all()
        try:
            await bus.flush()
        except Exception as exc:
            # A sink that keeps failing must not hide why the agent stopped.
            log.error("not every event could be written at shutdown: %s", exc)
        try:
            if self.link is not None:
                await self.link.finish(self.settings.shutdown.grace_period_s)
        finally:
            await bus.close()

    # --- callbacks -------------------------------------------------------------

    def _task_failed(self, failure: TaskFailure) -> None:
        assert self.bus is not None
        err = failure.error
        if failure.restart_in_s is None:
            self.bus.report(
                "agent.crash_loop",
                Status.FAILING,
                f"task {failure.task!r} failed {failure.failures_in_window} times in a row; "
                f"the agent gives up: {type(err).__name__}: {err}",
                data=_failure_data(failure),
            )
            return
        self.metrics.task_restarts.labels(failure.task).inc()
        self.bus.report(
            "agent.task_failed",
            Status.FAILING,
            f"task {failure.task!r} failed ({type(err).__name__}: {err}); "
            f"restarting in {failure.restart_in_s:.1f}s",
            data=_failure_data(failure),
        )

    def _journal_failed(self, error: JournalError) -> None:
        assert self.bus is not None
        self.bus.report(
            "agent.journal_failed",
            Status.AT_RISK,
            f"actions could not be recorded; a crash now makes them redone: {error}",
            data={"error": str(error)},
        )

    def _plugin_report(self, report: DeploymentReport) -> None:
        """``ctx.report``: to the deployment's worker, once the workers exist."""
        if self.dispatcher is None:
            log.debug("report of %s before reconcile ignored", report.deployment_id)
            return
        self.dispatcher.report(report)

    def _count_event(self, event: Event) -> None:
        self.metrics.count_event(event.status.value)

    def _queue_depths(self) -> dict[str, int]:
        depths = self.dispatcher.queue_depths() if self.dispatcher else {}
        return {**depths, "events": self.bus.depth if self.bus else 0}

    def _health_view(self) -> dict[str, Any]:
        return {
            "prediction_environment_id": self.settings.prediction_environment,
            "ready": self._ready.is_set(),
            "tasks": self.supervisor.alive() if self.supervisor else {},
            "deployments": self.dispatcher.by_state() if self.dispatcher else {},
            "environment_status": (
                self.health.environment_status.value if self.health else Status.UNKNOWN.value
            ),
        }


def _observed(
    observers: Sequence[Callable[[DeploymentRecord], None]], rec: DeploymentRecord
) -> None:
    for observe in observers:
        observe(rec)


def _failure_data(failure: TaskFailure) -> dict[str, Any]:
    return {
        "task": failure.task,
        "error": str(failure.error),
        "error_type": type(failure.error).__name__,
        "failures_in_window": failure.failures_in_window,
        "restart_in_s": failure.restart_in_s,
    }
