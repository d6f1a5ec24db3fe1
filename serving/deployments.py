"""Which models serve which deployment, and changing that without dropping a request.

A :class:`Deployment` is an immutable record — champion, challengers, and the
deployment's request statistics — held in a dict by the
:class:`DeploymentRegistry`. A request looks its deployment up once and keeps
that record (and so that model) until it is answered. A change never mutates a
record; it builds the new models *beside* the old ones, in a loader thread:

1. unpack the archive (verified, under ``state_dir/packages/<sha256>``) or read
   the directory; load the model; warm it up on the sample rows (measuring its
   cost, see :mod:`pilothouse.serving.served`) — within ``load_timeout_s``, after which the
   load is abandoned and counts as failed (see :mod:`pilothouse.serving.loaders`);
2. only when every model of the change is ready, put the new record in the
   dict — one assignment on the event loop, which is atomic for every request;
3. retire the replaced models: each is closed when its last in-flight request
   finishes.

If anything fails in step 1, the dict is untouched: the old model keeps
serving and the caller gets a :class:`~pilothouse.serving.errors.DeploymentChangeError`
with ``old_model_in_use``. Changes to one deployment are serialized by a lock;
different deployments load in parallel (``load_threads``). The list of
deployments is written to ``state_dir/deployments.json`` after each change, and
reloaded at start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pilothouse.foundation.validation import explain
from pilothouse.modelpkg import (
    ChecksumMismatchError,
    PackageError,
    load_model,
    read_directory,
    sha256_of,
    unpack_archive,
)
from pilothouse.serving import served
from pilothouse.serving.errors import (
    BadRequestError,
    DeploymentChangeError,
    LoadTimeoutError,
    NotFoundError,
    NotReadyError,
)
from pilothouse.serving.loaders import Loader
from pilothouse.serving.monitoring import FeatureMonitor, RequestStats
from pilothouse.serving.served import ServedModel
from pilothouse.serving.settings import ServerSettings
from pilothouse.serving.statistics import DeploymentStatistics

log = logging.getLogger(__name__)

DEPLOYMENT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


class PackageRef(BaseModel):
    """Where a model package is: a directory, or an archive (optionally with its sha256)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_package_id: str | None = Field(default=None, pattern=DEPLOYMENT_ID)
    package_dir: Path | None = None
    archive: Path | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")

    @model_validator(mode="after")
    def _one_source(self) -> PackageRef:
        if (self.package_dir is None) == (self.archive is None):
            raise ValueError("give exactly one of package_dir or archive")
        if self.sha256 and self.archive is None:
            raise ValueError("sha256 applies to an archive")
        return self

    @property
    def source(self) -> str:
        """The path as given."""
        return str(self.package_dir or self.archive)


class DeploymentRequest(PackageRef):
    """Body of ``PUT /admin/deployments/{id}``: the champion, and optional challengers."""

    challengers: list[PackageRef] = Field(default_factory=list, max_length=16)
    mirror_percent: float = Field(default=100.0, ge=0, le=100)
    """Share of the champion's requests replayed on the challengers (after its answer)."""

    @classmethod
    def parse(cls, doc: Any) -> DeploymentRequest:
        """Validate a request body, or raise :class:`BadRequestError` naming each problem."""
        try:
            return cls.model_validate(doc)
        except ValidationError as exc:
            raise BadRequestError("; ".join(explain(exc))) from None


@dataclass(frozen=True, slots=True)
class Deployment:
    """What serves one deployment right now."""

    id: str
    champion: ServedModel
    challengers: tuple[ServedModel, ...]
    stats: RequestStats
    generation: int
    request: DeploymentRequest
    statistics: DeploymentStatistics
    """Counters per loaded model across replacements, associations, the mirror share."""

    def version(self, package_id: str) -> ServedModel:
        """The champion or a challenger by model package id."""
        for model in (self.champion, *self.challengers):
            if model.package_id == package_id:
                return model
        raise NotFoundError(
            f"deployment {self.id!r} has no version {package_id!r}; versions: "
            f"{', '.join(m.package_id for m in (self.champion, *self.challengers))}"
        )

    def describe(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "id": self.id,
            "state": "ready",
            "generation": self.generation,
            "model_package_id": self.champion.package_id,
            "champion": self.champion.describe(),
            "challengers": [c.describe() for c in self.challengers],
        }


@dataclass(frozen=True, slots=True)
class Change:
    """What a PUT did."""

    deployment: Deployment
    replaced: str | None
    """The previous champion's package id, if there was one."""


