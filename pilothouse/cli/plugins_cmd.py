"""``pilothouse plugins``: the plugins installed in this environment, and their settings.

``pilothouse plugins`` lists them; ``pilothouse plugins settings NAME`` prints the
plugin's ``plugin_settings`` as a Markdown table (the README's tables are made by it),
with the environment variable that sets each one.
"""

from __future__ import annotations

import argparse
from typing import Any

from pilothouse.agent.plugin import PluginRegistry
from pilothouse.foundation import cli
from pilothouse.foundation.settings import reference

ENV_PREFIX = "PILOTHOUSE_PLUGIN_SETTINGS__"


def register(sub: Any) -> None:
    """Add the ``plugins`` subcommand (and ``plugins settings NAME``)."""
    parser: argparse.ArgumentParser = sub.add_parser("plugins", help="list installed plugins")
    parser.set_defaults(handler=run)
    commands = parser.add_subparsers(dest="plugins_command")
    settings = commands.add_parser("settings", help="print a plugin's settings as a table")
    settings.add_argument("name", help="the plugin's name (as `pilothouse plugins` lists it)")
    settings.set_defaults(handler=print_settings)


def run(args: argparse.Namespace) -> int:
    """Print one plugin name a line."""
    for name in PluginRegistry.from_entry_points().names():
        print(name)
    return 0


def print_settings(args: argparse.Namespace) -> int:
    """Print the settings table of one plugin (exit 1 if it takes none)."""
    plugin = PluginRegistry.from_entry_points().create(args.name)
    model = type(plugin).settings_model
    if model is None:
        print(f"plugin {args.name!r} takes no settings")
        return 1
    rows = [(name, default, " ".join(doc.split())) for name, default, doc in reference(model)]
    return cli.print_reference(rows, lambda name: cli.env_name(ENV_PREFIX, name))
