"""Regenerate the settings table of README.md from the settings classes.

Run ``.venv/bin/python tools/update_readme.py`` after changing a setting;
``tests/test_docs_and_examples.py`` fails until the README matches the code.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from agent.cli import main as cli

README = Path(__file__).resolve().parent.parent / "README.md"


def table() -> str:
    """The Markdown table that ``pilothouse agent settings`` prints."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli(["agent", "settings"])
    return out.getvalue().rstrip("\n")


def main() -> None:
    """Rewrite the block between the settings markers."""
    text = README.read_text()
    block = f"<!-- settings:start -->\n{table()}\n<!-- settings:end -->"
    README.write_text(
        re.sub(
            r"<!-- settings:start -->\n.*?\n<!-- settings:end -->",
            lambda _m: block,
            text,
            flags=re.S,
        )
    )


if __name__ == "__main__":
    main()
