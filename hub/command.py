"""``pilothouse hub run``: the hub as a foreground process; ``pilothouse hub settings``.

This is the only place that installs signal handlers for the hub: SIGTERM and
SIGINT ask it to stop cleanly (watch streams end, requests finish, the
database closes) and the process exits 0. The agent package reaches the hub
only from here (import-linter keeps it so).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from pilothouse.foundation import cli, logs
from pilothouse.foundation.settings import reference
from pilothouse.hub import Hub, HubSettings

FLAGS = (
    cli.Flag("listen.host", "--host"),
    cli.Flag("listen.port", "--port"),
    cli.Flag("state_dir"),
    cli.Flag("database.url"),
    cli.Flag("admin_token"),
    cli.Flag("log.format"),
    cli.Flag("log.level"),
)
"""The settings offered as flags of ``hub run``; the rest come from the environment or file."""


def register(sub: Any) -> None:
    """Add ``hub run`` and ``hub settings``."""
    hub_parser: argparse.ArgumentParser = sub.add_parser("hub", help="run the hub")
    add_commands(hub_parser)


def add_commands(parser: argparse.ArgumentParser) -> None:
    """Add the hub's own commands (``run``, ``settings``) to ``parser``."""
    hub_sub = parser.add_subparsers(dest="hub_command", required=True, metavar="COMMAND")
    run_parser = hub_sub.add_parser(
        "run",
        help="run the hub in the foreground",
        description="Run the hub until SIGTERM/SIGINT. Flags override environment "
        "variables (PILOTHOUSE_HUB_...), which override the config file.",
    )
    run_parser.add_argument("--config", type=Path, help="YAML config file")
    cli.add_flags(run_parser, HubSettings, FLAGS)
    run_parser.set_defaults(handler=run)
    ref_parser = hub_sub.add_parser("settings", help="print every setting (Markdown table)")
    ref_parser.set_defaults(handler=settings_reference)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags, shaped like the settings class."""
    return cli.overrides(args, FLAGS)


def run(args: argparse.Namespace) -> int:
    """Load settings, serve the hub until a signal, exit 0."""
    settings = HubSettings.load(args.config, overrides(args))
    handle = logs.configure(settings.log)
    try:
        hub = Hub(settings)
        asyncio.run(cli.until_signalled(hub.serve(), hub.request_stop))
    finally:
        handle.close()
    return 0


def settings_reference(args: argparse.Namespace) -> int:
    """Print every hub setting with its environment variable, default and meaning."""
    return cli.print_reference(reference(HubSettings), env_name)


def env_name(setting: str) -> str:
    """The environment variable of a dotted hub setting name."""
    return cli.env_name("PILOTHOUSE_HUB_", setting)
