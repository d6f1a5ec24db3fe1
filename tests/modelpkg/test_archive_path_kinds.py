"""An archive *path* that is not a regular file (a FIFO, a device, a directory) is refused at once.

Opening a FIFO for reading waits for a writer, forever: before the fix, the
loader thread that read such an "archive" hung for good. Each call runs in a
daemon thread with a deadline, and a FIFO is unblocked afterwards, so the test
fails (rather than hangs) on code that waits.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pilothouse.modelpkg import ArchiveError, inspect_archive, sha256_of, unpack_archive

CALLS: dict[str, Callable[[Path, Path], Any]] = {
    "sha256_of": lambda path, _: sha256_of(path),
    "inspect_archive": lambda path, _: inspect_archive(path),
    "unpack_archive": lambda path, dest: unpack_archive(path, dest / "out"),
}


def outcome(call: Callable[[], Any], deadline_s: float = 5.0) -> BaseException | None:
    """What ``call`` raised (``None`` if it returned), or fail if it is still running."""
    result: list[BaseException | None] = []

    def body() -> None:
        try:
            call()
        except BaseException as exc:
            result.append(exc)
        else:
            result.append(None)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    thread.join(deadline_s)
    assert result, f"still blocked after {deadline_s} s"
    return result[0]


def release_fifo(path: Path) -> None:
    """Open and close a writer, so a reader stuck in open() gets EOF (no-op without one)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    os.close(fd)


@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_fifo_as_archive_is_refused_without_waiting(call: str, tmp_path: Path) -> None:
    fifo = tmp_path / "model.tar.gz"
    os.mkfifo(fifo)
    try:
        error = outcome(lambda: CALLS[call](fifo, tmp_path))
    finally:
        release_fifo(fifo)
    assert isinstance(error, ArchiveError), error
    assert "a FIFO, not a regular file" in str(error)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("path", "kind"), [("/dev/zero", "a character device"), (".", "dir")])
def test_devices_and_directories_are_refused(path: str, kind: str, tmp_path: Path) -> None:
    target = tmp_path if path == "." else Path(path)
    error = outcome(lambda: sha256_of(target))
    assert isinstance(error, ArchiveError), error
    assert ("a directory" if kind == "dir" else kind) in str(error)
