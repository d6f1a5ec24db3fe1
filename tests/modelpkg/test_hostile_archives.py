"""Every hostile or broken archive is refused with a clear error, and nothing is left behind."""

from __future__ import annotations

import gzip
import io
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from pilothouse.modelpkg import (
    ArchiveLimitError,
    ArchiveLimits,
    ChecksumMismatchError,
    CorruptArchiveError,
    ManifestError,
    PackageError,
    UnsafeArchiveError,
    inspect_archive,
    unpack_archive,
)
from tests.modelpkg.factory import manifest

MANIFEST = yaml.safe_dump(manifest()).encode()
CODE = (
    b"class Model:\n"
    b"    def __init__(self, d): pass\n"
    b"    def predict(self, rows): return rows[:, 0]\n"
)
LIMITS = ArchiveLimits(
    max_archive_bytes=1 << 20, max_members=20, max_member_bytes=1 << 16, max_total_bytes=1 << 18
)


def member(
    name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, **extra: object
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    for key, value in extra.items():
        setattr(info, key, value)
    return info, data


def archive(*members: tuple[tarfile.TarInfo, bytes], valid: bool = True) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if valid:
            tar.addfile(*_regular("model.yaml", MANIFEST))
            tar.addfile(*_regular("model.py", CODE))
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data else None)
    return gzip.compress(raw.getvalue(), mtime=0)


def _regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, io.BytesIO(data)


def bomb() -> bytes:
    """A tar whose first member claims (and holds) 64 MiB of zeros: ~64 KiB gzipped."""
    header = tarfile.TarInfo("model.yaml")
    header.size = 64 << 20
    stream = io.BytesIO()
    with gzip.GzipFile(fileobj=stream, mode="wb", mtime=0) as gz:
        gz.write(header.tobuf(format=tarfile.GNU_FORMAT))
        zeros = bytes(1 << 20)
        for _ in range(64):
            gz.write(zeros)
    return stream.getvalue()


def longname_bomb() -> bytes:
    """A GNU long-name header of 64 MiB: tarfile reads it itself, before handing us a member."""
    header = tarfile.TarInfo("././@LongLink")
    header.type = tarfile.GNUTYPE_LONGNAME
    header.size = 64 << 20
    stream = io.BytesIO()
    with gzip.GzipFile(fileobj=stream, mode="wb", mtime=0) as gz:
        gz.write(header.tobuf(format=tarfile.USTAR_FORMAT))
        zeros = b"a" * (1 << 20)
        for _ in range(64):
            gz.write(zeros)
    return stream.getvalue()


