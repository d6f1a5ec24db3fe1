"""The one explainer words every kind of pydantic problem the same way, whatever the part."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from pilothouse.foundation.validation import explain, problems


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    port: int


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    inner: Inner

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


def refusal(data: object) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        Outer.model_validate(data)
    return explain(caught.value)


def test_each_kind_of_problem_names_the_dotted_field() -> None:
    assert refusal({"inner": {"port": 1}}) == ["name: required, but not given"]
    assert refusal({"name": "a", "inner": {"port": 1}, "nmae": 2}) == [
        "nmae: unknown field (got 2)"
    ]
    assert refusal({"name": " ", "inner": {"port": 1}}) == ["name: must not be blank"]
    (line,) = refusal({"name": "a", "inner": {"port": "x"}})
    assert line.startswith("inner.port: got 'x'; input should be a valid integer")


def test_long_inputs_are_shortened_and_structured_problems_keep_the_input() -> None:
    (line,) = refusal({"name": "a", "inner": {"port": "9" * 200 + "x"}})
    assert len(line) < 200 and "..." in line
    with pytest.raises(ValidationError) as caught:
        Outer.model_validate([])
    (problem,) = problems(caught.value, top="(body)")
    assert problem.field == "(body)" and problem.input == []
