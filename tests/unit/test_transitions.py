"""The pure deployment state machine, as tables: no event loop involved."""

from __future__ import annotations

import itertools

import pytest

from pilothouse.agent.errors import InvalidTransitionError
from pilothouse.agent.machine.transitions import (
    TRANSITIONAL,
    TRANSITIONS,
    Trigger,
    decide,
    event_status,
    health,
    observe,
    start_trigger,
    transition,
)
from pilothouse.foundation.domain.desired import DeploymentSettings, DesiredDeployment, Resources
from pilothouse.foundation.domain.vocabulary import Action, DeploymentState, DesiredRun, Status

S = DeploymentState
T = Trigger
H = Status

BASE = DesiredDeployment(id="dep-1", name="fraud", model_package_id="pkg-1", generation=3)
STOPPED_SPEC = BASE.model_copy(update={"state": DesiredRun.STOPPED, "generation": 4})

EXPECTED_TRANSITIONS = {
    (S.STOPPED, T.LAUNCH): S.LAUNCHING,
    (S.UNKNOWN, T.LAUNCH): S.LAUNCHING,
    (S.ERRORED, T.LAUNCH): S.LAUNCHING,
    (S.READY, T.RELAUNCH): S.LAUNCHING,
    (S.ERRORED, T.RELAUNCH): S.LAUNCHING,
    (S.UNKNOWN, T.RELAUNCH): S.LAUNCHING,
    (S.READY, T.REPLACE_MODEL): S.REPLACING_MODEL,
    (S.READY, T.STOP): S.SHUTTING_DOWN,
    (S.ERRORED, T.STOP): S.SHUTTING_DOWN,
    (S.UNKNOWN, T.STOP): S.SHUTTING_DOWN,
    (S.LAUNCHING, T.SUCCEEDED): S.READY,
    (S.LAUNCHING, T.FAILED): S.ERRORED,
    (S.REPLACING_MODEL, T.SUCCEEDED): S.READY,
    (S.REPLACING_MODEL, T.ROLLED_BACK): S.READY,
    (S.REPLACING_MODEL, T.FAILED): S.ERRORED,
    (S.SHUTTING_DOWN, T.SUCCEEDED): S.STOPPED,
    (S.SHUTTING_DOWN, T.FAILED): S.ERRORED,
    (S.LAUNCHING, T.CANCELLED): S.UNKNOWN,
    (S.REPLACING_MODEL, T.CANCELLED): S.UNKNOWN,
    (S.SHUTTING_DOWN, T.CANCELLED): S.UNKNOWN,
    (S.UNKNOWN, T.FOUND_RUNNING): S.READY,
    (S.READY, T.FOUND_RUNNING): S.READY,
    (S.ERRORED, T.FOUND_RUNNING): S.READY,
    (S.STOPPED, T.FOUND_RUNNING): S.READY,
    (S.UNKNOWN, T.FOUND_STOPPED): S.STOPPED,
    (S.STOPPED, T.FOUND_STOPPED): S.STOPPED,
    (S.READY, T.FOUND_STOPPED): S.ERRORED,
    (S.ERRORED, T.FOUND_STOPPED): S.ERRORED,
    (S.UNKNOWN, T.FOUND_BROKEN): S.ERRORED,
    (S.READY, T.FOUND_BROKEN): S.ERRORED,
    (S.ERRORED, T.FOUND_BROKEN): S.ERRORED,
    (S.STOPPED, T.FOUND_BROKEN): S.ERRORED,
    (S.UNKNOWN, T.FOUND_UNSETTLED): S.ERRORED,
}

ABSENT = sorted(pair for pair in itertools.product(S, T) if pair not in EXPECTED_TRANSITIONS)


def _ids(pair: tuple[DeploymentState, Trigger]) -> str:
    return f"{pair[0]}-{pair[1]}"


def test_table_lists_exactly_the_expected_transitions() -> None:
    assert TRANSITIONS == EXPECTED_TRANSITIONS


@pytest.mark.parametrize(
    ("state", "trigger", "after"),
    [(s, t, a) for (s, t), a in EXPECTED_TRANSITIONS.items()],
    ids=[_ids(p) for p in EXPECTED_TRANSITIONS],
)
def test_listed_transition_leads_to_its_state(
    state: DeploymentState, trigger: Trigger, after: DeploymentState
) -> None:
    assert transition(state, trigger) is after


