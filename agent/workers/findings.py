"""Findings: what was seen of a deployment outside its worker, on its way into the worker.

A deployment has one writer, its worker. The health reporter's checks, a
plugin's own reports (``ctx.report``) and what reconcile found at start do not
touch the deployment's record: each becomes a :class:`Finding` in the worker's
inbox, next to the desired changes, and the worker folds it in by the state
machine (:func:`pilothouse.agent.machine.transitions.observe`), emits the
events and decides what to do about it. So a state has one status wherever it
was found, and no finding can race an action.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pilothouse.agent.machine import transitions
from pilothouse.agent.plugin import DeploymentReport
from pilothouse.agent.workers.records import DeploymentRecord
from pilothouse.foundation.domain.desired import DesiredDeployment


class FindingSource(StrEnum):
    """Who found it; events say so."""

    HEALTH_CHECK = "a health check"
    PLUGIN = "the plugin"
    RECONCILE = "reconcile"


@dataclass(frozen=True, slots=True)
class Finding:
    """What the plugin reported of one deployment, and when that was."""

    report: DeploymentReport
    source: FindingSource
    stamp: int
    """The record's :attr:`~DeploymentRecord.stamp` when the observation began."""
    applied: DesiredDeployment | None = None
    """Reconcile only: the spec that runs, as far as it can be proven."""
    adopt: bool = False
    """Reconcile only: an orphan to keep as it runs (``reconcile.orphans=adopt``)."""


def news(rec: DeploymentRecord, report: DeploymentReport) -> bool:
    """Tell whether ``report`` would change ``rec`` (a cheap test before waking a worker)."""
    return transitions.observe(rec.state, rec.status, report.state, report.status) != (
        rec.state,
        rec.status,
    )
