"""What every foreground command shares: signals, exit codes, and flags made from settings.

Only foreground commands install signal handlers; everything they run (agent,
hub, prediction server) has a ``request_stop``/``stop`` of its own and never
touches signals, so it can be embedded anywhere.

Flags are derived from the settings models (:func:`add_flags`): a command names
the settings it offers as flags, and the flag's type, choices and help come from
the field, so a flag can never disagree with the setting it sets.

Exit codes (:func:`run`): 0 done, 1 the command failed while running (a
:class:`~pilothouse.foundation.errors.PilothouseError`), 2 bad configuration or
usage (a :class:`~pilothouse.foundation.errors.ConfigError`), 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import signal
import sys
import types
import typing
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from pilothouse.foundation.errors import ConfigError, PilothouseError
from pilothouse.foundation.settings import reference

T = TypeVar("T")

SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def until_signalled(main: Awaitable[T], stop: Callable[[], None]) -> T:
    """Await ``main``; a SIGTERM or SIGINT meanwhile calls ``stop`` (which must end it)."""
    loop = asyncio.get_running_loop()
    for sig in SIGNALS:
        loop.add_signal_handler(sig, stop)
    try:
        return await main
    finally:
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)


def run(parser: argparse.ArgumentParser, argv: Sequence[str]) -> int:
    """Parse ``argv``, run the chosen handler and map its outcome to an exit code."""
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 2
    except PilothouseError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


def print_reference(rows: list[tuple[str, str, str]], env: Callable[[str], str]) -> int:
    """Print settings rows (name, default, meaning) as the README's Markdown table."""
    print("| setting | environment variable | default | meaning |")
    print("|---|---|---|---|")
    for name, default, doc in rows:
        print(f"| `{name}` | `{env(name)}` | `{default}` | {doc} |")
    return 0


def env_name(prefix: str, setting: str) -> str:
    """The environment variable of a dotted setting (``hub.url`` → ``PREFIX_HUB__URL``)."""
    return prefix + setting.upper().replace(".", "__")


@dataclass(frozen=True, slots=True)
class ProcessCommands:
    """The two commands of a long-running process: ``run`` it, and print its ``settings``."""

    what: str
    """What runs, as the help says it (``the agent``)."""
    model: type[BaseModel]
    """The process's settings class."""
    env_prefix: str
    """Prefix of its environment variables (``PILOTHOUSE_``)."""
    flags: tuple[Flag, ...]
    """The settings offered as flags of ``run``."""
    run: Callable[[argparse.Namespace], int]
    """The handler of ``run``: it receives ``config`` and the flags."""

    def add_to(self, parser: argparse.ArgumentParser) -> Any:
        """Add ``run`` and ``settings`` to ``parser``; return its subparsers (to add more)."""
        sub = parser.add_subparsers(dest="process_command", required=True, metavar="COMMAND")
        run_parser = sub.add_parser(
            "run",
            help=f"run {self.what} in the foreground",
            description=f"Run {self.what} until SIGTERM/SIGINT. Flags override environment "
            f"variables ({self.env_prefix}...), which override the config file.",
        )
        run_parser.add_argument("--config", type=Path, help="YAML config file")
        add_flags(run_parser, self.model, self.flags)
        run_parser.set_defaults(handler=self.run)
        ref_parser = sub.add_parser("settings", help="print every setting (Markdown table)")
        ref_parser.set_defaults(handler=self.print_settings)
        return sub

    def print_settings(self, args: argparse.Namespace) -> int:
        """Print every setting with its environment variable, default and meaning (Markdown)."""
        return print_reference(reference(self.model), self.env_name)

    def env_name(self, setting: str) -> str:
        """The environment variable of a dotted setting name."""
        return env_name(self.env_prefix, setting)


@dataclass(frozen=True, slots=True)
class Flag:
    """A setting offered as a command-line flag."""

    setting: str
    """Dotted name of the setting (``log.level``)."""
    name: str | None = None
    """The flag, when not derived from the setting's name (``--desired-state``)."""

    @property
    def option(self) -> str:
        """The flag as typed: ``log.level`` → ``--log-level``."""
        return self.name or "--" + self.setting.replace(".", "-").replace("_", "-")

    @property
    def dest(self) -> str:
        """The argparse attribute that holds the flag's value."""
        return "setting__" + self.setting.replace(".", "__")


def add_flags(
    parser: argparse.ArgumentParser, model: type[BaseModel], flags: Iterable[Flag]
) -> None:
    """Add one flag per setting; type, choices and help come from the settings model."""
    for flag in flags:
        field = _field(model, flag.setting)
        kind, choices = _kind(field.annotation)
        help_text = (field.description or "").split("\n")[0]
        if kind is bool:
            parser.add_argument(
                flag.option, dest=flag.dest, action=argparse.BooleanOptionalAction, help=help_text
            )
            continue
        parser.add_argument(
            flag.option, dest=flag.dest, type=kind, choices=choices, help=help_text, metavar=None
        )


def overrides(args: argparse.Namespace, flags: Iterable[Flag]) -> dict[str, Any]:
    """The settings given as flags, nested like the settings model (``{"log": {"level": …}}``)."""
    out: dict[str, Any] = {}
    for flag in flags:
        value = getattr(args, flag.dest, None)
        if value is None:
            continue
        *groups, leaf = flag.setting.split(".")
        target = out
        for group in groups:
            target = target.setdefault(group, {})
        target[leaf] = value
    return out


def _field(model: type[BaseModel], dotted: str) -> Any:
    *groups, leaf = dotted.split(".")
    for group in groups:
        annotation = model.model_fields[group].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            raise ValueError(f"{dotted}: {group} is not a group of settings")
        model = annotation
    return model.model_fields[leaf]


def _kind(annotation: Any) -> tuple[Callable[[str], Any], list[Any] | None]:
    """The argparse type (and choices) of a settings field's annotation."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _kind(args[0])
    if typing.get_origin(annotation) is typing.Literal:
        return type(args[0]), list(args)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return str, [member.value for member in annotation]
    if annotation in (int, float, bool, Path):
        return annotation, None
    return str, None
