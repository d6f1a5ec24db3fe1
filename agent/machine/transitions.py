"""Which state follows which, and which action a desired change calls for.

Two pure functions drive every deployment worker:

* :func:`decide` looks at what is observed and what is desired and names the one
  action that moves the deployment closer (or ``None`` when it has converged);
* :func:`transition` moves the observed state on a trigger, by the explicit
  table :data:`TRANSITIONS`, and refuses anything the table does not list.

Keeping both free of I/O means the whole lifecycle is tested without an event
loop, and a worker is only the glue that runs the action the machine chose.
"""

from __future__ import annotations

from enum import StrEnum

from pilothouse.agent.errors import InvalidTransitionError
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.vocabulary import Action, DeploymentState, DesiredRun

S = DeploymentState


class Trigger(StrEnum):
    """What can happen to a deployment."""

    LAUNCH = "launch"
    """A launch action starts."""
    RELAUNCH = "relaunch"
    """A relaunch (stop, then launch with the current spec) starts."""
    REPLACE_MODEL = "replace_model"
    """A model replacement starts."""
    STOP = "stop"
    """A stop action starts."""
    SUCCEEDED = "succeeded"
    """The action in flight finished well."""
    FAILED = "failed"
    """The action in flight failed; nothing can be assumed about what runs."""
    ROLLED_BACK = "rolled_back"
    """A replacement failed but the old model is still serving."""
    CANCELLED = "cancelled"
    """The action in flight was cancelled (shutdown); what runs is not known."""
    FOUND_RUNNING = "found_running"
    """The plugin reports the deployment running and healthy enough to serve."""
    FOUND_STOPPED = "found_stopped"
    """The plugin reports nothing running for the deployment."""
    FOUND_BROKEN = "found_broken"
    """The plugin reports the deployment present but broken."""


_STARTS: dict[Action, Trigger] = {
    Action.LAUNCH: Trigger.LAUNCH,
    Action.RELAUNCH: Trigger.RELAUNCH,
    Action.REPLACE_MODEL: Trigger.REPLACE_MODEL,
    Action.STOP: Trigger.STOP,
}

TRANSITIONS: dict[tuple[DeploymentState, Trigger], DeploymentState] = {
    # Starting actions.
    (S.STOPPED, Trigger.LAUNCH): S.LAUNCHING,
    (S.UNKNOWN, Trigger.LAUNCH): S.LAUNCHING,
    (S.ERRORED, Trigger.LAUNCH): S.LAUNCHING,
    (S.READY, Trigger.RELAUNCH): S.LAUNCHING,
    (S.ERRORED, Trigger.RELAUNCH): S.LAUNCHING,
    (S.UNKNOWN, Trigger.RELAUNCH): S.LAUNCHING,
    (S.READY, Trigger.REPLACE_MODEL): S.REPLACING_MODEL,
    (S.READY, Trigger.STOP): S.SHUTTING_DOWN,
    (S.ERRORED, Trigger.STOP): S.SHUTTING_DOWN,
    (S.UNKNOWN, Trigger.STOP): S.SHUTTING_DOWN,
    # Finishing actions.
    (S.LAUNCHING, Trigger.SUCCEEDED): S.READY,
    (S.LAUNCHING, Trigger.FAILED): S.ERRORED,
    (S.REPLACING_MODEL, Trigger.SUCCEEDED): S.READY,
    (S.REPLACING_MODEL, Trigger.ROLLED_BACK): S.READY,
    (S.REPLACING_MODEL, Trigger.FAILED): S.ERRORED,
    (S.SHUTTING_DOWN, Trigger.SUCCEEDED): S.STOPPED,
    (S.SHUTTING_DOWN, Trigger.FAILED): S.ERRORED,
    (S.LAUNCHING, Trigger.CANCELLED): S.UNKNOWN,
    (S.REPLACING_MODEL, Trigger.CANCELLED): S.UNKNOWN,
    (S.SHUTTING_DOWN, Trigger.CANCELLED): S.UNKNOWN,
    # Observations (reconcile, health checks) of a deployment with no action in flight.
    (S.UNKNOWN, Trigger.FOUND_RUNNING): S.READY,
    (S.READY, Trigger.FOUND_RUNNING): S.READY,
    (S.ERRORED, Trigger.FOUND_RUNNING): S.READY,
    (S.STOPPED, Trigger.FOUND_RUNNING): S.READY,
    (S.UNKNOWN, Trigger.FOUND_STOPPED): S.STOPPED,
    (S.STOPPED, Trigger.FOUND_STOPPED): S.STOPPED,
    (S.READY, Trigger.FOUND_STOPPED): S.ERRORED,
    (S.ERRORED, Trigger.FOUND_STOPPED): S.ERRORED,
    (S.UNKNOWN, Trigger.FOUND_BROKEN): S.ERRORED,
    (S.READY, Trigger.FOUND_BROKEN): S.ERRORED,
    (S.ERRORED, Trigger.FOUND_BROKEN): S.ERRORED,
    (S.STOPPED, Trigger.FOUND_BROKEN): S.ERRORED,
}

TRANSITIONAL: frozenset[DeploymentState] = frozenset(
    {S.LAUNCHING, S.REPLACING_MODEL, S.SHUTTING_DOWN}
)
"""States in which an action is in flight; observations wait until it ends."""


def transition(state: DeploymentState, trigger: Trigger) -> DeploymentState:
    """Return the state that ``trigger`` leads to from ``state``, by the table."""
    try:
        return TRANSITIONS[(state, trigger)]
    except KeyError:
        raise InvalidTransitionError(state, trigger) from None


def start_trigger(action: Action) -> Trigger:
    """Name the trigger that starting ``action`` fires."""
    return _STARTS[action]


def decide(
    state: DeploymentState,
    applied: DesiredDeployment | None,
    desired: DesiredDeployment | None,
) -> Action | None:
    """Choose the next action for a deployment, or ``None`` when nothing is to be done.

    ``applied`` is the spec the deployment last reached (what runs, when it
    runs), ``desired`` what should be (``None``: the deployment is gone).
    """
    if state in TRANSITIONAL:
        return None
    if desired is None or desired.state is DesiredRun.STOPPED:
        return None if state is S.STOPPED else Action.STOP
    if state in (S.STOPPED, S.UNKNOWN):
        return Action.LAUNCH
    if state is S.ERRORED or applied is None:
        return Action.RELAUNCH
    if (applied.model_package_id, applied.challenger_ids) != (
        desired.model_package_id,
        desired.challenger_ids,
    ):
        return Action.REPLACE_MODEL
    if (applied.settings, applied.relaunch_token) != (desired.settings, desired.relaunch_token):
        return Action.RELAUNCH
    return None
