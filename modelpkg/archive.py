"""Safe reading of model package archives, which are untrusted input.

A ``.tar.gz`` may come from anyone, so it is read defensively, in a fixed
order:

1. **Hash first.** The archive must be a regular file (a FIFO given as the
   archive path would block the reader for good, a device would stream
   forever). The compressed bytes are streamed through sha256 (and
   counted against ``max_archive_bytes``). If the caller expects a digest and it
   differs, nothing else is read: :class:`ChecksumMismatchError`.
2. **Walk in one streaming pass.** ``tarfile`` reads in stream mode (``r|``)
   from a gzip decompressor whose *output* is counted: decompression stops as
   soon as the total exceeds the limit, so a gzip bomb costs at most the limit,
   whatever its headers claim. Each member is checked before its data is read:
   its name is relative with no ``..`` and no backslash, it is a regular file
   or a directory (no symbolic or hard links, devices, FIFOs, sparse files),
   it is not a duplicate and does not collide with a directory, and the member
   count, member size and running total stay within :class:`ArchiveLimits`.
3. **Unpack beside, then rename.** Files are written (mode 0644, ``O_EXCL`` and
   ``O_NOFOLLOW``; the archive's modes and owners are ignored) into a temporary
   directory next to the destination, the manifest and contents are validated,
   and only then is the directory renamed into place: a reader never sees a
   half-written package.

The package root is the archive root, or the single top-level directory when
everything sits under one (as ``tar czf pkg.tar.gz mypkg/`` makes).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, BinaryIO

from pydantic import BaseModel, ConfigDict, Field

from pilothouse.modelpkg.contents import FileEntry, PackageInfo, check_contents
from pilothouse.modelpkg.errors import (
    ArchiveError,
    ArchiveLimitError,
    ChecksumMismatchError,
    CorruptArchiveError,
    ManifestError,
    UnsafeArchiveError,
)
from pilothouse.modelpkg.manifest import MANIFEST_NAME, MAX_MANIFEST_BYTES, Manifest, parse_manifest

_CHUNK = 1024 * 1024

Source = str | os.PathLike[str] | BinaryIO
"""A path to an archive, or a binary file object positioned at its start."""


class ArchiveLimits(BaseModel):
    """Bounds on what an archive may hold; every one is checked while streaming.

    The one definition of the limits: the prediction server takes this class as
    its ``limits`` setting and the hub builds it from its own settings, so both
    apply the same bounds with the same defaults, and a package the hub accepts
    is one a server with default settings can load.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    max_archive_bytes: int = Field(default=2 * 1024**3, gt=0)
    """Size of the compressed archive."""
    max_members: int = Field(default=10_000, gt=0)
    """Entries (files and directories)."""
    max_member_bytes: int = Field(default=2 * 1024**3, gt=0)
    """Size of one file."""
    max_total_bytes: int = Field(default=4 * 1024**3, gt=0)
    """Total uncompressed size of the files."""


DEFAULT_LIMITS = ArchiveLimits()


def inspect_archive(
    source: Source, limits: ArchiveLimits = DEFAULT_LIMITS, *, expected_sha256: str | None = None
) -> PackageInfo:
    """Validate an archive without unpacking it: manifest, sha256, files, size.

    Raises a :class:`~pilothouse.modelpkg.errors.PackageError` subclass naming the problem.
    """
    with _seekable(source, limits) as fileobj:
        digest = _verify(fileobj, limits, expected_sha256)
        manifests: dict[str, bytes] = {}

        def keep_manifest(name: str, size: int, data: IO[bytes]) -> None:
            if name.rsplit("/", 1)[-1] == MANIFEST_NAME and name.count("/") <= 1:
                manifests[name] = data.read(MAX_MANIFEST_BYTES + 1)

        files, dirs = _walk(fileobj, limits, keep_manifest)
    root = _root(files, dirs)
    prefix = f"{root}/" if root else ""
    manifest = parse_manifest(manifests[f"{prefix}{MANIFEST_NAME}"])
    return _info(manifest, digest, files, dirs, prefix)


