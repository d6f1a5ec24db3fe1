"""What the intake hands to the dispatcher: whole snapshots and single changes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pilothouse.foundation.domain.desired import DesiredDeployment


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The complete desired state: anything not in it should not run."""

    deployments: Mapping[str, DesiredDeployment]
    source: str


@dataclass(frozen=True, slots=True)
class Change:
    """One deployment's new desired state; ``desired=None`` means it is gone."""

    deployment_id: str
    desired: DesiredDeployment | None
    generation: int


IntakeItem = Snapshot | Change
