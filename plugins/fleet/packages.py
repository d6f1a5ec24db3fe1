"""Where a model package comes from, and how a server is told where it is.

A package is found in one of two places: ``plugin_settings.packages`` (standalone
mode: an id to a package directory or archive on this machine) or the hub,
through the agent's ``ctx.fetch_package`` (downloaded once, sha256 verified,
cached). Either way the result is a :class:`PackageRef` on the agent's disk.
A server that shares the agent's disk (a subprocess) is told that path
(:meth:`PackageRef.local_body`); a runtime whose servers do not (a container,
a pod) first makes the package reachable — ``Runtime.deliver`` — and names
it its own way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pilothouse.agent.errors import (
    HubRejectedError,
    HubUnreachableError,
    PermanentPluginError,
    TemporaryPluginError,
)
from pilothouse.agent.plugin import PackageFetcher


@dataclass(frozen=True, slots=True)
class PackageRef:
    """A model package on the agent's disk: a directory, or an archive."""

    model_package_id: str
    path: Path
    is_dir: bool
    sha256: str | None = None
    """Known for archives from the hub; the server verifies it before use."""

    def local_body(self) -> dict[str, Any]:
        """The admin API's reference to the package, for a server on this machine."""
        body: dict[str, Any] = {
            "model_package_id": self.model_package_id,
            ("package_dir" if self.is_dir else "archive"): str(self.path),
        }
        if self.sha256 is not None:
            body["sha256"] = self.sha256
        return body


class PackageSource:
    """Finds model packages: locally configured ones first, then the hub."""

    def __init__(self, local: Mapping[str, Path], fetch: PackageFetcher | None) -> None:
        self._local = dict(local)
        self._fetch = fetch

    async def resolve(self, model_package_id: str) -> PackageRef:
        """The package on this machine, or a typed error saying whether retrying can help."""
        local = self._local.get(model_package_id)
        if local is not None:
            return await asyncio.to_thread(_local_ref, model_package_id, local)
        if self._fetch is None:
            raise PermanentPluginError(
                f"model package {model_package_id!r} is unknown: not in plugin_settings.packages "
                "and no hub to fetch it from"
            )
        try:
            fetched = await self._fetch(model_package_id)
        except HubRejectedError as exc:  # unknown package, bad checksum: retrying cannot help
            raise PermanentPluginError(f"cannot fetch {model_package_id}: {exc}") from exc
        except HubUnreachableError as exc:
            raise TemporaryPluginError(f"cannot fetch {model_package_id}: {exc}") from exc
        return PackageRef(model_package_id, fetched.archive, False, fetched.sha256)


def _local_ref(model_package_id: str, path: Path) -> PackageRef:
    return PackageRef(model_package_id, path.resolve(), path.is_dir())
