"""The third-party plugin of ``examples/directory-plugin``, imported from its source folder.

The example is its own distribution (its own ``pyproject.toml``); the tests
import it from where it lies — as an editable install would — and check its
entry point separately (``test_example_plugin.py``).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "directory-plugin"


def load() -> ModuleType:
    """The example's package, ``pilothouse_directory``."""
    if str(EXAMPLE) not in sys.path:
        sys.path.insert(0, str(EXAMPLE))
    return importlib.import_module("pilothouse_directory")