def unpack_archive(
    source: Source,
    dest: str | os.PathLike[str],
    limits: ArchiveLimits = DEFAULT_LIMITS,
    *,
    expected_sha256: str | None = None,
) -> PackageInfo:
    """Verify, validate and unpack an archive into ``dest`` (which must not exist yet).

    ``dest`` is best named after the sha256: when another unpack of the same
    archive got there first, its directory is kept and this copy discarded.
    """
    target = Path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.partial"
    staging.mkdir(mode=0o755)
    try:
        with _seekable(source, limits) as fileobj:
            digest = _verify(fileobj, limits, expected_sha256)
            files, dirs = _walk(fileobj, limits, _writer(staging))
        root = _root(files, dirs)
        prefix = f"{root}/" if root else ""
        manifest = _read_manifest(staging / prefix / MANIFEST_NAME)
        info = _info(manifest, digest, files, dirs, prefix)
        try:
            (staging / root).rename(target)
        except OSError:
            if not target.is_dir():
                raise
        return info
    except OSError as exc:
        raise ArchiveError(f"cannot unpack into {target}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def sha256_of(source: Source, limits: ArchiveLimits = DEFAULT_LIMITS) -> str:
    """The sha256 of an archive's bytes (bounded by ``max_archive_bytes``)."""
    with _seekable(source, limits) as fileobj:
        return _verify(fileobj, limits, None)


# -- the passes -----------------------------------------------------------------------------


@contextmanager
def _seekable(source: Source, limits: ArchiveLimits) -> Iterator[BinaryIO]:
    """Yield the archive as a seekable file positioned at its start."""
    if isinstance(source, str | os.PathLike):
        fileobj = _open_regular(source)
        with fileobj:
            size = os.fstat(fileobj.fileno()).st_size
            if size > limits.max_archive_bytes:
                raise ArchiveLimitError("archive size", limits.max_archive_bytes)
            yield fileobj
        return
    if source.seekable():
        start = source.tell()
        try:
            yield source
        finally:
            source.seek(start)
        return
    with tempfile.TemporaryFile() as spool:
        copied = 0
        while chunk := source.read(_CHUNK):
            copied += len(chunk)
            if copied > limits.max_archive_bytes:
                raise ArchiveLimitError("archive size", limits.max_archive_bytes)
            spool.write(chunk)
        spool.seek(0)
        yield spool


def _open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open ``path`` for reading, refusing anything but a regular file.

    ``O_NONBLOCK`` makes opening a FIFO return at once instead of waiting for a
    writer (which would hang the loader for good), and ``fstat`` on the open
    descriptor, not the path, is what decides: nothing can be swapped in
    between the check and the read. A device such as ``/dev/zero`` would stream
    forever; a directory has no bytes.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    where = os.fspath(path)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ArchiveError(f"cannot read {where}: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ArchiveError(f"cannot read {where}: {_file_kind(mode)}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "a special file")


def _verify(fileobj: BinaryIO, limits: ArchiveLimits, expected: str | None) -> str:
    start = fileobj.tell()
    digest = hashlib.sha256()
    read = 0
    while chunk := fileobj.read(_CHUNK):
        read += len(chunk)
        if read > limits.max_archive_bytes:
            raise ArchiveLimitError("archive size", limits.max_archive_bytes)
        digest.update(chunk)
    fileobj.seek(start)
    actual = digest.hexdigest()
    if expected is not None and expected.lower() != actual:
        raise ChecksumMismatchError(expected.lower(), actual)
    return actual


class _CountingReader:
    """Decompressed bytes, refused past ``limit``: what stops a gzip bomb early."""

    def __init__(self, raw: gzip.GzipFile, limit: int) -> None:
        self._raw = raw
        self._limit = limit
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size if size >= 0 else _CHUNK)
        self.count += len(data)
        if self.count > self._limit:
            raise ArchiveLimitError("total uncompressed size", self._limit)
        return data


OnFile = Callable[[str, int, IO[bytes]], None]


