"""What a Deployment and its pods say about a deployment's health: a pure function.

:func:`assess` reads the objects the watches keep (no I/O, tested as a
table) and answers one :class:`Finding`, the same wherever it is asked —
``deployment_status``, the findings pushed at once through ``ctx.report``,
a rollout deciding to undo itself::

    what the pods show                                   state     status    reason
    ───────────────────────────────────────────────────  ────────  ────────  ─────────────────────
    a container waiting in CrashLoopBackOff,              ready or  failing   that reason (OOMKilled
    ImagePullBackOff, ErrImagePull, … or OOM-killed       errored             wins over the crash
    a pod the scheduler cannot place                                         loop it causes),
                                                                            Unschedulable
    the rollout passed ``progressDeadlineSeconds``        errored*  failing   ProgressDeadline…
    no replica available (e.g. readiness failing)         errored   failing   ReadinessProbeFailed …
    some replicas available, fewer than asked             ready     at_risk   —
    every replica available and up to date                ready     passing   —
    no Deployment                                         stopped   unknown   —

``*``: ``ready`` while some replica still serves. A failing finding names the
pod and container whose log tail the plugin quotes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pilothouse.foundation.domain.vocabulary import DeploymentState, Status

FAILED_WAITING = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
"""Container waiting reasons that will not cure themselves soon."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One deployment's health as its objects show it."""

    state: DeploymentState
    status: Status
    message: str
    reason: str | None = None
    pod: str | None = None
    container: str | None = None
    """The container whose logs explain ``reason`` (None: no log to quote)."""
    previous_logs: bool = False
    """Whether the explaining logs are those of the container's previous run (it restarted)."""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PodProblem:
    """Why one pod cannot serve."""

    reason: str
    message: str
    pod: str
    container: str | None
    previous_logs: bool


def assess(
    deployment: dict[str, Any] | None,
    pods: Iterable[dict[str, Any]],
    warnings: dict[str, str] | None = None,
) -> Finding:
    """The finding for one deployment; ``warnings``: last Warning event message by pod name."""
    if deployment is None:
        return Finding(DeploymentState.STOPPED, Status.UNKNOWN, "no Deployment")
    spec, st = deployment.get("spec") or {}, deployment.get("status") or {}
    wanted = int(spec.get("replicas", 1))
    available = int(st.get("availableReplicas") or 0)
    counts = {
        "replicas": wanted,
        "available": available,
        "updated": int(st.get("updatedReplicas") or 0),
    }
    live = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    problem = next((pr for p in live if (pr := pod_problem(p)) is not None), None)
    serving = DeploymentState.READY if available > 0 else DeploymentState.ERRORED
    if problem is not None:
        return Finding(
            serving,
            Status.FAILING,
            f"{problem.reason}: {problem.message}",
            problem.reason,
            problem.pod,
            problem.container,
            problem.previous_logs,
            counts,
        )
    if deadline_exceeded(deployment):
        return Finding(
            serving,
            Status.FAILING,
            "rollout did not progress within "
            f"{spec.get('progressDeadlineSeconds')}s ({available} of {wanted} available)",
            "ProgressDeadlineExceeded",
            data=counts,
        )
    if wanted == 0:
        return Finding(DeploymentState.READY, Status.AT_RISK, "scaled to 0 replicas", data=counts)
    if available == 0:
        return _unavailable(live, warnings or {}, wanted, counts)
    if available < wanted:
        return Finding(
            DeploymentState.READY,
            Status.AT_RISK,
            f"{available} of {wanted} replicas available",
            data=counts,
        )
    return Finding(
        DeploymentState.READY,
        Status.PASSING,
        f"{available} of {wanted} replicas available",
        data=counts,
    )


def pod_problem(pod: dict[str, Any]) -> PodProblem | None:
    """Why ``pod`` cannot serve, when the reason is one that will not cure itself soon."""
    name = str((pod.get("metadata") or {}).get("name"))
    st = pod.get("status") or {}
    for cond in st.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable":
            return PodProblem("Unschedulable", str(cond.get("message") or ""), name, None, False)
    statuses = [*(st.get("initContainerStatuses") or []), *(st.get("containerStatuses") or [])]
    for cs in statuses:
        container = str(cs.get("name"))
        state, last = cs.get("state") or {}, cs.get("lastState") or {}
        for terminated, previous in (
            (state.get("terminated"), False),
            (last.get("terminated"), True),
        ):
            if terminated and terminated.get("reason") == "OOMKilled":
                restarts = int(cs.get("restartCount") or 0)
                return PodProblem(
                    "OOMKilled",
                    f"container {container!r} of pod {name} ran out of "
                    f"memory and was killed (restarts: {restarts})",
                    name,
                    container,
                    previous,
                )
        waiting = state.get("waiting") or {}
        if waiting.get("reason") in FAILED_WAITING:
            detail = str(waiting.get("message") or "")
            crashed = bool(last.get("terminated"))
            return PodProblem(
                str(waiting["reason"]),
                f"container {container!r} of pod {name}" + (f": {detail}" if detail else ""),
                name,
                container if crashed else None,
                crashed,
            )
    return None


def deadline_exceeded(deployment: dict[str, Any]) -> bool:
    """Whether the Deployment controller gave up on the rollout (``ProgressDeadlineExceeded``)."""
    for cond in (deployment.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return True
    return False


def rollout_complete(deployment: dict[str, Any]) -> bool:
    """``kubectl rollout status``'s test: observed, updated, available, no old replica left."""
    meta, spec, st = (deployment.get(k) or {} for k in ("metadata", "spec", "status"))
    wanted = int(spec.get("replicas", 1))
    return (
        int(st.get("observedGeneration") or 0) >= int(meta.get("generation") or 0)
        and int(st.get("updatedReplicas") or 0) >= wanted
        and int(st.get("replicas") or 0) <= wanted
        and int(st.get("availableReplicas") or 0) >= wanted
    )


def _unavailable(
    pods: list[dict[str, Any]], warnings: dict[str, str], wanted: int, counts: dict[str, Any]
) -> Finding:
    for pod in pods:
        name = str((pod.get("metadata") or {}).get("name"))
        if name in warnings:
            return Finding(
                DeploymentState.ERRORED,
                Status.FAILING,
                f"no replica available: pod {name}: {warnings[name]}",
                "ReadinessProbeFailed" if "eadiness" in warnings[name] else "Unhealthy",
                name,
                "server",
                data=counts,
            )
    return Finding(
        DeploymentState.LAUNCHING,
        Status.UNKNOWN,
        f"0 of {wanted} replicas available yet",
        data=counts,
    )
