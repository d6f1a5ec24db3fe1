"""Inspecting an uploaded model package archive, which is untrusted input.

A package is a gzip-compressed tar with a ``model.yaml`` manifest at its root.
The archive is read as a stream, once, and refused (``PackageRejected``, 422)
at the first sign of trouble — before anything is stored:

* not gzip, corrupt gzip, not tar;
* an absolute path, a ``..`` component, a backslash, a duplicate entry;
* any link (symbolic or hard), device file or FIFO — only files and directories;
* more entries than ``max_package_files``, a file over ``max_member_bytes``, a
  metadata header (long name, pax) over 1 MiB;
* more than ``max_unpacked_bytes`` decompressed in total: counted on the bytes
  the decompressor actually produces, so a gzip bomb stops at the limit instead
  of filling memory or disk;
* a missing, oversized (> 1 MiB), non-YAML or invalid ``model.yaml``: ``name``,
  ``version`` and ``format`` (sklearn, onnx, python or mlflow) are required.

Nothing is ever extracted to disk here. Blocking: run it in a thread.
"""

from __future__ import annotations

import gzip
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Literal, Protocol, cast

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.errors import FieldProblem, PackageRejected

MANIFEST = "model.yaml"
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_HEADER_BYTES = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
_METADATA_TYPES = {
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
}


class Manifest(BaseModel):
    """``model.yaml``: what the package holds. Fields beyond these are kept as they are."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    version: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
    format: Literal["sklearn", "onnx", "python", "mlflow"]


@dataclass(frozen=True, slots=True)
class Limits:
    """How much an archive may hold."""

    max_files: int
    max_member_bytes: int
    max_unpacked_bytes: int


def inspect(path: Path, limits: Limits) -> tuple[Manifest, dict[str, Any]]:
    """Check the archive at ``path``; return its manifest (validated and as written)."""
    with path.open("rb") as raw:
        if raw.read(2) != b"\x1f\x8b":
            raise PackageRejected("not a gzip file: a model package is a .tar.gz archive")
        raw.seek(0)
        text = _read_members(raw, limits)
    return _manifest(text)


def _read_members(raw: IO[bytes], limits: Limits) -> bytes:
    try:
        with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
            counted = _Counted(unzipped, limits.max_unpacked_bytes)
            stream = cast("IO[bytes]", counted)  # stream mode ("r|") only ever reads
            with tarfile.open(fileobj=stream, mode="r|", tarinfo=_GuardedInfo) as tar:
                manifest = _walk(tar, limits)
            while counted.read(1 << 16):  # the rest, so the gzip checksum is verified too
                pass
            return manifest
    except (gzip.BadGzipFile, zlib.error, EOFError) as exc:
        raise PackageRejected(f"corrupt gzip data: {exc}") from None
    except tarfile.TarError as exc:
        raise PackageRejected(f"not a valid tar archive: {exc}") from None


def _walk(tar: tarfile.TarFile, limits: Limits) -> bytes:
    seen: set[str] = set()
    manifest: bytes | None = None
    for member in tar:
        name = _check(member, limits)
        if name in seen:
            raise PackageRejected(f"{name!r} appears more than once")
        seen.add(name)
        if len(seen) > limits.max_files:
            raise PackageRejected(f"more than {limits.max_files} entries")
        if name == MANIFEST and member.isfile():
            manifest = _read_manifest(tar, member)
    if manifest is None:
        raise PackageRejected(f"no {MANIFEST} at the root of the archive")
    return manifest


def _check(member: tarfile.TarInfo, limits: Limits) -> str:
    raw_name = member.name
    if raw_name.startswith("/") or _DRIVE.match(raw_name):
        raise PackageRejected(f"{raw_name!r}: absolute paths are not allowed")
    if "\\" in raw_name:
        raise PackageRejected(f"{raw_name!r}: backslashes are not allowed in a path")
    parts = [p for p in PurePosixPath(raw_name).parts if p != "."]
    if ".." in parts:
        raise PackageRejected(f"{raw_name!r}: '..' is not allowed in a path")
    if member.issym() or member.islnk():
        raise PackageRejected(f"{raw_name!r}: links are not allowed")
    if not (member.isfile() or member.isdir()):
        raise PackageRejected(f"{raw_name!r}: only files and directories are allowed")
    if member.size > limits.max_member_bytes:
        raise PackageRejected(f"{raw_name!r}: larger than {limits.max_member_bytes} bytes")
    return "/".join(parts) or "."


def _read_manifest(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    if member.size > MAX_MANIFEST_BYTES:
        raise PackageRejected(f"{MANIFEST} is larger than {MAX_MANIFEST_BYTES} bytes")
    stream = tar.extractfile(member)
    assert stream is not None  # a regular file always has a stream
    return stream.read()


def _manifest(text: bytes) -> tuple[Manifest, dict[str, Any]]:
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise PackageRejected(f"{MANIFEST} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PackageRejected(f"{MANIFEST} must be a mapping with name, version and format")
    try:
        return Manifest.model_validate(data), data
    except ValidationError as exc:
        problems = [_problem(err) for err in exc.errors(include_url=False)]
        listing = "; ".join(f"{p.field}: {p.message}" for p in problems)
        raise PackageRejected(f"invalid {MANIFEST}: {listing}", problems) from None


def _problem(err: Any) -> FieldProblem:
    where = ".".join(str(p) for p in err["loc"])
    value = err.get("input") if isinstance(err.get("input"), str | int | float) else None
    return FieldProblem(f"{MANIFEST}:{where}", err["msg"], value)


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Counted:
    """A read-only stream that refuses to produce more than ``limit`` bytes."""

    def __init__(self, inner: _Readable, limit: int) -> None:
        self._inner = inner
        self._limit = limit
        self._count = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._inner.read(size)
        self._count += len(chunk)
        if self._count > self._limit:
            raise PackageRejected(f"unpacks to more than {self._limit} bytes")
        return chunk


class _GuardedInfo(tarfile.TarInfo):
    """Refuses metadata headers (long names, pax) big enough to exhaust memory."""

    def _proc_member(self, archive: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _METADATA_TYPES and self.size > MAX_HEADER_BYTES:
            raise PackageRejected(f"a metadata header of {self.size} bytes is too large")
        return cast(tarfile.TarInfo, super()._proc_member(archive))  # type: ignore[misc]
