"""Which state follows which, and which action a desired change calls for.

Pure functions drive every deployment worker:

* :func:`decide` looks at what is observed and what is desired and names the one
  action that moves the deployment closer (or ``None`` when it has converged);
* :func:`transition` moves the observed state on a trigger, by the explicit
  table :data:`TRANSITIONS`, and refuses anything the table does not list;
* :func:`observe` folds a finding (a health check, a plugin's report, what
  reconcile found at start) into the state and health, by the same table:
  what the plugin found becomes a trigger (:data:`FINDINGS`), and a finding
  the table does not list for the current state leaves it where it is;
* :func:`health` and :func:`event_status` give each state its one health and
  its one event status (:data:`STATE_HEALTH`), whoever found the state: a
  ``ready`` reached by an action and one found by a health check read alike.

Keeping them free of I/O means the whole lifecycle is tested without an event
loop, and a worker is only the glue that runs the action the machine chose.
"""

from __future__ import annotations

from enum import StrEnum

from pilothouse.agent.errors import InvalidTransitionError
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.vocabulary import Action, DeploymentState, DesiredRun, Status

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
    FOUND_UNSETTLED = "found_unsettled"
    """The plugin reports the deployment neither ready nor stopped nor broken: an action
    of its own half done (launching, replacing, stopping), or a state it cannot tell."""


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
    # Nothing known yet (the agent just started) and the plugin is half-way through
    # something, or cannot tell: treat it as broken, so it is redone from scratch. In
    # any other state such a finding moves nothing (a health check that could not tell).
    (S.UNKNOWN, Trigger.FOUND_UNSETTLED): S.ERRORED,
}

TRANSITIONAL: frozenset[DeploymentState] = frozenset(
    {S.LAUNCHING, S.REPLACING_MODEL, S.SHUTTING_DOWN}
)
"""States in which an action is in flight; observations wait until it ends."""

FINDINGS: dict[DeploymentState, Trigger] = {
    S.READY: Trigger.FOUND_RUNNING,
    S.STOPPED: Trigger.FOUND_STOPPED,
    S.ERRORED: Trigger.FOUND_BROKEN,
    S.UNKNOWN: Trigger.FOUND_UNSETTLED,
    S.LAUNCHING: Trigger.FOUND_UNSETTLED,
    S.REPLACING_MODEL: Trigger.FOUND_UNSETTLED,
    S.SHUTTING_DOWN: Trigger.FOUND_UNSETTLED,
}
"""What a state reported by the plugin means to the machine."""

STATE_HEALTH: dict[DeploymentState, Status | None] = {
    S.READY: None,
    S.ERRORED: Status.FAILING,
    S.STOPPED: Status.UNKNOWN,
    S.UNKNOWN: Status.UNKNOWN,
}
"""The health a deployment has in each settled state; ``None``: the health the plugin
reports (a ready deployment may be ``at_risk``). A transitional state keeps the
health it had until its action ends."""

_EVENT_STATUS: dict[DeploymentState, Status] = {
    S.ERRORED: Status.FAILING,
    S.UNKNOWN: Status.UNKNOWN,
}
"""The status of ``deployment.<state>`` events, other than ``ready`` (its health)
and the informational rest (an action under way, a deliberate stop)."""


def transition(state: DeploymentState, trigger: Trigger) -> DeploymentState:
    """Return the state that ``trigger`` leads to from ``state``, by the table."""
    try:
        return TRANSITIONS[(state, trigger)]
    except KeyError:
        raise InvalidTransitionError(state, trigger) from None


def start_trigger(action: Action) -> Trigger:
    """Name the trigger that starting ``action`` fires."""
    return _STARTS[action]


def observe(
    state: DeploymentState, status: Status, found: DeploymentState, reported: Status
) -> tuple[DeploymentState, Status]:
    """The state and health of a deployment in ``state`` that the plugin found ``found``.

    A finding made while an action is in flight changes nothing (the action's
    outcome tells); one that the table does not list for ``state`` moves no
    state but still brings its health.
    """
    if state in TRANSITIONAL:
        return state, status
    new = TRANSITIONS.get((state, FINDINGS[found]), state)
    return new, health(new, reported, status)


def health(state: DeploymentState, reported: Status, current: Status) -> Status:
    """The one health of a deployment in ``state`` when the plugin reports ``reported``."""
    if state in TRANSITIONAL:
        return current
    fixed = STATE_HEALTH[state]
    if fixed is not None:
        return fixed
    return Status.PASSING if reported is Status.INFORMATIONAL else reported


def event_status(state: DeploymentState, health_now: Status) -> Status:
    """The status of the ``deployment.<state>`` event: the same wherever the state was found."""
    if state is S.READY:
        return health_now
    return _EVENT_STATUS.get(state, Status.INFORMATIONAL)


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
