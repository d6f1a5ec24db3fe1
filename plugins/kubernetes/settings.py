"""Settings of the ``kubernetes`` plugin (``plugin_settings`` in the agent's config)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_MODEL = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class IngressSettings(BaseModel):
    """An Ingress per deployment, when clients reach the models from outside the cluster."""

    model_config = _MODEL

    host: str = Field(min_length=1)
    """The host name the Ingress answers for (``models.example.com``)."""
    class_name: str | None = None
    """``spec.ingressClassName`` (None: the cluster's default class)."""
    path_template: str = "/v1/deployments/{deployment_id}"
    """The path prefix routed to a deployment (``{deployment_id}``, ``{name}`` replaced); the
    default is the server's own prefix, so no rewriting is needed."""
    tls_secret: str | None = None
    """A TLS Secret for ``host``; prediction URLs then start with ``https``."""


class Resources(BaseModel):
    """Requests and limits of the prediction server container (``cpu``, ``memory``)."""

    model_config = _MODEL

    requests: dict[str, str] = Field(default_factory=lambda: {"cpu": "100m", "memory": "256Mi"})
    """What the scheduler reserves per replica."""
    limits: dict[str, str] = Field(default_factory=lambda: {"memory": "1Gi"})
    """What a replica may not exceed (memory beyond it: OOM-killed)."""


class PackageURL(BaseModel):
    """A model package the pods download themselves (standalone mode)."""

    model_config = _MODEL

    url: str = Field(min_length=1)
    """Where the archive is (``https://…/model.tar.gz``), reachable from the pods."""
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    """The archive's sha256, verified by the init container before the server sees it."""


class KubernetesPluginSettings(BaseModel):
    """Where and how deployments run in the cluster."""

    model_config = _MODEL

    kubeconfig: Path | None = None
    """A kubeconfig file; unset: the pod's service account when the agent runs in the
    cluster, else ``$KUBECONFIG`` or ``~/.kube/config``."""
    context: str | None = None
    """The kubeconfig context (unset: its current context)."""
    namespace: str = Field(default="pilothouse", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    """The namespace of every object the plugin makes (its Role is granted there only)."""
    image: str = Field(default="pilothouse:latest", min_length=1)
    """The project's image: its ``pilothouse serve`` runs in every pod."""
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    """``imagePullPolicy`` of the containers."""
    image_pull_secrets: list[str] = Field(default_factory=list)
    """Secrets for a private registry (``imagePullSecrets``)."""
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    """The type of each deployment's Service."""
    service_port: int = Field(default=8702, ge=1, le=65535)
    """The port of the Service and of the prediction server in the pod."""
    ingress: IngressSettings | None = None
    """An Ingress per deployment (unset: none)."""
    node_selector: dict[str, str] = Field(default_factory=dict)
    """``nodeSelector`` of the pods."""
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    """``tolerations`` of the pods, as Kubernetes spells them."""
    resources: Resources = Field(default_factory=Resources)
    """Default requests and limits; a deployment's ``settings.resources`` overrides them."""
    prediction_url_template: str = "http://{service}.{namespace}.svc:{port}"
    """Where clients reach a deployment's Service (without an Ingress). Placeholders:
    ``{service}``, ``{namespace}``, ``{port}``, ``{cluster_ip}``, ``{deployment_id}``."""
    grpc_port: int | None = Field(default=None, ge=1, le=65535)
    """The gRPC port (Open Inference Protocol) of the server in the pod and of the Service
    (port name ``grpc``), e.g. 8701; unset: no gRPC. The image must have grpcio
    (``pilothouse[grpc]``: ``EXTRAS=sklearn,docker,grpc make image``)."""
    grpc_target_template: str = "{service}.{namespace}.svc:{port}"
    """Where gRPC clients reach a deployment's Service (``host:port``, reported as its
    ``grpc_target``). Placeholders as ``prediction_url_template``'s, ``{port}`` the gRPC one."""
    packages: dict[str, Path] = Field(default_factory=dict)
    """Standalone mode: model package id to a package directory or archive on the agent's
    disk, handed to the pods in a ConfigMap (small packages only, see ``configmap_max_bytes``)."""
    package_urls: dict[str, PackageURL] = Field(default_factory=dict)
    """Standalone mode: model package id to a URL the pods download it from."""
    hub_url: str | None = None
    """Where the pods reach the hub to download packages (unset: the agent's own hub URL
    cannot be guessed from here; set it when the agent talks to a hub)."""
    package_token_secret: str = "pilothouse-package-token"
    """The Secret (key ``token``) with the token the init container downloads packages with."""
    configmap_max_bytes: int = Field(default=900_000, ge=1024, le=1_000_000)
    """Largest archive shipped in a ConfigMap (the API server refuses objects over 1 MiB)."""
    progress_deadline_s: int = Field(default=600, ge=1)
    """``progressDeadlineSeconds``: a rollout not done by then is undone."""
    readiness_period_s: int = Field(default=5, ge=1)
    """How often the kubelet asks a pod for a real prediction (its readiness probe)."""
    readiness_failure_threshold: int = Field(default=3, ge=1)
    """Failed probes in a row before a ready pod stops receiving traffic."""
    termination_grace_s: int = Field(default=30, ge=0)
    """``terminationGracePeriodSeconds``: in-flight requests finish within it."""
    request_timeout_s: float = Field(default=30.0, gt=0)
    """Time budget of one call to the API server."""
    watch_timeout_s: int = Field(default=290, ge=1)
    """Server-side timeout of one watch request; the watch then resumes where it was."""
    reconnect_max_s: float = Field(default=30.0, gt=0)
    """Upper bound of the delay before a lost watch reconnects (the kit's backoff)."""
    log_tail_lines: int = Field(default=20, ge=0, le=1000)
    """Log lines of a failing container quoted in its finding."""

    @model_validator(mode="after")
    def _ports_differ(self) -> KubernetesPluginSettings:
        if self.grpc_port is not None and self.grpc_port == self.service_port:
            raise ValueError(f"grpc_port {self.grpc_port} is service_port too: pick another")
        return self
