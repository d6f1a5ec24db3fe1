"""``python -m pilothouse.hub``: the hub's own commands (``run``, ``settings``)."""

import argparse
import sys

from pilothouse.foundation import cli
from pilothouse.hub import command

parser = argparse.ArgumentParser(prog="python -m pilothouse.hub", description="Run the hub.")
command.add_commands(parser)
raise SystemExit(cli.run(parser, sys.argv[1:]))
