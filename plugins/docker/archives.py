"""Files into and out of containers: the tar archives of the engine's archive API.

``put_archive`` takes a tar whose members land under a directory of the
container (its volume here), owned by the uid and gid the tar names; so the
server's admin token, the front's backend and every model package reach a
container this way, before or after it starts, and no file is shared with the
agent's disk. Building an archive reads files: it runs in a thread.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

from pilothouse.modelpkg import build_package

CHUNK = 1024 * 1024


def one_file(name: str, data: bytes, *, uid: int, gid: int, mode: int = 0o400) -> bytes:
    """A tar holding one file ``name`` (a relative path) with ``data``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        _directories(archive, name, uid, gid)
        info = _owned(tarfile.TarInfo(name), uid, gid, mode)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def wrap_file(source: Path, name: str, out: Path, *, uid: int, gid: int) -> None:
    """Write to ``out`` a tar holding the file ``source`` as ``name`` (read-only for ``uid``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial")
    with tarfile.open(partial, mode="w") as archive:
        _directories(archive, name, uid, gid)
        info = _owned(archive.gettarinfo(str(source), arcname=name), uid, gid, 0o440)
        with source.open("rb") as fh:
            archive.addfile(info, fh)
    partial.replace(out)


def read_member(archive: tarfile.TarFile, name: str) -> bytes:
    """The content of the file ``name`` in an archive the engine returned."""
    member = archive.extractfile(name)
    if member is None:
        raise KeyError(f"{name} is not a file in the archive")
    return member.read()


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def packed(directory: Path, out_dir: Path) -> tuple[Path, str]:
    """A package directory as its reproducible archive under ``out_dir``, and its sha256."""
    info, archive = build_package(directory, out_dir / f"{directory.name}.tar.gz")
    return archive, info.sha256


def _directories(archive: tarfile.TarFile, name: str, uid: int, gid: int) -> None:
    parts = Path(name).parts
    for depth in range(1, len(parts)):
        info = _owned(tarfile.TarInfo("/".join(parts[:depth])), uid, gid, 0o750)
        info.type = tarfile.DIRTYPE
        archive.addfile(info)


def _owned(info: tarfile.TarInfo, uid: int, gid: int, mode: int) -> tarfile.TarInfo:
    info.uid, info.gid, info.uname, info.gname, info.mode = uid, gid, "", "", mode
    return info
