"""Trained iris packages, once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.modelpkg.factory import trained_iris


@pytest.fixture(scope="session")
def iris(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return trained_iris(tmp_path_factory.mktemp("iris"))
