"""The error tree of model packages.

A model package arrives from outside (an upload, a path someone typed, a
registry), so every way it can be wrong has a type of its own and a message
that names the member, the field or the limit involved. Errors of the layers
below (``tarfile``, ``gzip``, ``yaml``, pydantic, a framework's loader) are
translated into this tree where they enter, so a caller — the CLI, the
prediction server, later the hub — catches :class:`PackageError` and nothing
else.

    PackageError
    ├── ManifestError ............ model.yaml missing, not YAML, or a field is wrong
    ├── ArchiveError ............. the archive itself cannot be accepted
    │   ├── CorruptArchiveError .. not gzip, not tar, truncated
    │   ├── UnsafeArchiveError ... a member could escape or harm: absolute path, ``..``,
    │   │                          link, device, duplicate
    │   ├── ArchiveLimitError .... too many members, a member or the total too large
    │   └── ChecksumMismatchError  the sha256 is not the one expected
    ├── MissingExtraError ........ the package's framework is not installed
    ├── InputError ............... rows do not match the features (names row and feature)
    └── ModelError ............... the model itself misbehaves
        ├── ModelLoadError ....... the artifact cannot be loaded
        └── ModelPredictError .... predict raised or answered something unusable
"""

from __future__ import annotations


class PackageError(Exception):
    """Base of every error about a model package."""


class ManifestError(PackageError):
    """``model.yaml`` is missing or invalid; ``problems`` lists each one."""

    def __init__(self, problems: list[str], *, source: str = "model.yaml") -> None:
        self.problems = problems
        self.source = source
        if len(problems) == 1:
            super().__init__(f"{source}: {problems[0]}")
        else:
            lines = "\n".join(f"  - {p}" for p in problems)
            super().__init__(f"{source}:\n{lines}")


class ArchiveError(PackageError):
    """The archive cannot be accepted."""


class CorruptArchiveError(ArchiveError):
    """The file is not a readable gzip-compressed tar archive."""


class UnsafeArchiveError(ArchiveError):
    """A member could write outside the package or create something other than a file."""

    def __init__(self, member: str, reason: str) -> None:
        self.member = member
        self.reason = reason
        super().__init__(f"unsafe archive member {member!r}: {reason}")


class ArchiveLimitError(ArchiveError):
    """The archive exceeds a size or count limit (checked while streaming)."""

    def __init__(self, what: str, limit: int, *, member: str | None = None) -> None:
        self.what = what
        self.limit = limit
        self.member = member
        where = f" (member {member!r})" if member else ""
        super().__init__(f"archive too large: {what} exceeds the limit of {limit:,}{where}")


class ChecksumMismatchError(ArchiveError):
    """The archive's sha256 is not the one it was expected to have."""

    def __init__(self, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"sha256 mismatch: expected {expected}, got {actual}")


class MissingExtraError(PackageError):
    """A package needs a framework that is not installed; says which extra brings it."""

    def __init__(self, package_format: str, extra: str, missing: str) -> None:
        self.format = package_format
        self.extra = extra
        self.missing = missing
        super().__init__(
            f"loading a {package_format!r} model package needs {missing!r}, which is not "
            f"installed: pip install 'pilothouse[{extra}]'"
        )


class ModelError(PackageError):
    """The model in a package misbehaves."""


class ModelLoadError(ModelError):
    """The artifact could not be loaded."""


class ModelPredictError(ModelError):
    """The model's predict raised, or answered something of the wrong shape."""


class InputError(PackageError):
    """Input rows do not match the package's features; names the row and feature."""

    def __init__(
        self,
        message: str,
        *,
        feature: str | None = None,
        row: int | None = None,
        expected: str | None = None,
    ) -> None:
        self.feature = feature
        self.row = row
        self.expected = expected
        super().__init__(message)
