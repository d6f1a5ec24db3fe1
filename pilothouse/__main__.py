"""``python -m pilothouse``: the same as the ``pilothouse`` command."""

from pilothouse.cli import main

raise SystemExit(main())
