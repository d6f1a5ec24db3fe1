"""Object names, labels and annotations: how the plugin's objects are found again.

Every object the plugin makes carries the same labels, so that one label
selector per PE finds them all — for the watches, for adoption after an agent
restart, and for the user's ``kubectl get -l``. Labels hold values Kubernetes
accepts (63 characters, alphanumeric at both ends); the exact ids, which may
be longer or end in ``.``, are in annotations, which are what the plugin reads.
"""

from __future__ import annotations

import hashlib
import re

MANAGED_BY = "app.kubernetes.io/managed-by"
COMPONENT = "app.kubernetes.io/component"
PE = "pilothouse.io/prediction-environment"
DEPLOYMENT = "pilothouse.io/deployment"
GENERATION = "pilothouse.io/generation"
MODEL_PACKAGE = "pilothouse.io/model-package"
TEMPLATE = "pilothouse.io/template"
"""Label of the pods: a digest of the template they run (tells new pods from old in a rollout)."""

DEPLOYMENT_ID = "pilothouse.io/deployment-id"
"""Annotation: the deployment id, exactly."""
MODEL_PACKAGE_ID = "pilothouse.io/model-package-id"
"""Annotation: the champion's model package id, exactly."""
CHALLENGER_IDS = "pilothouse.io/challenger-ids"
"""Annotation: the challengers' model package ids, comma-separated."""
SPEC_GENERATION = "pilothouse.io/spec-generation"
"""Annotation: the desired generation the Deployment was last written for."""
ROLLOUT_FROM = "pilothouse.io/rollout-from"
"""Annotation, during a replacement: the pod template (JSON) to restore if it fails."""

MANAGER = "pilothouse"
SERVER = "prediction-server"

_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def label_value(value: str) -> str:
    """``value`` if Kubernetes accepts it as a label value, else a stable short digest of it."""
    if _LABEL_VALUE.match(value):
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:16]
    safe = re.sub(r"[^-A-Za-z0-9_.]", "-", value)[:40].strip("-_.")
    return f"{safe}-{digest}" if safe else f"h-{digest}"


def object_name(deployment_id: str) -> str:
    """The name of a deployment's Deployment, Service and Ingress (a DNS-1035 label).

    Lowercase ids that are valid names keep their shape (``ph-<id>``); any other
    id gets a digest suffix, so two ids never map to one name.
    """
    slug = re.sub(r"[^a-z0-9-]", "-", deployment_id.lower()).strip("-")
    if slug == deployment_id and len(slug) <= 56:
        return f"ph-{slug}"
    digest = hashlib.sha256(deployment_id.encode()).hexdigest()[:8]
    return f"ph-{slug[:44].strip('-') or 'd'}-{digest}"


def pe_labels(pe: str) -> dict[str, str]:
    """The labels every object of the PE carries."""
    return {MANAGED_BY: MANAGER, PE: label_value(pe)}


def selector(pe: str) -> str:
    """The label selector of everything the plugin made for the PE."""
    return ",".join(f"{k}={v}" for k, v in pe_labels(pe).items())


def pod_selector(pe: str, deployment_id: str) -> dict[str, str]:
    """The Deployment's (immutable) ``spec.selector.matchLabels``; the Service selects by it too."""
    return {**pe_labels(pe), DEPLOYMENT: label_value(deployment_id)}
