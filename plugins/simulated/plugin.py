"""A simulated infrastructure, in memory, with injectable delays and failures.

Everything random is drawn from one seeded generator, so a test that fixes the
seed (and the order of calls) sees the same failures every run. Failures come
in the kinds a real plugin shows: temporary (retried), permanent, hangs (the
action runner's timeout ends them) and crashes (an unexpected exception, which
the agent must report as a plugin bug). ``fail_models`` and
``rollback_models`` make particular model packages fail to launch, or fail a
replacement while the old model keeps serving.

With ``state_file`` the simulated deployments survive a restart of the agent,
so reconcile can be seen at work; the file is written at most every
``persist_interval_s`` by a supervised background task, or, with
``write_through``, at every change before the action returns, so that what
"runs" survives even a SIGKILL of the agent (as real infrastructure would).

Tests drive findings between health rounds with :meth:`SimulatedPlugin.crash`,
:meth:`SimulatedPlugin.recover` and :meth:`SimulatedPlugin.kill`, which report
through ``ctx.report`` as a real plugin's crash watcher would.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote

import orjson
from pydantic import BaseModel, ConfigDict, Field

from pilothouse.agent.errors import (
    PermanentPluginError,
    PluginNotReadyError,
    TemporaryPluginError,
)
from pilothouse.agent.plugin import (
    ActionResult,
    DeploymentReport,
    EnvironmentReport,
    Plugin,
    PluginContext,
)
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.vocabulary import DeploymentState, Status


class Delays(BaseModel):
    """Seconds each call takes, plus up to ``jitter_s`` more at random."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    launch_s: float = Field(default=0.0, ge=0)
    replace_model_s: float = Field(default=0.0, ge=0)
    stop_s: float = Field(default=0.0, ge=0)
    status_s: float = Field(default=0.0, ge=0)
    jitter_s: float = Field(default=0.0, ge=0)


class SimulatedPluginSettings(BaseModel):
    """Settings of the ``test`` plugin (``plugin_settings`` in the agent's config)."""

    __test__ = False  # not a pytest test class, despite the name
    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    """Seed of every random choice."""
    delays: Delays = Field(default_factory=Delays)
    temporary_failure_rate: float = Field(default=0.0, ge=0, le=1)
    """Probability that an action raises a retryable error."""
    permanent_failure_rate: float = Field(default=0.0, ge=0, le=1)
    """Probability that an action raises a permanent error."""
    hang_rate: float = Field(default=0.0, ge=0, le=1)
    """Probability that an action never returns."""
    crash_rate: float = Field(default=0.0, ge=0, le=1)
    """Probability that an action raises an unexpected exception (a plugin bug)."""
    fail_models: frozenset[str] = frozenset()
    """Model packages whose launch or replacement always fails permanently."""
    unavailable_models: frozenset[str] = frozenset()
    """Model packages whose launch or replacement always fails temporarily (a registry
    that does not answer)."""
    rollback_models: frozenset[str] = frozenset()
    """Model packages whose replacement fails with the old model still serving."""
    not_ready_starts: int = Field(default=0, ge=0)
    """The first N starts of the plugin report 'not ready'."""
    state_file: Path | None = None
    """Keep the simulated deployments in this file across restarts."""
    persist_interval_s: float = Field(default=0.5, gt=0)
    """How often the state file is written (unless ``write_through``)."""
    write_through: bool = False
    """Write the state file at every change, before the action returns."""


@dataclass(frozen=True, slots=True)
class Call:
    """One action the plugin received, for tests to inspect."""

    action: str
    deployment_id: str
    generation: int
    model_package_id: str | None
    at: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class _Simulated:
    model_package_id: str
    challenger_ids: tuple[str, ...]
    generation: int
    state: DeploymentState = DeploymentState.READY
    status: Status = Status.PASSING


