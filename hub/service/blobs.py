"""Content-addressed storage of package archives: ``<state_dir>/blobs/ab/abcdef…``.

An upload streams into a temporary file under ``blobs/tmp`` while its sha256
and size are computed; only a fully received, accepted archive is renamed into
place (atomic on one filesystem), so a reader never sees a partial blob and a
refused upload leaves nothing behind. The same bytes always land on the same
path, which makes storing idempotent. File I/O runs in threads.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pilothouse.hub.errors import PayloadTooLarge

_FLUSH_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Received:
    """An upload on disk, not yet accepted."""

    path: Path
    sha256: str
    size: int


class BlobStore:
    """Archives by sha256 under one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"

    def prepare(self) -> None:
        """Create the directories and drop uploads a crash left half-written. Blocking."""
        self._tmp.mkdir(parents=True, exist_ok=True)
        for leftover in self._tmp.iterdir():
            leftover.unlink(missing_ok=True)

    def path(self, sha256: str) -> Path:
        """Where the blob with this digest lives."""
        return self.root / sha256[:2] / sha256

    async def receive(self, chunks: AsyncIterator[bytes], max_bytes: int) -> Received:
        """Stream ``chunks`` into a temporary file; ``PayloadTooLarge`` past ``max_bytes``."""
        fd, name = await asyncio.to_thread(tempfile.mkstemp, dir=self._tmp, suffix=".part")
        out = os.fdopen(fd, "wb")
        try:
            digest, size = await _copy(chunks, out, max_bytes)
        except BaseException:
            await asyncio.to_thread(_close_and_remove, out, Path(name))
            raise
        await asyncio.to_thread(_finish, out)
        return Received(Path(name), digest, size)

    async def keep(self, upload: Received) -> Path:
        """Move an accepted upload to its content address."""
        target = self.path(upload.sha256)
        await asyncio.to_thread(_move, upload.path, target)
        return target

    async def remove(self, sha256: str) -> None:
        """Delete a stored blob."""
        await asyncio.to_thread(self.path(sha256).unlink, missing_ok=True)

    async def discard(self, upload: Received) -> None:
        """Delete a refused upload."""
        await asyncio.to_thread(upload.path.unlink, missing_ok=True)


async def _copy(chunks: AsyncIterator[bytes], out: BinaryIO, max_bytes: int) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    pending: list[bytes] = []
    pending_size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"the archive is larger than {max_bytes} bytes")
        pending.append(chunk)
        pending_size += len(chunk)
        if pending_size >= _FLUSH_BYTES:
            await asyncio.to_thread(_write, out, digest, b"".join(pending))
            pending, pending_size = [], 0
    await asyncio.to_thread(_write, out, digest, b"".join(pending))
    return digest.hexdigest(), size


def _write(out: BinaryIO, digest: hashlib._Hash, data: bytes) -> None:
    digest.update(data)
    out.write(data)


def _finish(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())
    out.close()


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # the same bytes are stored already
        source.unlink(missing_ok=True)
        return
    source.replace(target)


def _close_and_remove(out: BinaryIO, path: Path) -> None:
    out.close()
    path.unlink(missing_ok=True)
