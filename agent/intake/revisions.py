"""Generations for documents that do not carry their own.

A deployment's generation is the revision of the document in which its spec
last changed. Revisions only grow, so generations do too, across removals and
re-additions (the dispatcher gives a removal the deployment's generation + 1,
which is never more than the revision that removed it).
"""

from __future__ import annotations

from dataclasses import dataclass

from pilothouse.foundation.domain.desired import DesiredDeployment, DesiredState


@dataclass(frozen=True, slots=True)
class Revision:
    """A document with generations assigned."""

    number: int
    deployments: dict[str, DesiredDeployment]
    changed: int
    removed: int


class Revisions:
    """Assigns generations to successive versions of a desired-state document."""

    def __init__(self) -> None:
        self._number = 0
        self._known: dict[str, DesiredDeployment] = {}

    def assign(self, state: DesiredState) -> Revision:
        """Number ``state`` as the next revision and stamp changed deployments with it."""
        self._number += 1
        deployments: dict[str, DesiredDeployment] = {}
        changed = 0
        for dep in state.deployments:
            prev = self._known.get(dep.id)
            if dep.generation == 0 and prev is not None and prev.same_spec(dep):
                dep = prev
            elif dep.generation == 0:
                dep = dep.model_copy(update={"generation": self._number})
                changed += 1
            deployments[dep.id] = dep
        removed = len(self._known.keys() - deployments.keys())
        self._known = deployments
        return Revision(self._number, deployments, changed, removed)
