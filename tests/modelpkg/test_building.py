"""Packages build reproducibly, inspect the same as a directory or an archive, via the CLI too."""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

import orjson
import pytest

from pilothouse.cli import main
from pilothouse.modelpkg import (
    PackageError,
    UnsafeArchiveError,
    build_package,
    inspect_archive,
    inspect_directory,
    inspect_path,
    unpack_archive,
)
from tests.modelpkg.factory import python_package


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_files_same_sha256_even_after_touch(tmp_path: Path) -> None:
    pkg = python_package(tmp_path / "pkg", files={"data/weights.bin": b"\x00\x01" * 100})
    first, out1 = build_package(pkg, tmp_path / "a.tar.gz")
    for path in pkg.rglob("*"):
        os.utime(path, (1_000_000, 2_000_000))
    os.chmod(pkg / "model.py", 0o755)
    second, out2 = build_package(pkg, tmp_path / "b.tar.gz")
    assert sha(out1) == sha(out2) == first.sha256 == second.sha256
    assert inspect_directory(pkg).sha256 == first.sha256
    (pkg / "data" / "weights.bin").write_bytes(b"changed")
    assert build_package(pkg, tmp_path / "c.tar.gz")[0].sha256 != first.sha256


def test_members_are_sorted_with_fixed_metadata(tmp_path: Path) -> None:
    pkg = python_package(tmp_path / "pkg", files={"z.txt": b"z", "a/b.txt": b"b"})
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"cache")
    (pkg / "stale.pyc").write_bytes(b"cache")
    info, out = build_package(pkg, tmp_path / "p.tar.gz")
    with tarfile.open(out) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names) == ["a/b.txt", "model.py", "model.yaml", "z.txt"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {
        (0, 0, 0, "", "", 0o644)
    }
    raw = out.read_bytes()
    assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\x00\x00\x00\x00"  # gzip mtime 0
    assert [f.path for f in info.files] == names


def test_default_output_name_and_inspect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = python_package(tmp_path / "pkg")
    monkeypatch.chdir(tmp_path)
    info, out = build_package(pkg)
    assert out == tmp_path / "iris-test-1.0.0.tar.gz"
    from_archive = inspect_archive(out)
    assert from_archive == inspect_path(pkg) == info
    assert from_archive.to_dict()["manifest"]["name"] == "iris-test"
    dest = tmp_path / "unpacked"
    unpacked = unpack_archive(out, dest, expected_sha256=info.sha256)
    assert unpacked.sha256 == info.sha256
    assert sorted(p.name for p in dest.iterdir()) == ["model.py", "model.yaml"]
    assert oct((dest / "model.py").stat().st_mode & 0o777) == "0o644"


def test_directory_with_a_symlink_is_refused(tmp_path: Path) -> None:
    pkg = python_package(tmp_path / "pkg")
    (pkg / "link").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="'link': symbolic link"):
        build_package(pkg, tmp_path / "x.tar.gz")


def test_output_inside_the_package_is_refused(tmp_path: Path) -> None:
    pkg = python_package(tmp_path / "pkg")
    with pytest.raises(PackageError, match="must not be inside the package directory"):
        build_package(pkg, pkg / "self.tar.gz")


def test_missing_artifact_is_refused(tmp_path: Path) -> None:
    pkg = python_package(tmp_path / "pkg", artifact="missing.py")
    with pytest.raises(PackageError, match=r"artifact: 'missing\.py' is not in the package"):
        build_package(pkg, tmp_path / "x.tar.gz")


def test_cli_build_and_inspect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pkg = python_package(tmp_path / "pkg")
    out = tmp_path / "cli.tar.gz"
    assert main(["package", "build", str(pkg), "-o", str(out)]) == 0
    built = capsys.readouterr().out
    digest = sha(out)
    assert digest in built
    assert main(["package", "inspect", str(out), "--json"]) == 0
    doc = orjson.loads(capsys.readouterr().out)
    assert doc["sha256"] == digest
    assert [f["path"] for f in doc["files"]] == ["model.py", "model.yaml"]
    assert doc["manifest"]["target"]["classes"] == ["setosa", "versicolor", "virginica"]
    assert main(["package", "inspect", str(pkg)]) == 0
    text = capsys.readouterr().out
    assert f"sha256:    {digest}" in text and "features:  sepal_length (float)" in text
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not an archive")
    assert main(["package", "inspect", str(bad)]) == 1
    assert "not a gzip-compressed archive" in capsys.readouterr().err
