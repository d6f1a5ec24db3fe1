"""Desired state: what should run in a prediction environment.

These are the boundary models for the intake (file or hub). They are frozen so
a worker can keep the spec it last applied and compare it with a newer one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar

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


class ChallengerSettings(BaseModel):
    """How challengers see the champion's traffic."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mirror_percent: float = Field(
        default=100.0, ge=0, le=100, description="Share of requests replayed on challengers."
    )


class RollbackSettings(BaseModel):
    """When the agent undoes a replacement by itself (the health-gated guard)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(default=True, description="Watch every replacement.")
    guard_s: float = Field(default=300.0, ge=0, description="How long a new model is watched.")
    max_error_rate_increase: float = Field(
        default=0.05, ge=0, le=1, description="Error-rate rise (absolute) that is a regression."
    )
    max_error_rate_ratio: float = Field(
        default=2.0, ge=1, description="...and at least this many times the old rate."
    )
    max_p99_ratio: float = Field(default=2.0, ge=1, description="p99 latency rise that regresses.")
    min_requests: Integer = Field(
        default=20, ge=1, description="Requests the new model must have seen before judging."
    )


class DriftSettings(BaseModel):
    """When feature drift changes a deployment's status (PSI over a recent window)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at_risk_psi: float = Field(default=0.1, ge=0, description="PSI from which it is at_risk.")
    failing_psi: float = Field(default=0.25, ge=0, description="PSI from which it is failing.")
    min_rows: Integer = Field(default=100, ge=1, description="Rows needed before judging.")
    window_s: float = Field(default=300.0, gt=0, description="How far back drift is measured.")


class RetrainingSettings(BaseModel):
    """What asks for a new model, and how (see the hub's retraining trigger)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    on_drift_failing: bool = Field(default=False, description="Trigger when drift is failing.")
    accuracy_below: float | None = Field(
        default=None, ge=0, le=1, description="Trigger when accuracy from actuals drops below."
    )
    every_s: float | None = Field(default=None, gt=0, description="Trigger on a schedule.")
    webhook_url: str | None = Field(default=None, max_length=2000, description="Signed POST.")
    command: tuple[str, ...] | None = Field(default=None, description="Run by the hub instead.")
    cooldown_s: float = Field(default=86400.0, ge=0, description="At most one trigger per.")


_Frozen = TypeVar("_Frozen", bound=BaseModel)


def _shared(model: type[_Frozen]) -> Callable[[], _Frozen]:
    """A default factory that hands out one instance of a frozen model to every field it fills.

    An agent holds thousands of desired deployments, nearly all with default
    settings: one shared instance instead of eight models each keeps them out of
    memory and out of every garbage collection (frozen: nobody can change it).
    """
    instance = model()
    return lambda: instance


class DeploymentSettings(BaseModel):
    """How a deployment runs: replicas, resources, environment, monitoring policies."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    replicas: Integer = Field(default=1, ge=0, le=1000, description="Replicas to run.")
    resources: Resources = Field(default_factory=_shared(Resources))
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment.")
    challengers: ChallengerSettings = Field(default_factory=_shared(ChallengerSettings))
    rollback: RollbackSettings = Field(default_factory=_shared(RollbackSettings))
    drift: DriftSettings = Field(default_factory=_shared(DriftSettings))
    retraining: RetrainingSettings = Field(default_factory=_shared(RetrainingSettings))


class RollbackRecord(BaseModel):
    """Why the desired champion went back to an earlier package (set by the hub)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    from_package_id: str = Field(min_length=1, description="The package rolled back.")
    to_package_id: str = Field(min_length=1, description="The package restored.")
    reason: str = Field(max_length=2000, description="What regressed, in words.")
    at: datetime = Field(description="When the agent rolled back.")
    figures: dict[str, float | None] = Field(default_factory=dict, description="Measured.")


class DesiredDeployment(BaseModel):
    """One deployment as it should be."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=_ID_PATTERN, description="Stable deployment id.")
    name: str = Field(default="", description="Human-readable name.")
    model_package_id: str = Field(min_length=1, description="The champion model package.")
    challenger_ids: tuple[str, ...] = Field(default=(), description="Challenger packages.")
    state: DesiredRun = Field(default=DesiredRun.LAUNCHED)
    settings: DeploymentSettings = Field(default_factory=_shared(DeploymentSettings))
    generation: int = Field(default=0, ge=0, description="Bumped by every change.")
    relaunch_token: int = Field(
        default=0, ge=0, description="Changing it asks for a relaunch with the same spec."
    )
    rollback: RollbackRecord | None = Field(
        default=None, description="The last automatic rollback, while it stands."
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
