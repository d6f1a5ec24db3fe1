"""What the agent knows of each deployment; it outlives the deployment's worker.

Only the deployment's worker writes the observed part of a record (state,
status, applied spec, what serves it); the dispatcher keeps its routing
fields; everyone else reads, and sends what they find to the worker.
"""

from __future__ import annotations

from dataclasses import dataclass

from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.vocabulary import DeploymentState, Status


@dataclass(slots=True)
class DeploymentRecord:
    """The agent's view of one deployment: desired, applied and observed."""

    id: str
    state: DeploymentState = DeploymentState.UNKNOWN
    status: Status = Status.UNKNOWN
    generation: int = 0
    """The newest generation accepted for this deployment."""
    routed_generation: int = 0
    """The newest generation the dispatcher routed to the worker (maybe not yet absorbed)."""
    routed_removal: bool = False
    """The last change routed was a removal."""
    desired: DesiredDeployment | None = None
    """What should be; ``None`` once the deployment is gone from the desired state."""
    applied: DesiredDeployment | None = None
    """The spec the deployment last reached (``None`` when nothing runs, or not known)."""
    model_package_id: str | None = None
    prediction_url: str | None = None
    grpc_target: str | None = None
    message: str = ""
    failures: int = 0
    """Consecutive failed actions for the current generation."""
    busy: bool = False
    """An action is in flight."""
    actions_started: int = 0
    """Actions started so far; an observation made before the latest one is stale."""
    adopted: bool = False
    """Found running at start and adopted: kept although no snapshot lists it."""

    @property
    def stamp(self) -> int:
        """Stamp of an observation made now: stale once another action starts or ends.

        An observation made while an action is in flight is stale from the start:
        the action's own outcome is newer than anything seen during it.
        """
        return -1 if self.busy else self.actions_started

    def spec_for_stop(self) -> DesiredDeployment:
        """The best spec available to name this deployment in a stop action."""
        if self.desired is not None:
            return self.desired
        if self.applied is not None:
            return self.applied
        return DesiredDeployment(id=self.id, model_package_id=self.model_package_id or "unknown")
