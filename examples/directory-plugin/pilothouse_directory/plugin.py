"""The ``directory`` plugin: each deployment is a JSON file another system serves from.

Launching (or replacing) a deployment writes ``<directory>/<id>.json``
atomically; stopping removes it; its status is whether the file is there and
what it names. With a hub, every model package is fetched first (the agent
verifies its sha256 and caches it) and the sha256 goes into the file, so the
consumer can verify what it downloads; a package the hub refuses fails the
launch for good, a hub that does not answer fails it for now.

The pieces of the plugin contract it shows, each in one place:

- typed settings: :class:`DirectorySettings` as ``settings_model``, validated by
  ``ctx.typed_settings`` (a wrong value names ``plugin_settings.<field>``);
- typed errors: :func:`_io` translates ``OSError`` (permanent when retrying
  cannot help: permissions, a read-only disk, a path that is not a directory),
  the fleet kit's ``PackageSource`` translates hub failures;
- a background task the agent supervises (``ctx.start_task``) that
  pushes a finding through ``ctx.report`` when a file vanishes.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field

from pilothouse.agent import (
    ActionResult,
    DeploymentReport,
    DeploymentState,
    DesiredDeployment,
    EnvironmentReport,
    PermanentPluginError,
    Plugin,
    PluginContext,
    Status,
    TemporaryPluginError,
)
from pilothouse.plugins.fleet.packages import PackageSource

T = TypeVar("T")

_PERMANENT = {
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.ENAMETOOLONG,
}


class DirectorySettings(BaseModel):
    """``plugin_settings`` of the ``directory`` plugin."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    directory: Path
    """Where deployments are published (created if missing)."""
    watch_interval_s: float = Field(default=1.0, gt=0)
    """How often published files are checked for removal behind the agent's back."""


class DirectoryPlugin(Plugin):
    """Publishes deployments as files for another system to serve."""

    name = "directory"
    settings_model = DirectorySettings

    async def start(self, ctx: PluginContext) -> None:
        """Validate settings, create the directory, watch what is published."""
        await super().start(ctx)
        self.settings = ctx.typed_settings(DirectorySettings)
        self._packages = PackageSource({}, ctx.fetch_package)
        await _io("create the directory", self.settings.directory.mkdir, parents=True,
                  exist_ok=True)  # fmt: skip
        self._published = {r.deployment_id for r in await self.list_deployments()}
        await ctx.start_task("watch published files", self._watch)

    async def launch(self, spec: DesiredDeployment) -> ActionResult:
        """Publish ``spec`` (again: publishing the same content twice is harmless)."""
        document = {
            "deployment_id": spec.id,
            "generation": spec.generation,
            "model_package_id": spec.model_package_id,
            "challenger_ids": list(spec.challenger_ids),
            "sha256": {p: await self._sha256(p) for p in (spec.model_package_id,
                                                          *spec.challenger_ids)},
        }  # fmt: skip
        await _io(f"publish {spec.id}", _write_atomically, self._file(spec.id), document)
        self._published.add(spec.id)
        return ActionResult(
            state=DeploymentState.READY,
            message=f"published {spec.model_package_id} to {self._file(spec.id)}",
            model_package_id=spec.model_package_id,
        )

    async def replace_model(self, spec: DesiredDeployment) -> ActionResult:
        """Publish the new model over the old one (one atomic rename)."""
        return await self.launch(spec)

    async def stop_deployment(self, deployment_id: str) -> ActionResult:
        """Remove the deployment's file; nothing to do if it is gone."""
        self._published.discard(deployment_id)
        await _io(f"remove {deployment_id}", self._file(deployment_id).unlink, missing_ok=True)
        return ActionResult(state=DeploymentState.STOPPED, status=Status.UNKNOWN, message="removed")

    async def deployment_status(self, deployment_id: str) -> DeploymentReport:
        """Published (ready) or not (stopped), from the file itself."""
        path = self._file(deployment_id)
        document = await _io(f"read {deployment_id}", _read, path)
        if document is None:
            return DeploymentReport(deployment_id, DeploymentState.STOPPED, Status.UNKNOWN)
        if "model_package_id" not in document:  # overwritten by someone else
            message = f"{path} is not a published deployment"
            return DeploymentReport(deployment_id, DeploymentState.ERRORED, Status.FAILING, message)
        return DeploymentReport(
            deployment_id, DeploymentState.READY, Status.PASSING, "published",
            model_package_id=document["model_package_id"],
            challenger_ids=tuple(document.get("challenger_ids", ())),
        )  # fmt: skip

    async def list_deployments(self) -> list[DeploymentReport]:
        """Every published deployment (for reconcile after an agent restart)."""
        files = await _io("list the directory", sorted, self.settings.directory.glob("*.json"))
        return [await self.deployment_status(path.stem) for path in files]

    async def environment_status(self) -> EnvironmentReport:
        """Failing when the directory cannot be written."""
        writable = await asyncio.to_thread(os.access, self.settings.directory, os.W_OK)
        if not writable:
            return EnvironmentReport(Status.FAILING, f"{self.settings.directory} is not writable")
        return EnvironmentReport(Status.PASSING, f"{len(self._published)} deployments published")

    async def _sha256(self, model_package_id: str) -> str | None:
        if self.ctx.fetch_package is None:
            return None  # standalone: no hub to verify against
        return (await self._packages.resolve(model_package_id)).sha256

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.watch_interval_s)
            for deployment_id in sorted(self._published):
                if not await asyncio.to_thread(self._file(deployment_id).exists):
                    self._published.discard(deployment_id)
                    self._report_gone(deployment_id)

    def _report_gone(self, deployment_id: str) -> None:
        self.ctx.report(DeploymentReport(
            deployment_id, DeploymentState.STOPPED, Status.FAILING,
            f"{self._file(deployment_id)} was removed behind the agent's back",
        ))  # fmt: skip

    def _file(self, deployment_id: str) -> Path:
        return self.settings.directory / f"{deployment_id}.json"


async def _io(what: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking file operation in a thread; translate its ``OSError`` once, here."""
    try:
        return await asyncio.to_thread(call, *args, **kwargs)
    except OSError as exc:
        message = f"cannot {what}: {exc.strerror or exc}"
        if exc.errno in _PERMANENT:
            raise PermanentPluginError(message) from exc
        raise TemporaryPluginError(message) from exc


def _write_atomically(path: Path, document: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return document if isinstance(document, dict) else {}