class SimulatedPlugin(Plugin):
    """A plugin whose infrastructure is a dictionary."""

    __test__ = False  # not a pytest test class, despite the name
    name = "test"
    settings_model = SimulatedPluginSettings

    def __init__(self, settings: SimulatedPluginSettings | None = None) -> None:
        self._given = settings
        self.settings = settings or SimulatedPluginSettings()
        self.deployments: dict[str, _Simulated] = {}
        self.calls: list[Call] = []
        self.starts = 0
        self.environment = Status.PASSING
        self._rng = random.Random(self.settings.seed)
        self._dirty = False
        self._writing = asyncio.Lock()

    async def start(self, ctx: PluginContext) -> None:
        """Read settings (unless given to the constructor) and the state file."""
        await super().start(ctx)
        if self._given is None:
            self.settings = ctx.typed_settings(SimulatedPluginSettings)
            self._rng = random.Random(self.settings.seed)
        self.starts += 1
        if self.starts <= self.settings.not_ready_starts:
            raise PluginNotReadyError(f"simulated infrastructure not ready (start {self.starts})")
        if self.settings.state_file is not None:
            await asyncio.to_thread(self._load)
            if not self.settings.write_through:
                await ctx.start_task("persist simulated state", self._persist_loop)

    async def stop(self) -> None:
        """Write the state file one last time."""
        if self.settings.state_file is not None and self._dirty:
            await self._save()

    # --- actions -------------------------------------------------------------

    async def launch(self, spec: DesiredDeployment) -> ActionResult:
        """Start simulating ``spec``."""
        await self._act(
            "launch", spec.id, spec.generation, spec.model_package_id, self.settings.delays.launch_s
        )
        self._bad_model(spec)
        await self._set(spec)
        return self._result(spec, "launched")

    async def replace_model(self, spec: DesiredDeployment) -> ActionResult:
        """Swap the simulated model, or roll back for a ``rollback_models`` package."""
        await self._act(
            "replace_model",
            spec.id,
            spec.generation,
            spec.model_package_id,
            self.settings.delays.replace_model_s,
        )
        current = self.deployments.get(spec.id)
        if current is None:
            raise PermanentPluginError(f"{spec.id} is not running", deployment_id=spec.id)
        if spec.model_package_id in self.settings.rollback_models:
            return ActionResult(
                state=DeploymentState.READY,
                status=Status.PASSING,
                message=f"{spec.model_package_id} failed its probe; "
                f"{current.model_package_id} is still serving",
                model_package_id=current.model_package_id,
                old_model_in_use=True,
            )
        self._bad_model(spec)
        await self._set(spec)
        return self._result(spec, "model replaced")

    async def stop_deployment(self, deployment_id: str) -> ActionResult:
        """Forget the simulated deployment."""
        current = self.deployments.get(deployment_id)
        await self._act(
            "stop",
            deployment_id,
            current.generation if current else -1,
            current.model_package_id if current else None,
            self.settings.delays.stop_s,
        )
        if self.deployments.pop(deployment_id, None) is not None:
            await self._changed()
        return ActionResult(state=DeploymentState.STOPPED, status=Status.UNKNOWN, message="stopped")

    # --- observation ---------------------------------------------------------

    async def deployment_status(self, deployment_id: str) -> DeploymentReport:
        """Report a simulated deployment."""
        if self.settings.delays.status_s:
            await asyncio.sleep(self.settings.delays.status_s)
        sim = self.deployments.get(deployment_id)
        if sim is None:
            return DeploymentReport(deployment_id, DeploymentState.STOPPED, Status.UNKNOWN)
        return self._report(deployment_id, sim)

    async def list_deployments(self) -> list[DeploymentReport]:
        """Report every simulated deployment."""
        return [self._report(dep_id, sim) for dep_id, sim in self.deployments.items()]

    async def environment_status(self) -> EnvironmentReport:
        """Report the simulated environment."""
        return EnvironmentReport(self.environment, f"{len(self.deployments)} deployments simulated")

    # --- test helpers -----------------------------------------------------------

    def kill(self, deployment_id: str, *, report: bool = False) -> None:
        """Make a deployment vanish, as if its infrastructure died; ``report``: say so at once."""
        self.deployments.pop(deployment_id, None)
        self._dirty = True
        if report:
            self.ctx.report(
                DeploymentReport(
                    deployment_id, DeploymentState.STOPPED, Status.UNKNOWN, "it vanished"
                )
            )

    def degrade(self, deployment_id: str, status: Status) -> None:
        """Change a running deployment's health, silently (the next health round finds it)."""
        self.deployments[deployment_id].status = status

    def crash(self, deployment_id: str, cause: str = "its server crashed") -> None:
        """Fail a running deployment's runtime and report it at once, as a crash watcher would."""
        self._tell(deployment_id, Status.FAILING, cause)

    def recover(self, deployment_id: str, message: str = "its server was restarted") -> None:
        """Bring a crashed deployment's runtime back and report it at once."""
        self._tell(deployment_id, Status.PASSING, message)

    def _tell(self, deployment_id: str, status: Status, message: str) -> None:
        sim = self.deployments[deployment_id]
        sim.status = status
        self.ctx.report(replace(self._report(deployment_id, sim), message=message))

    def running(self) -> dict[str, str]:
        """Deployment id to model package id, for everything simulated."""
        return {dep_id: sim.model_package_id for dep_id, sim in self.deployments.items()}

    # --- internals ------------------------------------------------------------

    async def _act(
        self, action: str, dep_id: str, generation: int, model: str | None, delay: float
    ) -> None:
        self.calls.append(Call(action, dep_id, generation, model))
        jitter = self.settings.delays.jitter_s
        total = delay + (self._rng.uniform(0, jitter) if jitter else 0.0)
        if total:
            await asyncio.sleep(total)
        self._maybe_fail(action, dep_id)
        if self._roll(self.settings.hang_rate):
            await asyncio.Event().wait()  # hang until cancelled (the runner's timeout)

    def _maybe_fail(self, action: str, dep_id: str) -> None:
        s = self.settings
        if self._roll(s.temporary_failure_rate):
            raise TemporaryPluginError(
                f"simulated temporary failure of {action}", deployment_id=dep_id
            )
        if self._roll(s.permanent_failure_rate):
            raise PermanentPluginError(
                f"simulated permanent failure of {action}", deployment_id=dep_id
            )
        if self._roll(s.crash_rate):
            raise RuntimeError(f"simulated crash in {action}")

    def _roll(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def _bad_model(self, spec: DesiredDeployment) -> None:
        if spec.model_package_id in self.settings.fail_models:
            raise PermanentPluginError(
                f"model package {spec.model_package_id} fails to load", deployment_id=spec.id
            )
        if spec.model_package_id in self.settings.unavailable_models:
            raise TemporaryPluginError(
                f"model package {spec.model_package_id} cannot be fetched now",
                deployment_id=spec.id,
            )

    async def _set(self, spec: DesiredDeployment) -> None:
        self.deployments[spec.id] = _Simulated(
            spec.model_package_id, spec.challenger_ids, spec.generation
        )
        await self._changed()

    async def _changed(self) -> None:
        self._dirty = True
        if self.settings.write_through and self.settings.state_file is not None:
            await self._save()

    def _result(self, spec: DesiredDeployment, message: str) -> ActionResult:
        return ActionResult(
            state=DeploymentState.READY,
            status=Status.PASSING,
            message=f"{message} ({spec.model_package_id})",
            model_package_id=spec.model_package_id,
            prediction_url=_url(self.ctx.prediction_environment_id, spec.id),
        )

    def _report(self, dep_id: str, sim: _Simulated) -> DeploymentReport:
        return DeploymentReport(
            dep_id,
            sim.state,
            sim.status,
            model_package_id=sim.model_package_id,
            challenger_ids=sim.challenger_ids,
            prediction_url=_url(self.ctx.prediction_environment_id, dep_id),
            generation=sim.generation,
        )

    async def _persist_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.persist_interval_s)
            if self._dirty:
                await self._save()

    async def _save(self) -> None:
        """Write the state file, one write at a time.

        Serialized on the loop (where the dict changes), written in a thread.
        """
        path = self.settings.state_file
        assert path is not None
        async with self._writing:
            self._dirty = False
            data = orjson.dumps(
                {
                    k: [v.model_package_id, list(v.challenger_ids), v.generation]
                    for k, v in self.deployments.items()
                }
            )
            await asyncio.to_thread(_write_atomically, path, data)

    def _load(self) -> None:
        path = self.settings.state_file
        if path is None or not path.exists():
            return
        data = orjson.loads(path.read_bytes())
        self.deployments = {k: _Simulated(v[0], tuple(v[1]), v[2]) for k, v in data.items()}


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _url(pe: str, dep_id: str) -> str:
    # http on a reserved name (RFC 2606): the hub takes only http(s) prediction URLs
    return f"http://test.invalid/{quote(pe, safe='')}/deployments/{quote(dep_id, safe='')}/predict"
