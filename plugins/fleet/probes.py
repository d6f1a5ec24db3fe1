"""Health probes: a real prediction on the package's own sample rows.

Status is what users can trust only if it is end to end: a probe sends the
manifest's sample rows (or one row of neutral values of the right types) to
the deployment's public prediction endpoint and counts the answers. The rows
of a package are learnt from its manifest when the package is placed — and,
for a deployment this agent did not place (one it adopted after a restart),
on first need, from the same :class:`~pilothouse.plugins.fleet.packages.PackageSource`.
A probe therefore never sends rows without the model's features.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pilothouse.agent.errors import PluginError
from pilothouse.foundation.domain.vocabulary import Status
from pilothouse.modelpkg.manifest import FeatureType, Manifest
from pilothouse.modelpkg.packing import inspect_path
from pilothouse.plugins.fleet.admin import ServerAPI
from pilothouse.plugins.fleet.packages import PackageRef, PackageSource

_SYNTHETIC: dict[FeatureType, Any] = {
    FeatureType.FLOAT: 0.0,
    FeatureType.INTEGER: 0,
    FeatureType.BOOLEAN: False,
    FeatureType.STRING: "",
}


class ProbeRows:
    """Probe rows per model package, learnt from each package's manifest."""

    def __init__(self, packages: PackageSource, max_rows: int = 3) -> None:
        self._packages = packages
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._max = max_rows

    async def learn(self, package: PackageRef) -> None:
        """Read the rows of a package about to be placed (its manifest, in a thread)."""
        if package.model_package_id not in self._rows:
            rows = await asyncio.to_thread(_read_rows, package.path, self._max)
            self._rows[package.model_package_id] = rows

    async def rows(self, model_package_id: str) -> list[dict[str, Any]]:
        """The probe rows of a package, finding the package first if they are not known yet."""
        if model_package_id not in self._rows:
            await self.learn(await self._packages.resolve(model_package_id))
        return self._rows[model_package_id]


async def probe(
    api: ServerAPI, deployment_id: str, rows: list[dict[str, Any]]
) -> tuple[Status, str]:
    """Predict ``rows`` through the deployment's public endpoint: passing if each got an answer."""
    try:
        answer = await api.predict(deployment_id, rows)
    except PluginError as exc:
        return Status.FAILING, f"probe failed: {exc}"
    n = len(answer.get("predictions", []))
    status = Status.PASSING if n == len(rows) else Status.FAILING
    return status, f"probe predicted {n} of {len(rows)} rows"


def rows_for(manifest: Manifest, max_rows: int) -> list[dict[str, Any]]:
    """The manifest's sample rows, or one row of neutral values of the right types."""
    if manifest.samples:
        return [dict(r) for r in manifest.samples[:max_rows]]
    return [{f.name: _SYNTHETIC[f.type] for f in manifest.features}]


def _read_rows(source: Path, max_rows: int) -> list[dict[str, Any]]:
    return rows_for(inspect_path(source).manifest, max_rows)
