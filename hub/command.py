"""``pilothouse hub run``: the hub as a foreground process; ``pilothouse hub settings``.

This is the only place that installs signal handlers for the hub: SIGTERM and
SIGINT ask it to stop cleanly (watch streams end, requests finish, the
database closes) and the process exits 0. The agent package reaches the hub
only from here (import-linter keeps it so).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from pilothouse.foundation import cli, logs
from pilothouse.foundation.errors import ConfigError
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
    """Add ``hub run``, ``hub settings`` and ``hub copy-to``."""
    commands = COMMANDS.add_to(sub.add_parser("hub", help="run the hub"))
    copy = commands.add_parser(
        "copy-to",
        help="copy this hub's SQLite database into an empty PostgreSQL database",
        description="Copy every PE, token, package, deployment, event and notification of the "
        "hub's SQLite database (the hub stopped) into an empty PostgreSQL database; then run "
        "the hub (or several replicas) with --database-url TARGET and the same state "
        "directory, which keeps the package archives.",
    )
    copy.add_argument("target", help="postgresql://USER:PASSWORD@HOST:PORT/DATABASE (empty)")
    copy.add_argument("--config", type=Path, help="YAML config file of the hub")
    cli.add_flags(copy, HubSettings, (cli.Flag("state_dir"), cli.Flag("database.url")))
    copy.set_defaults(handler=copy_to)


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


def copy_to(args: argparse.Namespace) -> int:
    """``hub copy-to``: copy the SQLite database into PostgreSQL, printing what was copied."""
    from pilothouse.hub.store import copying

    settings = HubSettings.load(args.config, overrides(args))
    if not HubSettings.load(None, {"database": {"url": args.target}}).uses_postgres:
        raise ConfigError([f"target: got {args.target!r}; expected postgresql://…"])

    def progress(table: str, rows: int) -> None:
        print(f"\r{table}: {rows:,} rows", end="", file=sys.stderr, flush=True)

    counts = asyncio.run(copying.copy_to_postgres(settings, args.target, progress))
    print(file=sys.stderr)
    for table, rows in counts.items():
        print(f"{table}\t{rows}")
    return 0


COMMANDS = cli.ProcessCommands("the hub", HubSettings, "PILOTHOUSE_HUB_", FLAGS, run)
"""``run`` and ``settings``, also the commands of ``python -m pilothouse.hub``."""
