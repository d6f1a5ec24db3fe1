"""The ``pilothouse`` command line.

Subcommands live in modules of their own — each part owns its command (``agent``,
``hub``, ``serve``); the client commands (``pe``, ``deployment``, ``events``,
``package``) and the whole product (``up``) live here. This module only builds
the parser; :func:`pilothouse.foundation.cli.run` turns errors into messages and
exit codes (0 done, 1 failed while running, 2 bad configuration or usage), so no
traceback reaches a user for an error Pilothouse raised on purpose.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pilothouse.foundation import cli

COMMANDS = {
    "agent": "pilothouse.agent.command",
    "plugins": "pilothouse.cli.plugins_cmd",
    "package": "pilothouse.cli.package_cmd",
    "serve": "pilothouse.serving.command",
    "hub": "pilothouse.hub.command",
    "pe": "pilothouse.cli.pe_cmd",
    "deployment": "pilothouse.cli.deployment_cmd",
    "events": "pilothouse.cli.events_cmd",
    "up": "pilothouse.cli.up_cmd",
}
"""Subcommand to the module that registers it, imported only when needed: a
prediction server started as ``pilothouse serve`` does not load the hub."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand (or of ``only``, when that is the one to run)."""
    parser = argparse.ArgumentParser(
        prog="pilothouse",
        description="Deploy, replace, stop and watch models on any infrastructure.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        if only is None or name == only:
            importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    only = argv[0] if argv and argv[0] in COMMANDS else None
    return cli.run(build_parser(only), argv)
