"""Inspecting an uploaded model package archive, which is untrusted input.

The checks themselves are :mod:`pilothouse.modelpkg.archive`'s, the same the prediction
server applies before unpacking: the archive is streamed once and refused at
the first sign of trouble (not gzip, not tar, absolute paths, ``..``, links,
devices, too many entries, an oversized member, more decompressed bytes than
allowed — a gzip bomb stops at the limit), and ``model.yaml`` must be a valid
manifest whose artifact is present. So a package the hub accepts is one a
server can load. Here the outcome is translated, once, into the hub's error
tree: every :class:`~pilothouse.modelpkg.errors.PackageError` becomes a 422
``PackageRejected`` carrying its message. Nothing is extracted. Blocking: run
it in a thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pilothouse.hub.errors import PackageRejected
from pilothouse.modelpkg.archive import ArchiveLimits, inspect_archive
from pilothouse.modelpkg.errors import PackageError
from pilothouse.modelpkg.manifest import Manifest


def inspect(path: Path, limits: ArchiveLimits) -> tuple[Manifest, dict[str, Any]]:
    """Check the archive at ``path``; return its manifest (validated, and as a JSON object)."""
    try:
        info = inspect_archive(path, limits)
    except PackageError as exc:
        raise PackageRejected(str(exc)) from None
    except (OSError, EOFError, yaml.YAMLError) as exc:  # a corrupt stream the checks did not name
        raise PackageRejected(f"not a valid .tar.gz model package: {exc}") from None
    return info.manifest, info.manifest.model_dump(mode="json", exclude_defaults=True)
