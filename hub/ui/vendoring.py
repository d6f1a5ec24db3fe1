"""The chart library the UI draws with, vendored from the npm registry: uPlot, MIT licence.

``static/vendor/uplot/`` holds three files of the ``uplot`` npm package at
:data:`VERSION` — its ES module build, its stylesheet and its licence — so the
hub serves its UI with no network and no build step. This module records where
they came from and brings them again: ``python -m pilothouse.hub.ui.vendoring``
runs ``npm pack uplot@VERSION``, refuses a tarball whose sha256 is not
:data:`TARBALL_SHA256`, and writes the files; a test checks the committed files
against :data:`FILES`. It is never imported by the running hub.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "uplot"
VERSION = "1.6.32"
LICENSE = "MIT"
TARBALL_SHA256 = "4b8a8191e425658e3ea8c8c1314b0fc679c861ee3a1af2b20c7b16ba50b5133d"
TARGET = Path(__file__).resolve().parent / "static" / "vendor" / "uplot"
FILES = {
    "package/dist/uPlot.esm.js": (
        "uPlot.esm.js",
        "5dd9b3281aa64b461b42d9945f6adb2649d346502b12281a9ae0d46599a80eba",
    ),
    "package/dist/uPlot.min.css": (
        "uPlot.min.css",
        "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
    ),
    "package/LICENSE": (
        "LICENSE",
        "8f989229699b4fe2f1a0432d0e9edc338a8a911e250e2d1b01ecd770a5f5b1bd",
    ),
}
"""Member of the npm tarball → (file under :data:`TARGET`, its sha256)."""


def sha256(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def fetch(target: Path = TARGET) -> None:
    """Download the pinned tarball with ``npm pack`` and write the vendored files. Blocking."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["npm", "pack", f"{PACKAGE}@{VERSION}", "--silent"],
            cwd=tmp,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        tarball = Path(tmp) / f"{PACKAGE}-{VERSION}.tgz"
        data = tarball.read_bytes()
    if sha256(data) != TARBALL_SHA256:
        raise SystemExit(f"{tarball.name}: sha256 {sha256(data)} is not the pinned one")
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member, (name, digest) in FILES.items():
            extracted = archive.extractfile(member)
            if extracted is None:
                raise SystemExit(f"{member} missing from {tarball.name}")
            body = extracted.read()
            if sha256(body) != digest:
                raise SystemExit(f"{member}: unexpected content")
            (target / name).write_bytes(body)


if __name__ == "__main__":
    fetch()
    sys.stdout.write(f"vendored {PACKAGE} {VERSION} ({LICENSE}) into {TARGET}\n")
