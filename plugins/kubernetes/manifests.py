"""The objects of one deployment, as the Kubernetes API spells them (plain JSON-ready dicts).

Per deployment (all labelled with :mod:`~pilothouse.plugins.kubernetes.names`):

- a **Deployment** running the project's image (``pilothouse serve``), rolling
  updates with ``maxUnavailable: 0`` (old pods serve until new ones are ready)
  and a readiness probe that is a real prediction on the manifest's sample rows
  (``/v1/health/predict``), so a pod is never ready before it can predict;
- an **init container** (``python -m pilothouse.plugins.kubernetes.fetch``) that
  puts the model packages in the pod — downloaded from the hub or a URL, or
  copied from a ConfigMap — verifying each sha256, and writes the server's
  ``deployments.json``, which the server loads at start (champion and challengers);
- a **Service**, and optionally an **Ingress**, owned by the Deployment (with
  any package ConfigMap), so that deleting the Deployment collects them.

The containers run as the image's non-root user with a read-only root file
system; what they write goes to ``emptyDir`` volumes.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.plugins.kubernetes import names
from pilothouse.plugins.kubernetes.settings import KubernetesPluginSettings

DATA_DIR = "/var/lib/pilothouse"
PACKAGES_DIR = f"{DATA_DIR}/packages"
STATE_DIR = f"{DATA_DIR}/serve"
CONFIGMAP_DIR = "/var/run/pilothouse/configmaps"
CONFIGMAP_KEY = "package.tar.gz"
TOKEN_ENV = "PILOTHOUSE_PACKAGE_TOKEN"
ADMIN_TOKEN_KEY = "admin-token"
PACKAGE_TOKEN_KEY = "token"
"""The key of ``package_token_secret`` that holds the token the init container sends."""
PACKAGE_TOKEN_ID_KEY = "token_id"
"""The key that names it (its hub id), so the next agent run can revoke it when replacing it."""
SERVER_CONTAINER = "server"
GRPC_PORT_NAME = "grpc"
"""The name of the gRPC port, on the server container and on the Service."""
FETCH_CONTAINER = "fetch-packages"
PROBE_PATH = "/v1/health/predict"


@dataclass(frozen=True, slots=True)
class Delivered:
    """How one model package reaches the pod: from ``url``, or from ConfigMap ``configmap``."""

    model_package_id: str
    sha256: str
    url: str | None = None
    configmap: str | None = None
    needs_token: bool = False
    """Whether the download needs the package token (the hub)."""

    def source(self) -> str:
        """The init container's argument naming where the archive is."""
        if self.configmap is not None:
            return f"file://{CONFIGMAP_DIR}/{self.configmap}/{CONFIGMAP_KEY}"
        assert self.url is not None
        return self.url


@dataclass(frozen=True, slots=True)
class Objects:
    """What :func:`build` makes for one deployment (``None``: that object is not wanted)."""

    deployment: dict[str, Any]
    service: dict[str, Any]
    ingress: dict[str, Any] | None


def admin_secret_name(pe: str) -> str:
    """The per-PE Secret holding the admin token of the pods' prediction servers."""
    return f"ph-serve-admin-{names.label_value(pe).lower()[:40].strip('-._')}"


def build(
    spec: DesiredDeployment, packages: list[Delivered], s: KubernetesPluginSettings, pe: str
) -> Objects:
    """The Deployment, Service and Ingress of ``spec``; ``packages[0]`` is the champion."""
    return Objects(
        deployment(spec, packages, s, pe),
        service(spec, s, pe),
        ingress(spec, s, pe) if s.ingress is not None else None,
    )


