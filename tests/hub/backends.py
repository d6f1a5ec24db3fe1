"""Every hub test on both store backends: the ``hub_backend`` fixture and its parametrization.

tests/hub and tests/reliability import these into their conftest. Each test
runs once per backend of :data:`~tests.hub.support.BACKENDS` — ``[sqlite]`` and
``[postgres]`` in its id — unless marked ``@pytest.mark.backends("sqlite")``:
a test of SQLite itself, or of something that never reaches the store. On
PostgreSQL each test gets a fresh database of the session's throwaway cluster,
already at the hub's schema (tests/postgres_support.py); every hub it starts through
:func:`~tests.hub.support.settings` uses it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hub import support


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``hub_backend`` with the backends the test runs on."""
    if "hub_backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    names = marker.args if marker is not None else support.BACKENDS
    metafunc.parametrize("hub_backend", names, indirect=True)


@pytest.fixture(autouse=True)
def hub_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """The backend of this run of the test; on PostgreSQL, with a fresh database."""
    backend: str = request.param
    url = request.getfixturevalue("postgres_hub_url") if backend == "postgres" else None
    support.DATABASE["url"] = url
    try:
        yield backend
    finally:
        support.DATABASE["url"] = None
