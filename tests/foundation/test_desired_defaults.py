"""Desired deployments with default settings share them: an agent holds thousands of them."""

from __future__ import annotations

import gc

from pilothouse.foundation.domain.desired import DeploymentSettings, DesiredDeployment


def test_default_settings_are_one_shared_frozen_instance() -> None:
    built = DesiredDeployment(id="a", model_package_id="m")
    parsed = DesiredDeployment.model_validate_json('{"id": "b", "model_package_id": "m"}')
    partial = DesiredDeployment.model_validate(
        {"id": "c", "model_package_id": "m", "settings": {"replicas": 3}}
    )
    assert built.settings is parsed.settings
    assert partial.settings.replicas == 3 and partial.settings is not built.settings
    assert partial.settings.rollback is built.settings.rollback  # its unset policies too
    assert partial.settings.drift is DeploymentSettings().drift
    # sharing changes nothing anyone can see: equal values, the same JSON
    assert built.settings == DeploymentSettings() and built.model_dump()["settings"]["env"] == {}


def test_a_thousand_default_deployments_cost_one_model_each() -> None:
    gc.collect()
    before = len(gc.get_objects())
    kept = [DesiredDeployment(id=f"d{i}", model_package_id="m") for i in range(1000)]
    tracked = len(gc.get_objects()) - before
    # one model each: its __dict__, and the set of fields given (the model itself is not
    # tracked while its dict holds only atoms); eight models each would be ~24 000
    assert tracked < 3_500, tracked
    assert len({id(d.settings) for d in kept}) == 1