@pytest.mark.parametrize(("state", "trigger"), ABSENT, ids=[_ids(p) for p in ABSENT])
def test_unlisted_transition_is_refused(state: DeploymentState, trigger: Trigger) -> None:
    with pytest.raises(InvalidTransitionError) as info:
        transition(state, trigger)
    assert info.value.state == state
    assert info.value.trigger == trigger
    assert str(state) in str(info.value)
    assert str(trigger) in str(info.value)


def test_observations_are_refused_while_an_action_is_in_flight() -> None:
    for state in TRANSITIONAL:
        for trigger in (T.FOUND_RUNNING, T.FOUND_STOPPED, T.FOUND_BROKEN, T.FOUND_UNSETTLED):
            with pytest.raises(InvalidTransitionError):
                transition(state, trigger)


@pytest.mark.parametrize(
    ("action", "trigger"),
    [
        (Action.LAUNCH, T.LAUNCH),
        (Action.RELAUNCH, T.RELAUNCH),
        (Action.REPLACE_MODEL, T.REPLACE_MODEL),
        (Action.STOP, T.STOP),
    ],
)
def test_each_action_starts_with_its_trigger(action: Action, trigger: Trigger) -> None:
    assert start_trigger(action) is trigger


def _changed(**update: object) -> DesiredDeployment:
    return BASE.model_copy(update={"generation": BASE.generation + 1, **update})


Spec = DesiredDeployment | None

DECISIONS: list[tuple[str, DeploymentState, Spec, Spec, Action | None]] = [
    # Not running and wanted: launch, whatever was applied before.
    ("stopped-wanted", S.STOPPED, None, BASE, Action.LAUNCH),
    ("stopped-wanted-applied-known", S.STOPPED, BASE, BASE, Action.LAUNCH),
    ("unknown-wanted", S.UNKNOWN, None, BASE, Action.LAUNCH),
    ("unknown-wanted-applied-known", S.UNKNOWN, BASE, BASE, Action.LAUNCH),
    # Errored: relaunch, even when the spec did not change.
    ("errored-same-spec", S.ERRORED, BASE, BASE, Action.RELAUNCH),
    ("errored-nothing-applied", S.ERRORED, None, BASE, Action.RELAUNCH),
    ("errored-new-model", S.ERRORED, BASE, _changed(model_package_id="pkg-2"), Action.RELAUNCH),
    # Ready: compare applied with desired.
    ("ready-nothing-applied", S.READY, None, BASE, Action.RELAUNCH),
    ("ready-new-champion", S.READY, BASE, _changed(model_package_id="pkg-2"), Action.REPLACE_MODEL),
    (
        "ready-new-challenger",
        S.READY,
        BASE,
        _changed(challenger_ids=("pkg-9",)),
        Action.REPLACE_MODEL,
    ),
    (
        "ready-challenger-removed",
        S.READY,
        BASE.model_copy(update={"challenger_ids": ("pkg-9",)}),
        BASE,
        Action.REPLACE_MODEL,
    ),
    (
        "ready-new-replicas",
        S.READY,
        BASE,
        _changed(settings=DeploymentSettings(replicas=3)),
        Action.RELAUNCH,
    ),
    (
        "ready-new-resources",
        S.READY,
        BASE,
        _changed(settings=DeploymentSettings(resources=Resources(cpu="2"))),
        Action.RELAUNCH,
    ),
    (
        "ready-new-env",
        S.READY,
        BASE,
        _changed(settings=DeploymentSettings(env={"A": "1"})),
        Action.RELAUNCH,
    ),
    ("ready-relaunch-token", S.READY, BASE, _changed(relaunch_token=1), Action.RELAUNCH),
    # Converged: nothing to do, even when only the name or generation moved.
    ("ready-converged", S.READY, BASE, BASE, None),
    ("ready-only-generation", S.READY, BASE, _changed(), None),
    ("ready-only-name", S.READY, BASE, _changed(name="renamed"), None),
    # Gone or asked to stop: stop, unless already stopped.
    ("ready-gone", S.READY, BASE, None, Action.STOP),
    ("errored-gone", S.ERRORED, BASE, None, Action.STOP),
    ("unknown-gone", S.UNKNOWN, None, None, Action.STOP),
    ("stopped-gone", S.STOPPED, None, None, None),
    ("ready-desired-stopped", S.READY, BASE, STOPPED_SPEC, Action.STOP),
    ("errored-desired-stopped", S.ERRORED, BASE, STOPPED_SPEC, Action.STOP),
    ("unknown-desired-stopped", S.UNKNOWN, None, STOPPED_SPEC, Action.STOP),
    ("stopped-desired-stopped", S.STOPPED, None, STOPPED_SPEC, None),
    ("stopped-desired-stopped-applied", S.STOPPED, BASE, STOPPED_SPEC, None),
]


