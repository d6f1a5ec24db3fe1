"""``python -m pilothouse.hub``: the hub's own commands (``run``, ``settings``)."""

import argparse
import sys

from pilothouse.foundation import cli
from pilothouse.hub import command

parser = argparse.ArgumentParser(prog="python -m pilothouse.hub", description="Run the hub.")
command.COMMANDS.add_to(parser)
raise SystemExit(cli.run(parser, sys.argv[1:]))
