"""Building a package archive from a directory, reproducibly.

The same directory always packs to the same bytes, so a package's sha256 is
its identity: members are sorted, and every header carries mtime 0, uid/gid 0,
empty owner names and mode 0644; the gzip header has mtime 0 and no file name.
Touching a file changes nothing; editing one changes the digest. Bytecode
caches (``__pycache__``, ``*.pyc``) are left out, since loading a ``python``
package writes them. A directory may hold only regular files and directories:
a symbolic link would make the package depend on what it points to.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pilothouse.modelpkg.archive import DEFAULT_LIMITS, ArchiveLimits, inspect_archive
from pilothouse.modelpkg.contents import (
    EXCLUDED_DIRS,
    EXCLUDED_SUFFIXES,
    FileEntry,
    PackageInfo,
    check_contents,
)
from pilothouse.modelpkg.errors import (
    ArchiveLimitError,
    ManifestError,
    PackageError,
    UnsafeArchiveError,
)
from pilothouse.modelpkg.manifest import MANIFEST_NAME, MAX_MANIFEST_BYTES, Manifest, parse_manifest


@dataclass(frozen=True, slots=True)
class _Member:
    path: str
    source: Path
    size: int


def read_directory(path: str | os.PathLike[str]) -> Manifest:
    """Read and validate a package directory's manifest and contents."""
    manifest, _ = _scan(Path(path), DEFAULT_LIMITS)
    return manifest


def inspect_directory(
    path: str | os.PathLike[str], limits: ArchiveLimits = DEFAULT_LIMITS
) -> PackageInfo:
    """Manifest, files and the sha256 the directory's archive would have (nothing is written)."""
    manifest, members = _scan(Path(path), limits)
    sink = _HashingSink()
    _pack(members, sink)  # type: ignore[arg-type]  # only write() is used
    return _info(manifest, sink.hexdigest(), members)


def inspect_path(
    path: str | os.PathLike[str], limits: ArchiveLimits = DEFAULT_LIMITS
) -> PackageInfo:
    """Inspect a package directory or a ``.tar.gz`` archive."""
    return inspect_directory(path, limits) if Path(path).is_dir() else inspect_archive(path, limits)


def build_package(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    limits: ArchiveLimits = DEFAULT_LIMITS,
) -> tuple[PackageInfo, Path]:
    """Validate ``source`` and pack it into ``output`` (default ``NAME-VERSION.tar.gz`` here).

    The archive is written beside its destination and renamed into place, then
    read back through :func:`~pilothouse.modelpkg.archive.inspect_archive`: what is built
    passes the checks an upload would face.
    """
    src = Path(source)
    manifest, members = _scan(src, limits)
    out = Path(output) if output else Path.cwd() / f"{manifest.name}-{manifest.version}.tar.gz"
    if out.resolve().is_relative_to(src.resolve()):
        raise PackageError(f"the output {out} must not be inside the package directory {src}")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f".{out.name}.{uuid.uuid4().hex[:12]}.partial"
    try:
        with partial.open("wb") as fh:
            _pack(members, fh)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return inspect_archive(out, limits), out


def _scan(root: Path, limits: ArchiveLimits) -> tuple[Manifest, list[_Member]]:
    if not root.is_dir():
        raise PackageError(f"{root} is not a directory")
    members: list[_Member] = []
    dirs: list[str] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        rel_here = here.relative_to(root).as_posix()
        prefix = "" if rel_here == "." else f"{rel_here}/"
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_DIRS)
        for name in dirnames:
            if (here / name).is_symlink():
                raise UnsafeArchiveError(f"{prefix}{name}", "symbolic link; links are not allowed")
            dirs.append(f"{prefix}{name}")
        for name in sorted(filenames):
            if name.endswith(EXCLUDED_SUFFIXES):
                continue
            rel = f"{prefix}{name}"
            info = os.lstat(here / name)
            if stat.S_ISLNK(info.st_mode):
                raise UnsafeArchiveError(rel, "symbolic link; links are not allowed")
            if not stat.S_ISREG(info.st_mode):
                raise UnsafeArchiveError(rel, "not a regular file")
            if info.st_size > limits.max_member_bytes:
                raise ArchiveLimitError("member size", limits.max_member_bytes, member=rel)
            total += info.st_size
            if total > limits.max_total_bytes:
                raise ArchiveLimitError("total uncompressed size", limits.max_total_bytes)
            members.append(_Member(rel, here / name, info.st_size))
        if len(members) + len(dirs) > limits.max_members:
            raise ArchiveLimitError("number of members", limits.max_members)
    members.sort(key=lambda m: m.path)
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise ManifestError([f"no {MANIFEST_NAME} in {root}"])
    with manifest_path.open("rb") as fh:
        manifest = parse_manifest(fh.read(MAX_MANIFEST_BYTES + 1), source=str(manifest_path))
    check_contents(manifest, [m.path for m in members], dirs)
    return manifest, members


def _pack(members: list[_Member], out: BinaryIO) -> None:
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz,
        tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        for member in members:
            info = tarfile.TarInfo(member.path)
            info.size = member.size
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with member.source.open("rb") as fh:
                tar.addfile(info, fh)


def _info(manifest: Manifest, digest: str, members: list[_Member]) -> PackageInfo:
    files = tuple(FileEntry(m.path, m.size) for m in members)
    return PackageInfo(manifest, digest, files, sum(f.size for f in files))


class _HashingSink:
    """A write-only file that only hashes what is written to it."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered."""

    def hexdigest(self) -> str:
        """The digest so far."""
        return self._digest.hexdigest()
