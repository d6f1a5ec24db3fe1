"""Layered settings, shared by every process: flags > environment > YAML file > defaults.

Each process (agent, hub, prediction server) has one settings class built on
:class:`LayeredSettings`; plugins validate theirs with :func:`validate`. A
wrong value is refused with a :class:`~pilothouse.foundation.errors.ConfigError`
naming the field, the value and what was expected — worded by the one
:func:`~pilothouse.foundation.validation.explain`, wherever the error was found.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
)

from pilothouse.foundation.errors import ConfigError
from pilothouse.foundation.validation import explain

_config_file: ContextVar[Path | None] = ContextVar("pilothouse_config_file", default=None)

M = TypeVar("M", bound=BaseModel)


class SettingsGroup(BaseModel):
    """A nested group of settings: strict (unknown keys refused), frozen, documented."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class LogSettings(SettingsGroup):
    """Structured logging."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Lowest level written."""
    format: Literal["text", "json"] = "text"
    """``json`` writes one JSON object a line, for log shippers."""


class LayeredSettings(BaseSettings):
    """Base of each process's settings class: flags > environment > YAML file > defaults."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (init), then environment, then the YAML file."""
        return (init_settings, env_settings, _YamlFileSource(settings_cls))

    @classmethod
    def load(
        cls, config_file: Path | None = None, overrides: Mapping[str, Any] | None = None
    ) -> Self:
        """Build settings from every source, or raise ``ConfigError`` listing each problem."""
        token = _config_file.set(config_file)
        try:
            settings = cls(**dict(overrides or {}))
        except ValidationError as exc:
            raise ConfigError(explain(exc), source=_source_name(config_file)) from None
        finally:
            _config_file.reset(token)
        settings.check()
        return settings

    def check(self) -> None:
        """Checks that span fields or touch the outside world; raise ``ConfigError``."""


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads the YAML config file named by :meth:`LayeredSettings.load`."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ is overridden; never asked per field

    def __call__(self) -> dict[str, Any]:
        path = _config_file.get()
        if path is None:
            return {}
        return read_yaml_mapping(path)


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping, or raise ``ConfigError``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read {path}: {exc.strerror}"], source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"cannot read {path}: not UTF-8 text ({exc.reason})"], source=str(path)
        ) from None
    try:
        data = yaml.load(text, Loader=_loader())
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], source=str(path)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            [f"expected a mapping at the top level, got {type(data).__name__}"], source=str(path)
        )
    return data


def _loader() -> type[yaml.SafeLoader]:
    loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return loader


def validate(model: type[M], raw: Mapping[str, Any], *, source: str, prefix: str = "") -> M:
    """``raw`` checked against ``model``, or a ``ConfigError`` worded by :func:`explain`."""
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        raise ConfigError(explain(exc, prefix), source=source) from None


def _source_name(config_file: Path | None) -> str:
    return f"configuration ({config_file})" if config_file else "configuration"


def reference(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str]]:
    """Every leaf setting as (dotted name, default, description), for docs and ``--help``."""
    rows: list[tuple[str, str, str]] = []
    for name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows.extend(reference(ann, f"{prefix}{name}."))
            continue
        default = info.default_factory() if info.default_factory else info.default  # type: ignore[call-arg]
        shown = getattr(default, "value", default)
        rows.append(
            (
                f"{prefix}{name}",
                "" if shown is None else str(shown),
                " ".join((info.description or "").split()),
            )
        )
    return rows
