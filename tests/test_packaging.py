"""The distribution installs one top-level name, and each part runs as ``python -m``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("agent", "hub", "serving", "modelpkg", "plugins", "foundation", "cli")


def _tracked_copy(dest: Path) -> None:
    """Copy the working tree's tracked and new files, links kept as links."""
    listing = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listing.split("\0")):
        src, out = ROOT / name, dest / name
        if not src.is_symlink() and not src.exists():
            continue  # deleted in the working tree, not yet in the index
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), out)
        else:
            shutil.copy2(src, out)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("build")
    source, dist = work / "source", work / "dist"
    _tracked_copy(source)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(dist), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (built,) = dist.glob("pilothouse-*.whl")
    return built


def test_the_wheel_installs_one_top_level_name(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"pilothouse"}
    for part in PARTS:
        assert f"pilothouse/{part}/__init__.py" in names, part
    # Real files, not links: a wheel has no symlinks, and the parts are complete.
    assert "pilothouse/agent/runtime.py" in names
    assert "pilothouse/plugins/process/__init__.py" in names
    assert all(f"pilothouse/{part}/py.typed" in names for part in PARTS if part != "cli")


def test_the_wheel_declares_the_console_script_and_the_plugins(wheel: Path) -> None:
    archive = zipfile.ZipFile(wheel)
    (entry_points,) = [n for n in archive.namelist() if n.endswith("entry_points.txt")]
    text = archive.read(entry_points).decode()
    assert "pilothouse = pilothouse.cli:main" in text
    assert "process = pilothouse.plugins.process:ProcessPlugin" in text
    assert "test = pilothouse.plugins.simulated:SimulatedPlugin" in text


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("pilothouse", "pilothouse"),
        ("pilothouse.agent", "python -m pilothouse.agent"),
        ("pilothouse.hub", "python -m pilothouse.hub"),
        ("pilothouse.serving", "python -m pilothouse.serving"),
    ],
)
def test_each_part_runs_as_a_module(module: str, expected: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: {expected}")


def test_the_prediction_server_module_loads_nothing_of_the_agent_or_the_hub() -> None:
    code = (
        "import sys, runpy; sys.argv = ['x', '--help']\n"
        "try:\n    runpy.run_module('pilothouse.serving', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('pilothouse.')}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = proc.stdout.strip().splitlines()[-1]
    assert "'agent'" not in loaded and "'hub'" not in loaded, loaded


def test_the_wheel_holds_the_web_ui(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    static = ROOT / "hub" / "ui" / "static"
    files = sorted(p.relative_to(static).as_posix() for p in static.rglob("*") if p.is_file())
    assert "index.html" in files and "js/main.js" in files and "app.css" in files
    missing = [f for f in files if f"pilothouse/hub/ui/static/{f}" not in names]
    assert missing == [], missing
