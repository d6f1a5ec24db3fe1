"""What a model package holds, and the checks every way of reading one shares.

Whether a package comes as a directory, a freshly built archive or an
untrusted upload, the same rules decide whether it is usable: the manifest
validates, the artifact it names is present, and the sample rows fit the
features. :class:`PackageInfo` is what inspecting any of them returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pilothouse.modelpkg.errors import InputError, ManifestError
from pilothouse.modelpkg.manifest import MANIFEST_NAME, Manifest
from pilothouse.modelpkg.tabular import Schema

EXCLUDED_DIRS = frozenset({"__pycache__", ".git", ".ipynb_checkpoints"})
"""Directories never packed (caches, version control)."""
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
"""Files never packed (bytecode caches are not reproducible)."""


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One regular file of a package."""

    path: str
    """POSIX path relative to the package root."""
    size: int
    """Size in bytes."""


@dataclass(frozen=True, slots=True)
class PackageInfo:
    """A package's manifest, identity and contents."""

    manifest: Manifest
    """The validated ``model.yaml``."""
    sha256: str
    """sha256 of the (reproducible) archive: the package's identity."""
    files: tuple[FileEntry, ...]
    """Every regular file, sorted by path."""
    size: int
    """Total uncompressed size of the files, in bytes."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (manifest without defaults)."""
        return {
            "name": self.manifest.name,
            "version": self.manifest.version,
            "format": self.manifest.format.value,
            "sha256": self.sha256,
            "size": self.size,
            "files": [{"path": f.path, "size": f.size} for f in self.files],
            "manifest": self.manifest.model_dump(mode="json", exclude_defaults=True),
        }


def check_contents(manifest: Manifest, files: Iterable[str], dirs: Iterable[str]) -> None:
    """Refuse a package whose artifact is missing or whose samples do not fit its features."""
    file_set = set(files)
    dir_set = set(dirs)
    for path in file_set:
        parts = path.split("/")
        dir_set.update("/".join(parts[:i]) for i in range(1, len(parts)))
    artifact = manifest.artifact
    if artifact not in file_set and artifact not in dir_set:
        raise ManifestError([f"artifact: {artifact!r} is not in the package"])
    if artifact == MANIFEST_NAME:
        raise ManifestError(["artifact: must not be the manifest itself"])
    check_samples(manifest)


def check_samples(manifest: Manifest) -> None:
    """Convert the sample rows as a request would be, naming the first one that does not fit."""
    if not manifest.samples:
        return
    try:
        Schema(manifest.features).from_rows(list(manifest.samples))
    except InputError as exc:
        raise ManifestError([f"samples: {exc}"]) from None
