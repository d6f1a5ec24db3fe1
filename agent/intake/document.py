"""Parsing a desired-state document (YAML or JSON) into validated models."""

from __future__ import annotations

from pathlib import Path

import orjson
import yaml
from pydantic import ValidationError

from pilothouse.agent.errors import DesiredStateError
from pilothouse.foundation.domain.desired import DesiredState
from pilothouse.foundation.validation import explain


def parse(path: Path, raw: bytes) -> DesiredState:
    """Validate ``raw`` (the content of ``path``) or raise ``DesiredStateError``."""
    source = str(path)
    try:
        if path.suffix == ".json":
            data = orjson.loads(raw)
        else:
            data = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise DesiredStateError(f"not valid {_kind(path)}: {exc}", source=source) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise DesiredStateError(
            f"expected a mapping with 'deployments', got {type(data).__name__}", source=source
        )
    try:
        return DesiredState.model_validate(data)
    except ValidationError as exc:
        raise DesiredStateError("; ".join(explain(exc)), source=source) from None


def _kind(path: Path) -> str:
    return "JSON" if path.suffix == ".json" else "YAML"
