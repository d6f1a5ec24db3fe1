"""What an action asks of a deployment's desired state, as pure functions.

Every change bumps the generation by one, so the agent can tell a newer wish
from an older one and drop a superseded pending change. ``launch`` and
``stop`` set the desired run state, ``replace_model`` changes the champion
(and clears the record of a rollback: the restored champion no longer
stands), ``relaunch`` changes the relaunch token (and asks for the deployment
to run), and any of them may replace the challengers. Deleting is one more
change: the tombstone's generation grows too.
"""

from __future__ import annotations

from typing import Any

from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.vocabulary import Action, DesiredRun
from pilothouse.hub.api.schemas import ActionRequest, DeploymentCreate
from pilothouse.hub.errors import InvalidInput


def first(deployment_id: str, body: DeploymentCreate) -> DesiredDeployment:
    """A new deployment's desired state: launched, generation 1."""
    return DesiredDeployment(
        id=deployment_id,
        name=body.name,
        model_package_id=body.model_package_id,
        challenger_ids=tuple(body.challenger_ids),
        state=DesiredRun.LAUNCHED,
        settings=body.settings,
        generation=1,
    )


def check(request: ActionRequest) -> None:
    """``InvalidInput`` unless ``model_package_id`` is given exactly for ``replace_model``."""
    if request.action is Action.REPLACE_MODEL and not request.model_package_id:
        raise InvalidInput.field("model_package_id", "required for replace_model")
    if request.action is not Action.REPLACE_MODEL and request.model_package_id is not None:
        raise InvalidInput.field(
            "model_package_id", "only replace_model takes a model package", request.model_package_id
        )


def apply(desired: DesiredDeployment, request: ActionRequest) -> DesiredDeployment:
    """The desired state after ``request`` (checked already), one generation later."""
    update: dict[str, Any] = {"generation": desired.generation + 1}
    if request.action is Action.LAUNCH:
        update["state"] = DesiredRun.LAUNCHED
    elif request.action is Action.STOP:
        update["state"] = DesiredRun.STOPPED
    elif request.action is Action.REPLACE_MODEL:
        update["model_package_id"] = request.model_package_id
        update["rollback"] = None  # a user's new champion: the rollback no longer stands
    else:
        update["state"] = DesiredRun.LAUNCHED
        update["relaunch_token"] = desired.relaunch_token + 1
    if request.challenger_ids is not None:
        update["challenger_ids"] = tuple(request.challenger_ids)
    return desired.model_copy(update=update)


def removed(desired: DesiredDeployment) -> DesiredDeployment:
    """The tombstone of a deleted deployment: one generation later."""
    return desired.model_copy(update={"generation": desired.generation + 1})


def describe(before: DesiredDeployment, after: DesiredDeployment, action: Action) -> dict[str, Any]:
    """The data of the event recording an action."""
    data: dict[str, Any] = {"action": action.value, "generation": after.generation}
    if after.model_package_id != before.model_package_id:
        data["model_package_id"] = after.model_package_id
        data["previous_model_package_id"] = before.model_package_id
    if after.challenger_ids != before.challenger_ids:
        data["challenger_ids"] = list(after.challenger_ids)
    if after.state != before.state:
        data["state"] = after.state.value
    return data
