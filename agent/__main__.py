"""``python -m pilothouse.agent``: the agent's own commands (``run``, ``settings``)."""

import argparse
import sys

from pilothouse.agent import command
from pilothouse.foundation import cli

parser = argparse.ArgumentParser(prog="python -m pilothouse.agent", description="Run the agent.")
command.COMMANDS.add_to(parser)
raise SystemExit(cli.run(parser, sys.argv[1:]))
