"""Every setting of the prediction server is in the README, with its variable and default.

The table between ``<!-- serve-settings:start -->`` and ``<!-- serve-settings:end -->``
is rendered from :class:`pilothouse.serving.ServerSettings`; after changing a setting, run
``.venv/bin/python -m tests.serving.test_settings_documented`` to rewrite it.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic_core import PydanticUndefined

from pilothouse.agent.settings import reference
from pilothouse.serving import ServerSettings

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- serve-settings:start -->", "<!-- serve-settings:end -->"


def table() -> str:
    lines = [
        "| setting | environment variable | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, default, doc in reference(ServerSettings):
        env = "PILOTHOUSE_SERVE_" + name.replace(".", "__").upper()
        shown = "(required)" if default == str(PydanticUndefined) else default
        lines.append(f"| `{name}` | `{env}` | `{shown}` | {' '.join(doc.split())} |")
    return "\n".join(lines)


def block() -> str:
    return f"{START}\n{table()}\n{END}"


def test_readme_lists_every_server_setting() -> None:
    assert block() in README.read_text(), (
        "README's serve-settings table is stale: "
        "run .venv/bin/python -m tests.serving.test_settings_documented"
    )
    for name, _default, doc in reference(ServerSettings):
        assert doc, f"setting {name} has no docstring"


if __name__ == "__main__":
    text = README.read_text()
    README.write_text(re.sub(rf"{START}\n.*?{END}", lambda _m: block(), text, flags=re.S))
