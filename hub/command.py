"""``pilothouse hub run``: the hub as a foreground process; ``pilothouse hub settings``.

This is the only place that installs signal handlers for the hub: SIGTERM and
SIGINT ask it to stop cleanly (watch streams end, requests finish, the
database closes) and the process exits 0. The agent package reaches the hub
only from here (import-linter keeps it so).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from pilothouse.foundation import cli, logs
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
    COMMANDS.add_to(sub.add_parser("hub", help="run the hub"))


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


COMMANDS = cli.ProcessCommands("the hub", HubSettings, "PILOTHOUSE_HUB_", FLAGS, run)
"""``run`` and ``settings``, also the commands of ``python -m pilothouse.hub``."""
