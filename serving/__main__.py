"""``python -m pilothouse.serving``: the prediction server alone, as ``pilothouse serve`` runs it.

A server image or a plugin that starts servers needs nothing of the agent or the hub.
"""

import argparse
import sys

from pilothouse.foundation import cli
from pilothouse.serving import command

parser = argparse.ArgumentParser(
    prog="python -m pilothouse.serving", description="Run the multi-model prediction server."
)
command.add_arguments(parser)
raise SystemExit(cli.run(parser, sys.argv[1:]))
