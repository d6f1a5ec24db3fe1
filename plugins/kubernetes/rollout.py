"""Waiting for a rollout, and telling why it failed.

A rollout is complete when ``kubectl rollout status`` would say so
(:func:`~pilothouse.plugins.kubernetes.findings.rollout_complete`). It has
failed when a pod of the *new* template (its ``pilothouse.io/template``
label) shows a problem that will not cure itself (crash loop, OOM kill,
image pull error), when the Deployment controller marks it
``ProgressDeadlineExceeded``, or — should no controller say so — when the
deadline plus a margin has passed. The cause names the reason, the pod, the
last Warning event (a failing readiness probe says so there) and the new
container's last log lines.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from pilothouse.foundation.domain.vocabulary import DeploymentState, Status
from pilothouse.plugins.kubernetes import findings, names
from pilothouse.plugins.kubernetes.findings import Finding
from pilothouse.plugins.kubernetes.observer import Observer

MARGIN_S = 10.0
"""Waited beyond ``progressDeadlineSeconds`` for the controller to say the rollout failed."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a rollout ended."""

    ok: bool
    reason: str = ""
    cause: str = ""
    log: str = ""


async def wait(observer: Observer, deployment_id: str, template: str, deadline_s: float) -> Outcome:
    """Wait for the rollout of the pods labelled ``template``; fail as soon as it cannot succeed."""
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline_s + MARGIN_S
    while True:
        changed = asyncio.ensure_future(observer.changed())
        try:
            outcome = await _check(observer, deployment_id, template)
            if outcome is not None:
                return outcome
            remaining = until - loop.time()
            if remaining <= 0:
                return await _failed(
                    observer,
                    deployment_id,
                    template,
                    "ProgressDeadlineExceeded",
                    f"the rollout did not complete within {deadline_s:g}s",
                )
            await asyncio.wait([changed], timeout=remaining)
        finally:
            changed.cancel()


async def _check(observer: Observer, deployment_id: str, template: str) -> Outcome | None:
    deployment = observer.deployment(deployment_id)
    if deployment is None:
        return Outcome(False, "Deleted", "the Deployment was deleted during the rollout")
    if findings.rollout_complete(deployment) and _current(deployment, template):
        return Outcome(True)
    for pod in new_pods(observer, deployment_id, template):
        problem = findings.pod_problem(pod)
        if problem is not None and problem.reason != "Unschedulable":  # capacity may come
            finding = Finding(
                DeploymentState.ERRORED,
                Status.FAILING,
                problem.message,
                problem.reason,
                problem.pod,
                problem.container,
                problem.previous_logs,
            )
            log = await observer.log_tail(finding)
            return Outcome(False, problem.reason, f"{problem.reason}: {problem.message}", log)
    if findings.deadline_exceeded(deployment):
        spec = deployment.get("spec") or {}
        return await _failed(
            observer,
            deployment_id,
            template,
            "ProgressDeadlineExceeded",
            f"no progress within progressDeadlineSeconds ({spec.get('progressDeadlineSeconds')}s)",
        )
    return None


async def _failed(
    observer: Observer, deployment_id: str, template: str, reason: str, cause: str
) -> Outcome:
    pods = new_pods(observer, deployment_id, template)
    warnings = observer.warnings(pods)
    for pod in pods:
        name = pod["metadata"]["name"]
        problem = findings.pod_problem(pod)
        if problem is not None:
            cause += f"; {problem.reason}: {problem.message}"
            reason = problem.reason if problem.reason != "Unschedulable" else reason
        elif name in warnings:
            cause += f"; pod {name}: {warnings[name]}"
            if "eadiness probe" in warnings[name]:
                reason = "ReadinessProbeFailed"
        log = await observer.log_tail(
            Finding(
                DeploymentState.ERRORED,
                Status.FAILING,
                cause,
                reason,
                name,
                "server",
            )
        )
        return Outcome(False, reason, cause, log)
    return Outcome(False, reason, cause)


def new_pods(observer: Observer, deployment_id: str, template: str) -> list[dict[str, Any]]:
    """The live pods of the rollout's template."""
    return [
        p
        for p in observer.pods_of(deployment_id)
        if p["metadata"].get("labels", {}).get(names.TEMPLATE) == template
        and not p["metadata"].get("deletionTimestamp")
    ]


def _current(deployment: dict[str, object], template: str) -> bool:
    spec = deployment.get("spec") or {}
    assert isinstance(spec, dict)
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    return bool(labels.get(names.TEMPLATE) == template)
