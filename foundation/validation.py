"""The one explainer of pydantic's validation errors, for every part.

Settings files, desired-state documents, model manifests, plugin settings and
request bodies are all validated by pydantic; whatever the part, a problem
reaches the user worded the same way — the dotted field, what was given, what
was expected — by :func:`problems` (structured, for an API's error body) and
:func:`explain` (one line each, for a message).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

_MAX_SHOWN = 80


@dataclass(frozen=True, slots=True)
class Problem:
    """One field that cannot be accepted: where, why, and what was given."""

    field: str
    message: str
    input: Any = None

    def line(self) -> str:
        """The problem as one line of a message."""
        return f"{self.field}: {self.message}"


def problems(exc: ValidationError, *, top: str = "(top level)", prefix: str = "") -> list[Problem]:
    """Each of pydantic's errors as a :class:`Problem`; ``top`` names an error with no field.

    ``prefix`` names where the validated mapping sits in the user's configuration
    (``plugin_settings`` for a plugin's), so the field is named as the user wrote it.
    """
    found = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(part) for part in (prefix, *err["loc"]) if part != "") or top
        found.append(Problem(where, _message(err), err.get("input")))
    return found


def explain(exc: ValidationError, prefix: str = "") -> list[str]:
    """One line per error: dotted field, what was given, what was expected."""
    return [problem.line() for problem in problems(exc, prefix=prefix)]


def _message(err: Any) -> str:
    kind: str = err["type"]
    msg: str = err["msg"].removeprefix("Value error, ")
    if kind == "missing":
        return "required, but not given"
    if kind == "extra_forbidden":
        return f"unknown field (got {_short(err.get('input'))})"
    if kind.startswith(("value_error", "assertion_error")):
        return msg  # our own validators already say what was wrong with the value
    return f"got {_short(err.get('input'))}; {msg[:1].lower()}{msg[1:]}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."
