"""The README documents every setting, and the runnable examples run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pilothouse.agent.settings import reference
from tools.update_readme import BLOCKS, block

ROOT = Path(__file__).resolve().parent.parent


def test_readme_starts_with_the_two_setup_commands() -> None:
    head = (ROOT / "README.md").read_text().splitlines()[:6]
    assert any(line.startswith("make run") for line in head)
    assert any(line.startswith("make test") for line in head)


def test_readme_settings_table_matches_the_code() -> None:
    readme = (ROOT / "README.md").read_text()
    for marker in BLOCKS:
        assert block(marker) in readme, (
            f"README's {marker} table is stale: run .venv/bin/python tools/update_readme.py"
        )
    for name, _default, doc in reference():
        assert doc, f"setting {name} has no docstring"


def test_embedded_example_runs_to_a_clean_stop() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "embedded.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "'fraud': 'ready on fraud-v1'" in proc.stdout
    assert "'fraud': 'ready on fraud-v2'" in proc.stdout
    assert "Traceback" not in proc.stderr
