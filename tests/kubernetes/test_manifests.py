"""deploy/kubernetes renders offline (``kubectl kustomize``) into valid objects; tight RBAC."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError

from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.plugins.kubernetes import manifests
from pilothouse.plugins.kubernetes.manifests import Delivered
from pilothouse.plugins.kubernetes.settings import KubernetesPluginSettings

ROOT = Path(__file__).resolve().parents[2]
K8S_VERSION = "1.32.0"


def _validate(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is missing: .ci/run installs Debian's kubernetes-client")
    out = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "deploy" / "kubernetes")],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_the_kustomization_renders_valid_objects(rendered: list[dict[str, Any]]) -> None:
    kinds = sorted(d["kind"] for d in rendered)
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "Namespace",
        "Role",
        "RoleBinding",
        "Secret",
        "Secret",
        "ServiceAccount",
    ]
    for obj in rendered:
        _validate(obj)


def test_the_role_is_namespaced_and_grants_only_what_the_plugin_uses(
    rendered: list[dict[str, Any]],
) -> None:
    role = next(d for d in rendered if d["kind"] == "Role")
    assert role["metadata"]["namespace"] == "pilothouse"
    assert not [d for d in rendered if d["kind"].startswith("Cluster")]
    granted = {
        (g, r, v)
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    assert ("apps", "deployments", "watch") in granted and ("", "pods/log", "get") in granted
    assert not [x for x in granted if "*" in x], "no wildcard"
    assert ("", "secrets", "list") not in granted, "the agent cannot read every Secret"
    updates = [r for r in role["rules"] if "secrets" in r["resources"] and "update" in r["verbs"]]
    assert [r.get("resourceNames") for r in updates] == [["pilothouse-package-token"]], updates


def test_the_agent_runs_non_root_read_only_with_probes(rendered: list[dict[str, Any]]) -> None:
    dep = next(d for d in rendered if d["kind"] == "Deployment")
    pod = dep["spec"]["template"]["spec"]
    agent = pod["containers"][0]
    assert agent["args"][:4] == ["agent", "run", "--plugin", "kubernetes"]
    assert (
        pod["securityContext"]["runAsNonRoot"]
        and agent["securityContext"]["readOnlyRootFilesystem"]
    )
    assert agent["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert agent["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert agent["resources"]["limits"]["memory"]


def test_the_plugins_objects_are_valid_kubernetes_objects(tmp_path: Path) -> None:
    s = KubernetesPluginSettings(
        ingress={"host": "models.example.com", "class_name": "nginx"},
        node_selector={"pool": "models"},
        tolerations=[{"key": "gpu", "operator": "Exists"}],
        grpc_port=8701,
    )
    spec = DesiredDeployment(
        id="Fraud_v2.1", model_package_id="m1", challenger_ids=("m2",), generation=3
    )
    packages = [
        Delivered("m1", "a" * 64, configmap="ph-x-pkg-aaaa"),
        Delivered(
            "m2", "b" * 64, url="https://hub/api/v1/model-packages/m2/archive", needs_token=True
        ),
    ]
    objects = manifests.build(spec, packages, s, "pe-1")
    owner = {**objects.deployment, "metadata": {**objects.deployment["metadata"], "uid": "u-1"}}
    for obj in (
        objects.deployment,
        manifests.owned_by(objects.service, owner),
        objects.ingress,
        manifests.package_configmap("ph-x-pkg-aaaa", b"x", "m1", "a" * 64, spec, s, "pe-1"),
        manifests.admin_secret("pe-1", "t" * 24, s),
    ):
        assert obj is not None
        _validate(obj)
    container = objects.deployment["spec"]["template"]["spec"]["containers"][0]
    assert (
        container["readinessProbe"]["httpGet"]["path"] == "/v1/health/predict?deployment=Fraud_v2.1"
    )
    assert objects.deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_the_grpc_port_is_its_own() -> None:
    with pytest.raises(ValidationError, match="grpc_port 8702 is service_port too"):
        KubernetesPluginSettings(grpc_port=8702)
    assert KubernetesPluginSettings().grpc_port is None, "off unless the image has grpcio"