def _walk(
    fileobj: BinaryIO, limits: ArchiveLimits, on_file: OnFile
) -> tuple[dict[str, int], set[str]]:
    """Check every member in one streaming pass; hand each regular file to ``on_file``."""
    files: dict[str, int] = {}
    dirs: set[str] = set()
    total = 0
    # Headers and padding take up to ~1.5 KiB per member beyond the file data.
    slack = 2048 * (limits.max_members + 2) + _CHUNK
    stream = _CountingReader(
        gzip.GzipFile(fileobj=fileobj, mode="rb"), limits.max_total_bytes + slack
    )
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
            for count, member in enumerate(tar, start=1):
                if count > limits.max_members:
                    raise ArchiveLimitError("number of members", limits.max_members)
                name = _safe_name(member)
                if member.isdir():
                    _no_collision(name, files, dirs, as_dir=True)
                    if name:
                        dirs.add(name)
                    continue
                _regular(member, name)
                _no_collision(name, files, dirs, as_dir=False)
                if member.size > limits.max_member_bytes:
                    raise ArchiveLimitError("member size", limits.max_member_bytes, member=name)
                total += member.size
                if total > limits.max_total_bytes:
                    raise ArchiveLimitError("total uncompressed size", limits.max_total_bytes)
                files[name] = member.size
                data = tar.extractfile(member)
                if data is None:  # pragma: no cover - regular files always have data
                    raise CorruptArchiveError(f"member {name!r} has no data")
                on_file(name, member.size, data)
    except gzip.BadGzipFile as exc:
        raise CorruptArchiveError(f"not a gzip-compressed archive: {exc}") from None
    except (EOFError, zlib.error) as exc:
        raise CorruptArchiveError(f"archive is truncated or corrupt: {exc}") from None
    except tarfile.TarError as exc:
        raise CorruptArchiveError(f"not a valid tar archive: {exc}") from None
    if not files:
        raise ManifestError([f"the archive is empty: expected {MANIFEST_NAME} and an artifact"])
    return files, dirs


def _safe_name(member: tarfile.TarInfo) -> str:
    raw = member.name
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        raise UnsafeArchiveError(raw, "absolute path")
    if "\\" in raw:
        raise UnsafeArchiveError(raw, "backslash in path")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(raw, "'..' in path")
    return "/".join(parts)


def _regular(member: tarfile.TarInfo, name: str) -> None:
    if member.isreg() and not member.issparse():
        return
    if member.issym():
        reason = f"symbolic link (to {member.linkname!r}); links are not allowed"
    elif member.islnk():
        reason = f"hard link (to {member.linkname!r}); links are not allowed"
    elif member.ischr() or member.isblk():
        reason = "device file"
    elif member.isfifo():
        reason = "FIFO"
    elif member.issparse():
        reason = "sparse file"
    else:
        reason = f"unsupported member type {member.type!r}"
    raise UnsafeArchiveError(name or member.name, reason)


def _no_collision(name: str, files: dict[str, int], dirs: set[str], *, as_dir: bool) -> None:
    if name in files:
        raise UnsafeArchiveError(name, "appears more than once")
    if not as_dir and name in dirs:
        raise UnsafeArchiveError(name, "is both a file and a directory")
    parts = name.split("/")
    for i in range(1, len(parts)):
        if "/".join(parts[:i]) in files:
            raise UnsafeArchiveError(name, f"is inside {'/'.join(parts[:i])!r}, which is a file")


def _root(files: dict[str, int], dirs: set[str]) -> str:
    if MANIFEST_NAME in files:
        return ""
    tops = {name.split("/", 1)[0] for name in (*files, *dirs)}
    if len(tops) == 1:
        (top,) = tops
        if f"{top}/{MANIFEST_NAME}" in files:
            return top
    raise ManifestError([f"no {MANIFEST_NAME} at the root of the archive"])


def _info(
    manifest: Manifest, digest: str, files: dict[str, int], dirs: set[str], prefix: str
) -> PackageInfo:
    rel = {name.removeprefix(prefix): size for name, size in files.items()}
    rel_dirs = {d.removeprefix(prefix) for d in dirs if d.startswith(prefix)}
    check_contents(manifest, rel, rel_dirs)
    entries = tuple(FileEntry(p, s) for p, s in sorted(rel.items()))
    return PackageInfo(manifest, digest, entries, sum(rel.values()))


def _writer(staging: Path) -> OnFile:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)

    def write(name: str, size: int, data: IO[bytes]) -> None:
        path = staging.joinpath(*name.split("/"))
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        fd = os.open(path, flags, 0o644)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(data, out, _CHUNK)

    return write


def _read_manifest(path: Path) -> Manifest:
    with path.open("rb") as fh:
        return parse_manifest(fh.read(MAX_MANIFEST_BYTES + 1))
