"""Desired state: what should run in a prediction environment.

These are the boundary models for the intake (file or hub). They are frozen so
a worker can keep the spec it last applied and compare it with a newer one.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from pilothouse.foundation.domain.vocabulary import DesiredRun

_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


def integral(value: object) -> object:
    """``3.0`` as ``3``: a JSON number without a fraction is an integer, as JSON Schema counts it.

    Lets a strictly validated integer field (the hub reads request bodies
    strictly) take what its JSON Schema allows; anything else passes unchanged.
    """
    return int(value) if isinstance(value, float) and value.is_integer() else value


Integer = Annotated[int, BeforeValidator(integral)]
"""An integer field that also takes an integral JSON number such as ``3.0``."""


class Resources(BaseModel):
    """Compute asked for each replica; interpretation is up to the plugin."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu: str | None = Field(default=None, description="CPU request, e.g. '500m' or '2'.")
    memory: str | None = Field(default=None, description="Memory request, e.g. '512Mi'.")


class DeploymentSettings(BaseModel):
    """How a deployment runs: replicas, resources, environment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    replicas: Integer = Field(default=1, ge=0, le=1000, description="Replicas to run.")
    resources: Resources = Field(default_factory=Resources)
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment.")


class DesiredDeployment(BaseModel):
    """One deployment as it should be."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=_ID_PATTERN, description="Stable deployment id.")
    name: str = Field(default="", description="Human-readable name.")
    model_package_id: str = Field(min_length=1, description="The champion model package.")
    challenger_ids: tuple[str, ...] = Field(default=(), description="Challenger packages.")
    state: DesiredRun = Field(default=DesiredRun.LAUNCHED)
    settings: DeploymentSettings = Field(default_factory=DeploymentSettings)
    generation: int = Field(default=0, ge=0, description="Bumped by every change.")
    relaunch_token: int = Field(
        default=0, ge=0, description="Changing it asks for a relaunch with the same spec."
    )

    def same_spec(self, other: DesiredDeployment) -> bool:
        """Tell whether two versions ask for the same thing, whatever their generations."""
        return self._spec() == other._spec()

    def _spec(self) -> tuple[object, ...]:
        return (
            self.name,
            self.model_package_id,
            self.challenger_ids,
            self.state,
            self.settings,
            self.relaunch_token,
        )


class PredictionEnvironmentRef(BaseModel):
    """The PE a desired-state document is for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=_ID_PATTERN)
    name: str = ""


class DesiredState(BaseModel):
    """The whole desired state of one prediction environment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prediction_environment: PredictionEnvironmentRef | None = None
    deployments: tuple[DesiredDeployment, ...] = ()

    @field_validator("deployments")
    @classmethod
    def _unique_ids(cls, value: tuple[DesiredDeployment, ...]) -> tuple[DesiredDeployment, ...]:
        seen: set[str] = set()
        for dep in value:
            if dep.id in seen:
                raise ValueError(f"deployment id {dep.id!r} appears more than once")
            seen.add(dep.id)
        return value

    def by_id(self) -> dict[str, DesiredDeployment]:
        """Index the deployments by id."""
        return {d.id: d for d in self.deployments}