@pytest.mark.parametrize(
    ("state", "applied", "desired", "expected"),
    [row[1:] for row in DECISIONS],
    ids=[row[0] for row in DECISIONS],
)
def test_decide_names_the_action_that_converges(
    state: DeploymentState,
    applied: DesiredDeployment | None,
    desired: DesiredDeployment | None,
    expected: Action | None,
) -> None:
    assert decide(state, applied, desired) is expected


@pytest.mark.parametrize("state", sorted(TRANSITIONAL))
@pytest.mark.parametrize(
    ("applied", "desired"),
    [
        (None, None),
        (BASE, None),
        (None, BASE),
        (BASE, BASE),
        (BASE, _changed(model_package_id="pkg-2")),
        (BASE, _changed(relaunch_token=5)),
        (BASE, STOPPED_SPEC),
    ],
    ids=["gone", "gone-applied", "new", "same", "new-model", "relaunch", "stop"],
)
def test_decide_waits_while_an_action_is_in_flight(
    state: DeploymentState,
    applied: DesiredDeployment | None,
    desired: DesiredDeployment | None,
) -> None:
    assert decide(state, applied, desired) is None


SPEC_PAIRS = [(applied, desired) for _, _, applied, desired, _ in DECISIONS]


@pytest.mark.parametrize("state", list(S))
def test_every_decided_action_can_start_from_the_state_it_was_decided_in(
    state: DeploymentState,
) -> None:
    for applied, desired in SPEC_PAIRS:
        action = decide(state, applied, desired)
        if action is not None:
            assert transition(state, start_trigger(action)) in TRANSITIONAL


# --- findings: (state, health) + (found state, reported health) -> (state, health) -----------

OBSERVATIONS: list[
    tuple[str, DeploymentState, Status, DeploymentState, Status, DeploymentState, Status]
] = [
    # A running deployment: its health is what the plugin reports; a crash report is failing.
    ("ready-still-ready", S.READY, H.PASSING, S.READY, H.PASSING, S.READY, H.PASSING),
    ("ready-degraded", S.READY, H.PASSING, S.READY, H.AT_RISK, S.READY, H.AT_RISK),
    ("ready-crashed", S.READY, H.PASSING, S.READY, H.FAILING, S.READY, H.FAILING),
    ("ready-recovered", S.READY, H.FAILING, S.READY, H.PASSING, S.READY, H.PASSING),
    ("ready-unreadable", S.READY, H.PASSING, S.READY, H.UNKNOWN, S.READY, H.UNKNOWN),
    ("ready-informational", S.READY, H.FAILING, S.READY, H.INFORMATIONAL, S.READY, H.PASSING),
    # Gone or broken while it should run: errored, and failing whatever the report says.
    ("ready-vanished", S.READY, H.PASSING, S.STOPPED, H.UNKNOWN, S.ERRORED, H.FAILING),
    ("ready-broken", S.READY, H.PASSING, S.ERRORED, H.AT_RISK, S.ERRORED, H.FAILING),
    ("errored-still-gone", S.ERRORED, H.FAILING, S.STOPPED, H.UNKNOWN, S.ERRORED, H.FAILING),
    ("errored-found-running", S.ERRORED, H.FAILING, S.READY, H.PASSING, S.READY, H.PASSING),
    # The plugin half-way through something of its own, or unable to tell: no move.
    ("ready-plugin-busy", S.READY, H.PASSING, S.LAUNCHING, H.FAILING, S.READY, H.FAILING),
    ("ready-plugin-unsure", S.READY, H.PASSING, S.UNKNOWN, H.UNKNOWN, S.READY, H.UNKNOWN),
    ("stopped-still-stopped", S.STOPPED, H.UNKNOWN, S.STOPPED, H.UNKNOWN, S.STOPPED, H.UNKNOWN),
    ("stopped-found-running", S.STOPPED, H.UNKNOWN, S.READY, H.PASSING, S.READY, H.PASSING),
    # Reconcile at start: from nothing known.
    ("start-running", S.UNKNOWN, H.UNKNOWN, S.READY, H.PASSING, S.READY, H.PASSING),
    ("start-stopped", S.UNKNOWN, H.UNKNOWN, S.STOPPED, H.UNKNOWN, S.STOPPED, H.UNKNOWN),
    ("start-broken", S.UNKNOWN, H.UNKNOWN, S.ERRORED, H.FAILING, S.ERRORED, H.FAILING),
    ("start-half-done", S.UNKNOWN, H.UNKNOWN, S.REPLACING_MODEL, H.PASSING, S.ERRORED, H.FAILING),
    ("start-unsure", S.UNKNOWN, H.UNKNOWN, S.UNKNOWN, H.UNKNOWN, S.ERRORED, H.FAILING),
    # While an action is in flight a finding changes nothing: the action's outcome tells.
    ("launching", S.LAUNCHING, H.UNKNOWN, S.STOPPED, H.UNKNOWN, S.LAUNCHING, H.UNKNOWN),
    ("replacing", S.REPLACING_MODEL, H.PASSING, S.READY, H.FAILING, S.REPLACING_MODEL, H.PASSING),
    ("stopping", S.SHUTTING_DOWN, H.PASSING, S.ERRORED, H.FAILING, S.SHUTTING_DOWN, H.PASSING),
]


