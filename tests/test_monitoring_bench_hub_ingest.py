"""bench/monitoring.py's hub-ingest phase against a real hub (a subprocess), at a small scale."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import monitoring as monitoring_bench

pytestmark = pytest.mark.anyio


async def test_the_hub_ingest_phase_measures_a_real_hub(tmp_path: Path) -> None:
    figures = await monitoring_bench.hub_ingest(tmp_path, deployments=20, minutes=2)
    assert figures["hub_ingest_windows"] == 20 * 2, "every window accepted, none a duplicate"
    rate = figures["hub_ingest_windows_per_s"]
    assert isinstance(rate, float) and rate > 0
