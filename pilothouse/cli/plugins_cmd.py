"""``pilothouse plugins``: list the plugins installed in this environment."""

from __future__ import annotations

import argparse
from typing import Any

from pilothouse.agent.plugin import PluginRegistry


def register(sub: Any) -> None:
    """Add the ``plugins`` subcommand."""
    parser: argparse.ArgumentParser = sub.add_parser("plugins", help="list installed plugins")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print one plugin name a line."""
    for name in PluginRegistry.from_entry_points().names():
        print(name)
    return 0