class DeploymentRegistry:
    """The service layer of the admin API, and the lookup of every prediction request."""

    def __init__(self, settings: ServerSettings, executor: ThreadPoolExecutor) -> None:
        self._settings = settings
        self._executor = executor
        self._deployments: dict[str, Deployment] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._loader = Loader[ServedModel](settings.load_threads, abandon=retire)
        self._pending: set[str] = set()
        self._loading = 0
        self._save_lock = asyncio.Lock()
        self._fs_lock = threading.Lock()
        self._state_file = settings.state_dir / "deployments.json"
        self._packages = settings.state_dir / "packages"
        self.ready = asyncio.Event()
        self.on_load: Callable[[str, bool], None] = lambda role, ok: None
        """Called with (``"load"``/``"replace"``, success) after each change (metrics)."""

    # -- lookups (hot path) ---------------------------------------------------------------

    def get(self, deployment_id: str) -> Deployment:
        """The current record, or 404 (503 while it is still loading at start)."""
        try:
            return self._deployments[deployment_id]
        except KeyError:
            if deployment_id in self._pending:
                raise NotReadyError(f"deployment {deployment_id!r} is still loading") from None
            raise NotFoundError(f"no deployment {deployment_id!r}") from None

    def all(self) -> list[Deployment]:
        """Every deployment, by id."""
        return [self._deployments[k] for k in sorted(self._deployments)]

    # -- changes --------------------------------------------------------------------------

    async def put(self, deployment_id: str, request: DeploymentRequest) -> Change:
        """Load (or replace) a deployment's models; on failure nothing changes."""
        async with self._lock(deployment_id):
            old = self._deployments.get(deployment_id)
            action = "replace" if old else "load"
            try:
                reused = {m.package_id: m for m in (old.champion, *old.challengers)} if old else {}
                champion = await self._obtain(request, reused, deployment_id)
                challengers = [
                    await self._obtain(c, reused, deployment_id) for c in request.challengers
                ]
            except (PackageError, LoadTimeoutError) as exc:
                self.on_load(action, False)
                raise self._failed(deployment_id, old, exc) from None
            statistics = old.statistics if old else DeploymentStatistics()
            statistics.mirror.percent = request.mirror_percent
            statistics.serving((champion, *challengers))
            new = Deployment(
                id=deployment_id,
                champion=champion,
                challengers=tuple(challengers),
                stats=old.stats if old else RequestStats(),
                generation=(old.generation + 1) if old else 1,
                request=request,
                statistics=statistics,
            )
            self._deployments[deployment_id] = new  # the swap: atomic for every request
            self.on_load(action, True)
            if old:
                keep = {id(m) for m in (champion, *challengers)}
                for model in (old.champion, *old.challengers):
                    if id(model) not in keep:
                        retire(model)
            log.info(
                "deployment %s serves %s%s",
                deployment_id,
                champion.package_id,
                f" (was {old.champion.package_id})" if old else "",
                extra={"deployment_id": deployment_id},
            )
            await self._save()
            return Change(new, old.champion.package_id if old else None)

    async def delete(self, deployment_id: str) -> Deployment:
        """Unload a deployment; in-flight requests finish on its models."""
        async with self._lock(deployment_id):
            old = self._deployments.pop(deployment_id, None)
            if old is None:
                raise NotFoundError(f"no deployment {deployment_id!r}")
            for model in (old.champion, *old.challengers):
                retire(model)
            log.info(
                "deployment %s unloaded", deployment_id, extra={"deployment_id": deployment_id}
            )
            await self._save()
            return old

    async def restore(self) -> None:
        """Load what the state file and the settings list; then the server is ready."""
        try:
            wanted = await self._run(self._read_state) if self._settings.restore else {}
            for dep_id, path in self._settings.deployments.items():
                key = "archive" if path.is_file() else "package_dir"
                wanted[dep_id] = DeploymentRequest.model_validate({key: path})
            self._pending.update(wanted)
            await asyncio.gather(*(self._restore_one(k, r) for k, r in wanted.items()))
        finally:
            self._pending.clear()
            self.ready.set()

    async def close(self) -> None:
        """Release every model (at shutdown, after the last request)."""
        for deployment in self._deployments.values():
            for model in (deployment.champion, *deployment.challengers):
                retire(model)
        self._deployments.clear()

    # -- internals ------------------------------------------------------------------------

    def _lock(self, deployment_id: str) -> asyncio.Lock:
        return self._locks.setdefault(deployment_id, asyncio.Lock())

    async def _restore_one(self, deployment_id: str, request: DeploymentRequest) -> None:
        try:
            await self.put(deployment_id, request)
        except DeploymentChangeError as exc:
            log.error(
                "could not load deployment %s: %s",
                deployment_id,
                exc,
                extra={"deployment_id": deployment_id},
            )
        finally:
            self._pending.discard(deployment_id)

    async def _obtain(
        self, ref: PackageRef, reused: dict[str, ServedModel], deployment_id: str
    ) -> ServedModel:
        current = reused.get(ref.model_package_id or "")
        if (
            current is not None
            and current.source == ref.source
            and (ref.sha256 in (None, current.sha256))
        ):
            return current
        # Its unpacked directory must survive a concurrent save's cleanup until the
        # thread ends, even when that is after the load was abandoned.
        self._loading += 1
        job = self._loader.run(
            partial(self._load_blocking, ref, deployment_id),
            name=f"model-load {deployment_id}",
            deadline_s=self._settings.load_timeout_s,
            what=f"loading {ref.source}",
            on_end=self._load_ended,
        )
        return await job

    def _load_ended(self) -> None:
        self._loading -= 1

    def _load_blocking(self, ref: PackageRef, deployment_id: str) -> ServedModel:
        """Unpack, load and warm up one package (in a loader thread)."""
        began = time.perf_counter()
        sha256: str | None = None
        if ref.archive is not None:
            limits = self._settings.limits
            sha256 = sha256_of(ref.archive, limits)
            if ref.sha256 and ref.sha256.lower() != sha256:
                raise ChecksumMismatchError(ref.sha256.lower(), sha256)
            package_dir = self._packages / sha256
            with self._fs_lock:
                if not package_dir.is_dir():  # content-addressed: unpacked once
                    unpack_archive(ref.archive, package_dir, limits, expected_sha256=sha256)
        else:
            assert ref.package_dir is not None
            package_dir = ref.package_dir
        manifest = read_directory(package_dir)
        model = load_model(package_dir, manifest)
        loaded = time.perf_counter()
        try:
            cost = served.warm_up(model)
        except PackageError:
            model.close()
            raise
        package_id = ref.model_package_id or f"{manifest.name}-{manifest.version}"
        return ServedModel(
            package_id=package_id,
            model=model,
            source=ref.source,
            sha256=sha256,
            monitor=FeatureMonitor(manifest, flush_rows=self._settings.monitor_flush_rows),
            cost=cost,
            inline_budget_s=self._settings.inline_budget_ms / 1000,
            load_seconds=loaded - began,
            warmup_seconds=time.perf_counter() - loaded,
        )

    def _failed(
        self, deployment_id: str, old: Deployment | None, exc: PackageError | LoadTimeoutError
    ) -> DeploymentChangeError:
        if old is not None:
            message = (
                f"replacing the model of deployment {deployment_id!r} failed, the old model "
                f"{old.champion.package_id!r} is still serving: {exc}"
            )
        else:
            message = f"loading deployment {deployment_id!r} failed: {exc}"
        log.warning("%s", message, extra={"deployment_id": deployment_id})
        return DeploymentChangeError(
            message,
            deployment_id=deployment_id,
            error_type=type(exc).__name__,
            old_model_in_use=old is not None,
            model_package_id=old.champion.package_id if old else None,
        )

    async def _save(self) -> None:
        # One save at a time, each writing the state as it is when it runs: the
        # last write is always the newest list.
        async with self._save_lock:
            doc = {
                k: d.request.model_dump(mode="json", exclude_none=True)
                for k, d in self._deployments.items()
            }
            referenced = {
                m.sha256
                for d in self._deployments.values()
                for m in (d.champion, *d.challengers)
                if m.sha256
            }
            await self._run(self._write_state, doc, referenced)

    def _write_state(self, doc: dict[str, Any], referenced: set[str]) -> None:
        self._state_file.parent.mkdir(parents=True, exist_ok=True)
        partial = self._state_file.with_suffix(".json.partial")
        partial.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        os.replace(partial, self._state_file)
        with self._fs_lock:  # unpacking takes it too: a load never loses its fresh directory
            if self._loading == 0:
                self._collect(referenced)

    def _collect(self, referenced: set[str]) -> None:
        if self._packages.is_dir():
            for entry in self._packages.iterdir():
                if (
                    entry.is_dir()
                    and entry.name not in referenced
                    and not entry.name.startswith(".")
                ):
                    shutil.rmtree(entry, ignore_errors=True)

    def _read_state(self) -> dict[str, DeploymentRequest]:
        try:
            doc = orjson.loads(self._state_file.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, orjson.JSONDecodeError) as exc:
            log.error("ignoring unreadable %s: %s", self._state_file, exc)
            return {}
        wanted: dict[str, DeploymentRequest] = {}
        for dep_id, body in doc.items() if isinstance(doc, dict) else ():
            try:
                wanted[dep_id] = DeploymentRequest.model_validate(body)
            except ValidationError as exc:
                log.error("ignoring deployment %s in %s: %s", dep_id, self._state_file, exc)
        return wanted

    async def _run(self, func: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)


def retire(model: ServedModel) -> None:
    """Close ``model`` now if no request uses it, else when its last one finishes."""
    if model.retired:
        return
    model.retired = True
    if model.in_flight == 0:
        _close(model)


def release(model: ServedModel) -> None:
    """A request is done with ``model``."""
    model.in_flight -= 1
    if model.retired and model.in_flight == 0:
        _close(model)


def _close(model: ServedModel) -> None:
    try:
        model.model.close()
    except Exception:
        log.exception("closing model %s failed", model.package_id)
