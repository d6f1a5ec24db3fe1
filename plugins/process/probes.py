"""Rows to probe a deployment with: the package's samples, or synthesized valid rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pilothouse.modelpkg.manifest import FeatureType, Manifest
from pilothouse.modelpkg.packing import inspect_path

_SYNTHETIC: dict[FeatureType, Any] = {
    FeatureType.FLOAT: 0.0,
    FeatureType.INTEGER: 0,
    FeatureType.BOOLEAN: False,
    FeatureType.STRING: "",
}


class ProbeRows:
    """Probe rows per model package, learnt from each package's manifest."""

    def __init__(self, max_rows: int = 3) -> None:
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._max = max_rows

    def learn(self, model_package_id: str, source: Path) -> None:
        """Read the manifest of a package directory or archive (blocking: use a thread)."""
        if model_package_id not in self._rows:
            self._rows[model_package_id] = rows_for(inspect_path(source).manifest, self._max)

    def rows(self, model_package_id: str) -> list[dict[str, Any]]:
        """The probe rows of a package (one empty row if its manifest was never read)."""
        return self._rows.get(model_package_id) or [{}]


def rows_for(manifest: Manifest, max_rows: int) -> list[dict[str, Any]]:
    """The manifest's sample rows, or one row of neutral values of the right types."""
    if manifest.samples:
        return [dict(r) for r in manifest.samples[:max_rows]]
    return [{f.name: _SYNTHETIC[f.type] for f in manifest.features}]
