"""Model packages: the ``model.yaml`` format, safe archives, reproducible builds, loading.

The public surface, which the CLI, the prediction server and the hub use::

    from pilothouse.modelpkg import ArchiveLimits, inspect_archive, unpack_archive, load_model

    info = inspect_archive("iris-1.0.0.tar.gz", ArchiveLimits(), expected_sha256=digest)
    info = unpack_archive(upload, state_dir / info.sha256)      # verified, then renamed in
    model = load_model(state_dir / info.sha256)                 # framework imported only now
    model.predict(model.schema.from_rows(rows).matrix, proba=True)

Every error is a :class:`PackageError`; see :mod:`pilothouse.modelpkg.errors` for the tree.
This package imports nothing of the agent, the hub or the server.
"""

from pilothouse.modelpkg.archive import (
    DEFAULT_LIMITS,
    ArchiveLimits,
    inspect_archive,
    sha256_of,
    unpack_archive,
)
from pilothouse.modelpkg.contents import FileEntry, PackageInfo
from pilothouse.modelpkg.errors import (
    ArchiveError,
    ArchiveLimitError,
    ChecksumMismatchError,
    CorruptArchiveError,
    InputError,
    ManifestError,
    MissingExtraError,
    ModelError,
    ModelLoadError,
    ModelPredictError,
    PackageError,
    UnsafeArchiveError,
)
from pilothouse.modelpkg.loading import LoadedModel, Prediction, load_model
from pilothouse.modelpkg.manifest import (
    MANIFEST_NAME,
    Baseline,
    Categories,
    Feature,
    FeatureType,
    Histogram,
    Manifest,
    ModelFormat,
    Target,
    TargetType,
    dump_manifest,
    parse_manifest,
)
from pilothouse.modelpkg.packing import (
    build_package,
    inspect_directory,
    inspect_path,
    read_directory,
)
from pilothouse.modelpkg.tabular import Schema, Table

__all__ = [
    "DEFAULT_LIMITS",
    "MANIFEST_NAME",
    "ArchiveError",
    "ArchiveLimitError",
    "ArchiveLimits",
    "Baseline",
    "Categories",
    "ChecksumMismatchError",
    "CorruptArchiveError",
    "Feature",
    "FeatureType",
    "FileEntry",
    "Histogram",
    "InputError",
    "LoadedModel",
    "Manifest",
    "ManifestError",
    "MissingExtraError",
    "ModelError",
    "ModelFormat",
    "ModelLoadError",
    "ModelPredictError",
    "PackageError",
    "PackageInfo",
    "Prediction",
    "Schema",
    "Table",
    "Target",
    "TargetType",
    "UnsafeArchiveError",
    "build_package",
    "dump_manifest",
    "inspect_archive",
    "inspect_directory",
    "inspect_path",
    "load_model",
    "parse_manifest",
    "read_directory",
    "sha256_of",
    "unpack_archive",
]
