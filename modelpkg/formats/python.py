"""``python``: a module (or a package directory) with a class that loads and predicts.

The artifact is ``model.py`` or a directory with ``__init__.py`` (then its
relative imports work). The class named by ``python_class`` (default
``Model``) is constructed with the package directory, so it can read its own
files, and is then called with the validated matrix::

    class Model:
        def __init__(self, package_dir: pathlib.Path) -> None: ...
        def predict(self, rows: numpy.ndarray) -> Sequence: ...          # one per row
        def predict_proba(self, rows: numpy.ndarray) -> numpy.ndarray: ...  # optional

Each load imports the module under a fresh name, so two versions of one
package can be loaded side by side during a replacement. Running the module
is running its code: load only packages you trust (the server's admin token
is that trust boundary).
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy.typing as npt

from pilothouse.modelpkg.errors import ModelLoadError
from pilothouse.modelpkg.formats import Predictor
from pilothouse.modelpkg.manifest import Manifest


def load(package_dir: Path, manifest: Manifest) -> Predictor:
    """Import the module, construct the class with the package directory."""
    path = package_dir / manifest.artifact
    name = f"_pilothouse_model_{uuid.uuid4().hex}"
    if path.is_dir():
        spec = importlib.util.spec_from_file_location(
            name, path / "__init__.py", submodule_search_locations=[str(path)]
        )
    else:
        spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"{manifest.artifact}: not an importable Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        cls = getattr(module, manifest.python_class, None)
        if cls is None:
            raise ModelLoadError(
                f"{manifest.artifact}: no class {manifest.python_class!r} (set python_class)"
            )
        instance = cls(package_dir)
        if not callable(getattr(instance, "predict", None)):
            raise ModelLoadError(f"{manifest.artifact}: {manifest.python_class} has no predict()")
    except BaseException:
        _forget(name)
        raise
    return PythonPredictor(instance, name)


def _forget(module_name: str) -> None:
    for key in [k for k in sys.modules if k == module_name or k.startswith(f"{module_name}.")]:
        del sys.modules[key]


class PythonPredictor(Predictor):
    """Delegates to the user's object."""

    def __init__(self, instance: Any, module_name: str) -> None:
        self.instance = instance
        self._module_name = module_name
        self.supports_proba = callable(getattr(instance, "predict_proba", None))

    def predict(self, matrix: npt.NDArray[Any]) -> Any:
        """``instance.predict(rows)``."""
        return self.instance.predict(matrix)

    def predict_proba(self, matrix: npt.NDArray[Any]) -> Any:
        """``instance.predict_proba(rows)``."""
        return self.instance.predict_proba(matrix)

    def close(self) -> None:
        """Call the object's ``close()`` if it has one; drop its module."""
        closer = getattr(self.instance, "close", None)
        if callable(closer):
            closer()
        _forget(self._module_name)
