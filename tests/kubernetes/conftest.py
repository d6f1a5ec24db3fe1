"""The cluster the Kubernetes tests run against: the emulator and test kubelet, or a real one.

Without ``KUBECONFIG`` every test runs against :class:`~tests.kubernetes.emulator.Emulator`
(kmock's, its gaps closed) and :class:`~tests.kubernetes.kubelet.Kubelet`, which runs
real prediction servers on 127.0.0.1. With ``KUBECONFIG`` set (and
``PILOTHOUSE_K8S_IMAGE`` naming an image of this project the cluster can pull),
the end-to-end tests run against that cluster instead, in a throwaway namespace;
tests that need to break the API server on purpose (restart it, compact its
history, take a permission away) run on the emulator only and say so.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kubernetes.emulator import ApiServer, Emulator
from tests.kubernetes.kubelet import Kubelet

NAMESPACE = "pilothouse-test"
IMAGE = "pilothouse:test"
REAL = bool(os.environ.get("KUBECONFIG"))


@dataclass
class Cluster:
    """Where the plugin under test deploys, and (on the emulator) the controls over it."""

    kubeconfig: Path
    namespace: str
    image: str
    api: ApiServer | None = None
    kubelet: Kubelet | None = None

    @property
    def emulator(self) -> Emulator:
        """The emulator (tests that need it are skipped on a real cluster)."""
        assert self.api is not None, "emulator only"
        return self.api.emulator

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """``plugin_settings`` for this cluster, fast enough for tests."""
        url = (
            "http://{cluster_ip}:{port}"
            if self.api is not None
            else "http://{service}.{namespace}.svc:{port}"
        )
        return {
            "kubeconfig": str(self.kubeconfig),
            "namespace": self.namespace,
            "image": self.image,
            "readiness_period_s": 1,
            "progress_deadline_s": 8,
            "termination_grace_s": 5,
            "prediction_url_template": url,
            "resources": {
                "requests": {"cpu": "10m", "memory": "64Mi"},
                "limits": {"memory": "512Mi"},
            },
            **overrides,
        }


emulator_only = pytest.mark.skipif(REAL, reason="needs the emulator's controls (KUBECONFIG set)")


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    """The emulator with its test kubelet (or the real cluster of ``KUBECONFIG``)."""
    if REAL:
        image = os.environ.get("PILOTHOUSE_K8S_IMAGE")
        if not image:
            pytest.skip(
                "KUBECONFIG is set but PILOTHOUSE_K8S_IMAGE (the project's image as the "
                "cluster pulls it) is not"
            )
        yield Cluster(
            Path(os.environ["KUBECONFIG"]),
            os.environ.get("PILOTHOUSE_K8S_NAMESPACE", NAMESPACE),
            image,
        )
        return
    api = ApiServer(Emulator())
    await api.start()
    path = tmp_path / "kubeconfig.yaml"
    path.write_text(yaml.safe_dump(api.kubeconfig()))
    try:
        async with Kubelet(api.emulator, NAMESPACE, tmp_path / "node", images={IMAGE}) as kubelet:
            yield Cluster(path, NAMESPACE, IMAGE, api, kubelet)
    finally:
        await api.stop()
