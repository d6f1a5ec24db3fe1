"""How a model package reaches a pod that shares no disk with the agent.

Three ways, by where the package is (all verified by sha256 in the pod, by
the init container, before the server sees the archive):

- **the hub** (``ctx.fetch_package``): the agent fetches it once (so it knows
  the sha256, and a hub that does not answer is a temporary failure here, not a
  crash loop there), and the pod downloads ``{hub_url}/api/v1/model-packages/{id}/archive``
  with the package token of the Secret ``package_token_secret``;
- **a URL** (``plugin_settings.package_urls``): the pod downloads it, checked
  against the configured sha256;
- **the agent's disk** (``plugin_settings.packages``, standalone mode): the
  archive (a directory is packed first, reproducibly) travels in an immutable
  ConfigMap owned by the Deployment — for small packages only, since the API
  server refuses objects over 1 MiB.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path

from pilothouse.agent.errors import PermanentPluginError
from pilothouse.modelpkg import PackageError, build_package
from pilothouse.plugins.fleet import PackageRef, PackageSource
from pilothouse.plugins.kubernetes import names
from pilothouse.plugins.kubernetes.manifests import Delivered
from pilothouse.plugins.kubernetes.settings import KubernetesPluginSettings


@dataclass(frozen=True, slots=True)
class Planned:
    """A package's delivery, and the archive to put in its ConfigMap (if it goes by one)."""

    delivered: Delivered
    archive: bytes | None = None


class Delivery:
    """Plans the delivery of each package of a deployment."""

    def __init__(self, s: KubernetesPluginSettings, source: PackageSource, work_dir: Path) -> None:
        self._s = s
        self._source = source
        self._work_dir = work_dir

    async def plan(self, deployment_id: str, model_package_ids: list[str]) -> list[Planned]:
        """How each package (champion first) reaches the pods of ``deployment_id``."""
        return [await self._one(deployment_id, pid) for pid in model_package_ids]

    async def _one(self, deployment_id: str, model_package_id: str) -> Planned:
        url = self._s.package_urls.get(model_package_id)
        if url is not None:
            return Planned(Delivered(model_package_id, url.sha256.lower(), url=url.url))
        ref = await self._source.resolve(model_package_id)
        if model_package_id in self._s.packages:
            archive, sha256 = await asyncio.to_thread(self._archive, ref)
            if len(archive) > self._s.configmap_max_bytes:
                raise PermanentPluginError(
                    f"model package {model_package_id!r} is {len(archive)} bytes packed, over "
                    f"plugin_settings.configmap_max_bytes ({self._s.configmap_max_bytes}): give "
                    "it a URL in plugin_settings.package_urls, or serve it from the hub",
                    deployment_id=deployment_id,
                )
            name = f"{names.object_name(deployment_id)}-pkg-{sha256[:12]}"
            return Planned(Delivered(model_package_id, sha256, configmap=name), archive)
        if not self._s.hub_url:
            raise PermanentPluginError(
                f"model package {model_package_id!r} comes from the hub, but the pods cannot "
                "download it: set plugin_settings.hub_url (the hub's URL as the pods reach it)",
                deployment_id=deployment_id,
            )
        assert ref.sha256 is not None  # the hub's packages are archives with a known sha256
        hub = self._s.hub_url.rstrip("/")
        return Planned(
            Delivered(
                model_package_id,
                ref.sha256,
                url=f"{hub}/api/v1/model-packages/{model_package_id}/archive",
                needs_token=True,
            )
        )

    def _archive(self, ref: PackageRef) -> tuple[bytes, str]:
        path = ref.path
        if ref.is_dir:
            out = self._work_dir / "packed" / f"{ref.model_package_id}.tar.gz"
            try:
                _, path = build_package(ref.path, out)
            except PackageError as exc:
                raise PermanentPluginError(
                    f"model package {ref.model_package_id!r} at {ref.path} cannot be packed: {exc}"
                ) from exc
        data = path.read_bytes()
        return data, hashlib.sha256(data).hexdigest()