HOSTILE: dict[str, tuple[Callable[[], bytes], type[PackageError], str]] = {
    "absolute path": (
        lambda: archive(member("/etc/cron.d/x", b"x")),
        UnsafeArchiveError,
        "absolute path",
    ),
    "dot-dot": (lambda: archive(member("a/../../x", b"x")), UnsafeArchiveError, "'..' in path"),
    "backslash": (lambda: archive(member("..\\x", b"x")), UnsafeArchiveError, "backslash"),
    "symlink": (
        lambda: archive(member("data", kind=tarfile.SYMTYPE, linkname="/etc")),
        UnsafeArchiveError,
        "symbolic link (to '/etc')",
    ),
    "hardlink": (
        lambda: archive(member("copy", kind=tarfile.LNKTYPE, linkname="model.py")),
        UnsafeArchiveError,
        "hard link",
    ),
    "char device": (
        lambda: archive(member("tty", kind=tarfile.CHRTYPE)),
        UnsafeArchiveError,
        "device file",
    ),
    "block device": (
        lambda: archive(member("sda", kind=tarfile.BLKTYPE)),
        UnsafeArchiveError,
        "device file",
    ),
    "fifo": (lambda: archive(member("pipe", kind=tarfile.FIFOTYPE)), UnsafeArchiveError, "FIFO"),
    "duplicate": (
        lambda: archive(member("model.py", b"again")),
        UnsafeArchiveError,
        "appears more than once",
    ),
    "file under a file": (
        lambda: archive(member("model.py/x", b"x")),
        UnsafeArchiveError,
        "which is a file",
    ),
    "too many files": (
        lambda: archive(*(member(f"f{i:03d}", b"x") for i in range(30))),
        ArchiveLimitError,
        "number of members exceeds the limit of 20",
    ),
    "oversized member": (
        lambda: archive(member("big.bin", bytes(1 << 17))),
        ArchiveLimitError,
        "member size exceeds the limit of 65,536 (member 'big.bin')",
    ),
    "total too large": (
        lambda: archive(*(member(f"part{i}", bytes(60_000)) for i in range(6))),
        ArchiveLimitError,
        "total uncompressed size exceeds",
    ),
    "gzip bomb": (bomb, ArchiveLimitError, "member size exceeds"),
    "long-name bomb": (longname_bomb, ArchiveLimitError, "total uncompressed size exceeds"),
    "not gzip": (
        lambda: b"PK\x03\x04 this is a zip file",
        CorruptArchiveError,
        "not a gzip-compressed archive",
    ),
    "plain tar": (
        lambda: gzip.decompress(archive()),
        CorruptArchiveError,
        "not a gzip-compressed archive",
    ),
    "truncated": (lambda: archive()[:-40], CorruptArchiveError, "truncated or corrupt"),
    "gzip of garbage": (
        lambda: gzip.compress(b"garbage" * 100),
        CorruptArchiveError,
        "not a valid tar archive",
    ),
    "missing manifest": (
        lambda: archive(member("model.py", CODE), valid=False),
        ManifestError,
        "no model.yaml at the root",
    ),
    "bad manifest": (
        lambda: archive(
            member("model.yaml", b"name: [oops"), member("model.py", CODE), valid=False
        ),
        ManifestError,
        "not valid YAML",
    ),
    "invalid manifest": (
        lambda: archive(member("model.yaml", b"name: x\n"), member("model.py", CODE), valid=False),
        ManifestError,
        "format: required",
    ),
    "too large archive": (lambda: archive() + bytes(2 << 20), ArchiveLimitError, "archive size"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_is_refused(case: str, tmp_path: Path) -> None:
    make, error, message = HOSTILE[case]
    path = tmp_path / "hostile.tar.gz"
    path.write_bytes(make())
    began = time.perf_counter()
    with pytest.raises(error) as info:
        inspect_archive(path, LIMITS)
    assert message in str(info.value)
    dest = tmp_path / "out" / "pkg"
    with pytest.raises(error):
        unpack_archive(path, dest, LIMITS)
    assert list((tmp_path / "out").iterdir()) == [], "nothing may be left behind"
    assert time.perf_counter() - began < 5


def test_gzip_bomb_stops_early(tmp_path: Path) -> None:
    """The long-name bomb is refused after reading about the limit, not all 64 MiB."""
    data = longname_bomb()
    began = time.process_time()
    with pytest.raises(ArchiveLimitError):
        inspect_archive(io.BytesIO(data), LIMITS)
    assert time.process_time() - began < 0.5


def test_sha256_mismatch_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "ok.tar.gz"
    path.write_bytes(archive())
    good = inspect_archive(path, LIMITS)
    with pytest.raises(ChecksumMismatchError, match=f"expected {'0' * 64}, got {good.sha256}"):
        inspect_archive(path, LIMITS, expected_sha256="0" * 64)
    with pytest.raises(ChecksumMismatchError):
        unpack_archive(path, tmp_path / "dest", LIMITS, expected_sha256="f" * 64)
    assert not (tmp_path / "dest").exists()


def test_a_single_top_level_directory_is_the_root(tmp_path: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in (("pkg/model.yaml", MANIFEST), ("pkg/model.py", CODE)):
            tar.addfile(*_regular(name, data))
    raw.seek(0)
    info = unpack_archive(raw, tmp_path / "dest", LIMITS)
    assert [f.path for f in info.files] == ["model.py", "model.yaml"]
    assert (tmp_path / "dest" / "model.yaml").is_file()
    assert raw.tell() == 0, "a file object is left where it was"


def test_non_seekable_stream(tmp_path: Path) -> None:
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            chunk = self._inner.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    info = inspect_archive(io.BufferedReader(Pipe(archive())), LIMITS)
    assert info.manifest.name == "iris-test"