def metadata(
    name: str,
    s: KubernetesPluginSettings,
    labels: dict[str, str],
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``metadata`` of a namespaced object."""
    meta: dict[str, Any] = {"name": name, "namespace": s.namespace, "labels": labels}
    if annotations:
        meta["annotations"] = annotations
    return meta


def deployment_labels(spec: DesiredDeployment, pe: str) -> dict[str, str]:
    """Labels of the Deployment, Service and Ingress: the PE, deployment, generation, package."""
    return {**pod_labels(spec, pe), names.GENERATION: str(spec.generation)}


def pod_labels(spec: DesiredDeployment, pe: str) -> dict[str, str]:
    """Labels of the pods (no generation: a change that leaves pods alone must not roll them)."""
    return {
        **names.pod_selector(pe, spec.id),
        names.COMPONENT: names.SERVER,
        names.MODEL_PACKAGE: names.label_value(spec.model_package_id),
    }


def identity(spec: DesiredDeployment) -> dict[str, str]:
    """Annotations with the exact ids (labels may hold digests of them)."""
    return {
        names.DEPLOYMENT_ID: spec.id,
        names.MODEL_PACKAGE_ID: spec.model_package_id,
        names.CHALLENGER_IDS: ",".join(spec.challenger_ids),
        names.SPEC_GENERATION: str(spec.generation),
    }


def deployment(
    spec: DesiredDeployment, packages: list[Delivered], s: KubernetesPluginSettings, pe: str
) -> dict[str, Any]:
    """The Deployment: ``replicas`` pods of the prediction server, rolled with no downtime."""
    labels = deployment_labels(spec, pe)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(names.object_name(spec.id), s, labels, identity(spec)),
        "spec": {
            "replicas": spec.settings.replicas,
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": s.progress_deadline_s,
            "selector": {"matchLabels": names.pod_selector(pe, spec.id)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
            },
            "template": pod_template(spec, packages, s, pe),
        },
    }


def pod_template(
    spec: DesiredDeployment, packages: list[Delivered], s: KubernetesPluginSettings, pe: str
) -> dict[str, Any]:
    """The pods: an init container that fetches the packages, then the server."""
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": s.termination_grace_s,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumes": [
            {"name": "data", "emptyDir": {}},
            {"name": "tmp", "emptyDir": {}},
            *(
                {"name": f"cm-{p.configmap}", "configMap": {"name": p.configmap}}
                for p in packages
                if p.configmap
            ),
        ],
        "initContainers": [fetch_container(spec, packages, s)],
        "containers": [server_container(spec, s, pe)],
    }
    if s.node_selector:
        pod["nodeSelector"] = dict(s.node_selector)
    if s.tolerations:
        pod["tolerations"] = [dict(t) for t in s.tolerations]
    if s.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": n} for n in s.image_pull_secrets]
    template: dict[str, Any] = {
        "metadata": {"labels": pod_labels(spec, pe), "annotations": _pod_identity(spec)},
        "spec": pod,
    }
    digest = template_digest(template, spec.settings.replicas)
    template["metadata"]["labels"][names.TEMPLATE] = digest
    return template


def template_digest(template: dict[str, Any], replicas: int) -> str:
    """A digest of what the pods run and how many: equal digests need no rollout."""
    doc = orjson.dumps({"template": template, "replicas": replicas}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(doc).hexdigest()[:16]


def _pod_identity(spec: DesiredDeployment) -> dict[str, str]:
    return {
        names.DEPLOYMENT_ID: spec.id,
        names.MODEL_PACKAGE_ID: spec.model_package_id,
        names.CHALLENGER_IDS: ",".join(spec.challenger_ids),
    }


def fetch_container(
    spec: DesiredDeployment, packages: list[Delivered], s: KubernetesPluginSettings
) -> dict[str, Any]:
    """The init step: every package fetched and verified, the server's state file written."""
    args = ["--deployment", spec.id, "--dest", PACKAGES_DIR, "--state-dir", STATE_DIR]
    for role, p in zip(["champion"] + ["challenger"] * len(packages), packages, strict=False):
        args += [f"--{role}", p.model_package_id, p.sha256, p.source()]
    container: dict[str, Any] = {
        "name": FETCH_CONTAINER,
        "image": s.image,
        "imagePullPolicy": s.image_pull_policy,
        "command": ["python", "-m", "pilothouse.plugins.kubernetes.fetch"],
        "args": args,
        "securityContext": _container_security(),
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "volumeMounts": [
            {"name": "data", "mountPath": DATA_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
            *(
                {
                    "name": f"cm-{p.configmap}",
                    "readOnly": True,
                    "mountPath": f"{CONFIGMAP_DIR}/{p.configmap}",
                }
                for p in packages
                if p.configmap
            ),
        ],
    }
    if any(p.needs_token for p in packages):
        container["env"] = [
            {
                "name": TOKEN_ENV,
                "valueFrom": {
                    "secretKeyRef": {"name": s.package_token_secret, "key": PACKAGE_TOKEN_KEY}
                },
            }
        ]
    return container


def server_container(
    spec: DesiredDeployment, s: KubernetesPluginSettings, pe: str
) -> dict[str, Any]:
    """``pilothouse serve`` on ``service_port``, ready only when it predicts."""
    port = "http"
    env = [
        {
            "name": "PILOTHOUSE_SERVE_ADMIN_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": admin_secret_name(pe), "key": ADMIN_TOKEN_KEY}},
        }
    ]
    env += [{"name": k, "value": v} for k, v in sorted(spec.settings.env.items())]
    args = ["--host", "0.0.0.0", "--port", str(s.service_port), "--state-dir", STATE_DIR]
    ports = [{"name": port, "containerPort": s.service_port, "protocol": "TCP"}]
    if s.grpc_port is not None:
        args += ["--grpc-port", str(s.grpc_port)]
        ports.append({"name": GRPC_PORT_NAME, "containerPort": s.grpc_port, "protocol": "TCP"})
    return {
        "name": SERVER_CONTAINER,
        "image": s.image,
        "imagePullPolicy": s.image_pull_policy,
        "command": ["pilothouse", "serve"],
        "args": args,
        "env": env,
        "ports": ports,
        "readinessProbe": {
            "httpGet": {"path": f"{PROBE_PATH}?deployment={spec.id}", "port": port},
            "periodSeconds": s.readiness_period_s,
            "timeoutSeconds": 5,
            "failureThreshold": s.readiness_failure_threshold,
            "successThreshold": 1,
        },
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", "port": port},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        },
        "resources": resources(spec, s),
        "securityContext": _container_security(),
        "volumeMounts": [
            {"name": "data", "mountPath": DATA_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def resources(spec: DesiredDeployment, s: KubernetesPluginSettings) -> dict[str, Any]:
    """The plugin's defaults, with the deployment's own cpu and memory over them.

    A deployment's memory is both its request and its limit: what it asked for is
    what it gets, and exceeding it is an OOM kill the user is told about.
    """
    requests, limits = dict(s.resources.requests), dict(s.resources.limits)
    asked = spec.settings.resources
    if asked.cpu:
        requests["cpu"] = asked.cpu
    if asked.memory:
        requests["memory"] = limits["memory"] = asked.memory
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def service(spec: DesiredDeployment, s: KubernetesPluginSettings, pe: str) -> dict[str, Any]:
    """The Service in front of the pods that are ready (and so can predict): HTTP, and gRPC."""
    ports = [{"name": "http", "port": s.service_port, "targetPort": "http", "protocol": "TCP"}]
    if s.grpc_port is not None:
        ports.append({"name": GRPC_PORT_NAME, "port": s.grpc_port, "targetPort": GRPC_PORT_NAME,
                      "protocol": "TCP"})  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(
            names.object_name(spec.id), s, deployment_labels(spec, pe), identity(spec)
        ),
        "spec": {
            "type": s.service_type,
            "selector": names.pod_selector(pe, spec.id),
            "ports": ports,
        },
    }


def ingress_path(spec: DesiredDeployment, s: KubernetesPluginSettings) -> str:
    """The deployment's path prefix on the Ingress host."""
    assert s.ingress is not None
    path = s.ingress.path_template.format(deployment_id=spec.id, name=names.object_name(spec.id))
    return "/" + path.strip("/")


def ingress(spec: DesiredDeployment, s: KubernetesPluginSettings, pe: str) -> dict[str, Any]:
    """An Ingress routing ``host`` + the deployment's path to its Service."""
    ing = s.ingress
    assert ing is not None
    name = names.object_name(spec.id)
    backend = {"service": {"name": name, "port": {"number": s.service_port}}}
    body: dict[str, Any] = {
        "rules": [
            {
                "host": ing.host,
                "http": {
                    "paths": [
                        {"path": ingress_path(spec, s), "pathType": "Prefix", "backend": backend}
                    ]
                },
            }
        ]
    }
    if ing.class_name:
        body["ingressClassName"] = ing.class_name
    if ing.tls_secret:
        body["tls"] = [{"hosts": [ing.host], "secretName": ing.tls_secret}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(name, s, deployment_labels(spec, pe), identity(spec)),
        "spec": body,
    }


def package_configmap(
    name: str,
    archive: bytes,
    model_package_id: str,
    sha256: str,
    spec: DesiredDeployment,
    s: KubernetesPluginSettings,
    pe: str,
) -> dict[str, Any]:
    """A small package's archive, immutable, for the init container to copy and verify."""
    annotations = {names.MODEL_PACKAGE_ID: model_package_id, "pilothouse.io/sha256": sha256}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "immutable": True,
        "metadata": metadata(name, s, names.pod_selector(pe, spec.id), annotations),
        "binaryData": {CONFIGMAP_KEY: base64.b64encode(archive).decode()},
    }


def owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with an ownerReference to ``owner`` (a Deployment read from the API)."""
    meta = owner["metadata"]
    ref = {
        "apiVersion": owner.get("apiVersion", "apps/v1"),
        "kind": owner.get("kind", "Deployment"),
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": False,
        "blockOwnerDeletion": False,
    }
    return {**obj, "metadata": {**obj["metadata"], "ownerReferences": [ref]}}


def admin_secret(pe: str, token: str, s: KubernetesPluginSettings) -> dict[str, Any]:
    """The admin token every prediction server of the PE is started with."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata(admin_secret_name(pe), s, names.pe_labels(pe)),
        "stringData": {ADMIN_TOKEN_KEY: token},
    }


def package_token_secret(
    name: str, token: str, token_id: str, s: KubernetesPluginSettings, pe: str
) -> dict[str, Any]:
    """The read-only package token the init containers download from the hub with."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata(name, s, names.pe_labels(pe)),
        "stringData": {PACKAGE_TOKEN_KEY: token, PACKAGE_TOKEN_ID_KEY: token_id},
    }


def _container_security() -> dict[str, Any]:
    """Non-root, no privilege escalation, no capabilities, a read-only root file system."""
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
