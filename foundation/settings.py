"""Layered settings, shared by every process: flags > environment > YAML file > defaults.

A secret setting (a ``SecretStr`` field: tokens, keys) may also come from a file, the Docker
and Kubernetes secrets convention: for a setting whose variable is ``PILOTHOUSE_X``,
``PILOTHOUSE_X_FILE`` names a file whose content (stripped) is the value
(:class:`SecretFileSource`). It ranks with the environment: setting both variables is refused,
as is a file that cannot be read, naming the variable.

Each process (agent, hub, prediction server) has one settings class built on
:class:`LayeredSettings`; plugins validate theirs with :func:`validate`. A
wrong value is refused with a :class:`~pilothouse.foundation.errors.ConfigError`
naming the field, the value and what was expected — worded by the one
:func:`~pilothouse.foundation.validation.explain`, wherever the error was found.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError
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
    format: Literal["auto", "text", "json"] = "auto"
    """``json`` writes one JSON object a line, for log shippers; ``auto``: JSON in a container
    (the ``container`` variable is set, as the image does), text elsewhere."""
    stream: Literal["auto", "stdout", "stderr"] = "auto"
    """Where logs go; ``auto``: stdout in a container (what ``docker logs`` collects), stderr
    elsewhere."""


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
        """Flags (init), then environment (with secret files), then the YAML file."""
        environment = SecretFileSource(settings_cls, env_settings)
        return (init_settings, environment, _YamlFileSource(settings_cls))

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


class SecretFileSource(PydanticBaseSettingsSource):
    """The environment, with secret settings read from the files ``<VARIABLE>_FILE`` names.

    For every ``SecretStr`` field, nested groups included, whose environment variable is
    ``PILOTHOUSE_X`` (the class's prefix and nested delimiter), ``PILOTHOUSE_X_FILE`` names a
    file holding the value; surrounding whitespace (the newline ``echo`` adds) is dropped.
    It wraps the environment source, whose nested parsing would otherwise read
    ``PILOTHOUSE_HUB__TOKEN_FILE`` as an unknown ``hub.token_file``. A field that has an
    explicit ``<name>_file`` setting beside it (the hub's ``admin_token_file``) is left to
    that setting: its variable already is ``…_FILE``.
    """

    def __init__(
        self, settings_cls: type[BaseSettings], environment: PydanticBaseSettingsSource
    ) -> None:
        super().__init__(settings_cls)
        self._environment = environment

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        """Never asked: :meth:`__call__` reads every field at once."""
        raise NotImplementedError

    def __call__(self) -> dict[str, Any]:
        """The environment's settings, and the secret settings found in files."""
        out = self._environment()
        prefix = str(self.config.get("env_prefix") or "")
        delimiter = str(self.config.get("env_nested_delimiter") or "__")
        environ = {key.upper(): value for key, value in os.environ.items()}
        for path in secret_fields(self.settings_cls):
            target = out
            for group in path[:-1]:
                target = target.setdefault(group, {})
            target.pop(f"{path[-1]}_file", None)  # the variable read below, not a setting
            variable = (prefix + delimiter.join(path)).upper()
            value = _read_secret_file(variable, environ)
            if value is not None:
                target[path[-1]] = value
        return {key: value for key, value in out.items() if value != {}}


def secret_fields(model: type[BaseModel]) -> Iterator[tuple[str, ...]]:
    """The path (group names, then field name) of every ``SecretStr`` field of ``model``."""
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from ((name, *inner) for inner in secret_fields(annotation))
        elif _is_secret(annotation) and f"{name}_file" not in model.model_fields:
            yield (name,)


def _is_secret(annotation: Any) -> bool:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_secret(arg) for arg in typing.get_args(annotation))
    return annotation is SecretStr


def _read_secret_file(variable: str, environ: Mapping[str, str]) -> str | None:
    """The content of the file ``<variable>_FILE`` names; None when that variable is unset."""
    file_variable = f"{variable}_FILE"
    path = environ.get(file_variable)
    if not path:
        return None
    source = f"environment ({file_variable})"
    if variable in environ:
        raise ConfigError(
            [f"{variable} and {file_variable} are both set: set the value or its file, not both"],
            source=source,
        )
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        problem = f"{file_variable}: cannot read {path}: {exc.strerror or exc}"
        raise ConfigError([problem], source=source) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"{file_variable}: cannot read {path}: not UTF-8 text ({exc.reason})"], source=source
        ) from None


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
