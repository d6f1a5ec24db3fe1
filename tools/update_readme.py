"""Regenerate the settings table of README.md from the settings classes.

Run ``.venv/bin/python tools/update_readme.py`` after changing a setting;
``tests/test_docs_and_examples.py`` fails until the README matches the code.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from pilothouse.cli import main as cli

README = Path(__file__).resolve().parent.parent / "README.md"


BLOCKS = {
    "settings": ["agent", "settings"],
    "hub-settings": ["hub", "settings"],
    "docker-settings": ["plugins", "settings", "docker"],
}


def table(marker: str = "settings") -> str:
    """The Markdown table that ``pilothouse agent settings`` (or ``hub settings``) prints."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli(BLOCKS[marker])
    return out.getvalue().rstrip("\n")


def block(marker: str) -> str:
    """The README block for ``marker``, markers included."""
    return f"<!-- {marker}:start -->\n{table(marker)}\n<!-- {marker}:end -->"


def main() -> None:
    """Rewrite the blocks between the markers."""
    text = README.read_text()
    for marker in BLOCKS:
        pattern = rf"<!-- {marker}:start -->\n.*?<!-- {marker}:end -->"
        text = re.sub(pattern, lambda _m, m=marker: block(m), text, flags=re.S)
    README.write_text(text)


if __name__ == "__main__":
    main()
