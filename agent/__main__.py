"""``python -m agent``: the same as the ``pilothouse`` command."""

from agent.cli import main

raise SystemExit(main())