@pytest.mark.parametrize(
    ("state", "status", "found", "reported", "after", "after_status"),
    [row[1:] for row in OBSERVATIONS],
    ids=[row[0] for row in OBSERVATIONS],
)
def test_a_finding_moves_state_and_health_by_the_table(
    state: DeploymentState,
    status: Status,
    found: DeploymentState,
    reported: Status,
    after: DeploymentState,
    after_status: Status,
) -> None:
    assert observe(state, status, found, reported) == (after, after_status)


@pytest.mark.parametrize("found", list(S))
@pytest.mark.parametrize("state", sorted(set(S) - TRANSITIONAL))
def test_every_finding_leads_where_the_transition_table_says(
    state: DeploymentState, found: DeploymentState
) -> None:
    new, _ = observe(state, H.PASSING, found, H.PASSING)
    assert new is state or new in EXPECTED_TRANSITIONS.values()
    assert new is state or any(
        EXPECTED_TRANSITIONS.get((state, t)) is new
        for t in (T.FOUND_RUNNING, T.FOUND_STOPPED, T.FOUND_BROKEN, T.FOUND_UNSETTLED)
    )


# One status per state, however the state was reached (an action or a finding).
EVENT_STATUSES = [
    (S.READY, H.PASSING, H.PASSING),
    (S.READY, H.AT_RISK, H.AT_RISK),
    (S.ERRORED, H.PASSING, H.FAILING),
    (S.ERRORED, H.FAILING, H.FAILING),
    (S.UNKNOWN, H.PASSING, H.UNKNOWN),
    (S.STOPPED, H.UNKNOWN, H.INFORMATIONAL),
    (S.LAUNCHING, H.PASSING, H.INFORMATIONAL),
    (S.REPLACING_MODEL, H.PASSING, H.INFORMATIONAL),
    (S.SHUTTING_DOWN, H.PASSING, H.INFORMATIONAL),
]


@pytest.mark.parametrize(("state", "health_now", "expected"), EVENT_STATUSES)
def test_each_state_event_has_one_status(
    state: DeploymentState, health_now: Status, expected: Status
) -> None:
    assert event_status(state, health_now) is expected


def test_a_ready_found_by_a_check_reads_like_a_ready_reached_by_an_action() -> None:
    reached = health(transition(S.LAUNCHING, T.SUCCEEDED), H.PASSING, H.UNKNOWN)
    found = observe(S.ERRORED, H.FAILING, S.READY, H.PASSING)[1]
    assert reached is found is H.PASSING
    assert event_status(S.READY, reached) is event_status(S.READY, found) is H.PASSING


@pytest.mark.parametrize("state", sorted(TRANSITIONAL))
def test_an_action_under_way_keeps_the_health_it_had(state: DeploymentState) -> None:
    assert health(state, H.FAILING, H.AT_RISK) is H.AT_RISK
