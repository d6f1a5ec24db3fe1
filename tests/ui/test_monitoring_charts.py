"""The deployment's Monitoring tab in a real browser: charts drawn from the hub's statistics,
figures equal to the API's, the drift status naming its features."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pilothouse.foundation.domain.monitoring import ChallengerWindow
from tests.hub.stats_windows import NORMAL, SHIFTED, latency, post, series, window
from tests.hub.support import Running
from tests.ui.support import PHONE, logged_in, shot
from tests.ui.test_every_page_fits_and_is_labelled import LOW_CONTRAST, UNNAMED

pytestmark = pytest.mark.anyio

CELLS = """(sel) => [...document.querySelectorAll(sel + ' .chart-figures tbody tr')]
  .map(tr => [...tr.children].map(c => c.textContent))"""
HEADER = """(sel) => [...document.querySelectorAll(sel + ' .chart-figures thead th')]
  .map(c => c.textContent)"""
CHARTS = ("requests", "error-rate", "latency", "drift", "challengers")

PAINTED = """(sel) => { const c = document.querySelector(sel + ' canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""


async def _deployment_with_traffic(hub: Running) -> dict[str, Any]:
    pe = await hub.pe()
    champion, challenger = await hub.package("m", "1"), await hub.package("m", "2")
    dep = await hub.deployment(pe["id"], champion["id"], name="fraud")
    agent = await hub.agent(pe["id"])
    base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=20)
    windows = [
        window(dep["id"], champion["id"], base + timedelta(minutes=i), requests=100 + 10 * i,
               server_errors=i, features={"age": NORMAL, "income": SHIFTED if i > 5 else NORMAL},
               challengers=[ChallengerWindow(package_id=challenger["id"], rows=50, compared=50,
                                             agreeing=40 + i, latency=latency(*(0.01,) * 50))])
        for i in range(10)
    ]  # fmt: skip
    assert (await post(agent, windows))[0] == 200
    return dep


async def test_the_monitoring_tab_charts_the_statistics(browser: Any, hub: Running) -> None:
    dep = await _deployment_with_traffic(hub)
    page = await logged_in(browser, hub.url)
    await page.goto(f"{hub.url}/#/deployments/{dep['id']}/monitoring")
    for chart in CHARTS:
        await page.wait_for_selector(f"[data-chart='{chart}'] canvas")
        assert await page.evaluate(PAINTED, f"[data-chart='{chart}']") > 500, chart
    assert await page.locator("[role=tab][aria-selected=true]").inner_text() == "Monitoring"
    drift = page.locator(".drift-status")
    assert await drift.get_attribute("data-status") == "failing"
    assert "income" in await page.locator(".drift-features").inner_text()
    # the figures under each chart are the API's (the busiest package of each step)
    charts = page.locator(".charts")
    span = {
        "from": await charts.get_attribute("data-from"),
        "to": await charts.get_attribute("data-to"),
    }
    api = await series(hub.admin, dep["id"], **span)
    requests = {p["start"]: p["requests"] for p in api["points"]}
    cells = await page.evaluate(CELLS, "[data-chart='requests']")
    shown = {row[0]: int(row[1]) for row in cells}
    assert shown == requests and sum(shown.values()) == sum(100 + 10 * i for i in range(10))
    header = await page.evaluate(HEADER, "[data-chart='drift']")
    assert header == ["Step", "age", "income", "prediction"]
    header = await page.evaluate(HEADER, "[data-chart='challengers']")
    assert header[1] == "champion p99 ms" and header[2].endswith("agreement %")
    await shot(page, "deployment-monitoring-1280", full=True)
    assert await page.evaluate(UNNAMED) == []
    assert await page.evaluate(LOW_CONTRAST) == []
    await page.set_viewport_size(PHONE)
    await page.reload()
    await page.wait_for_selector("[data-chart='challengers'] canvas")
    width = await page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
    await shot(page, "deployment-monitoring-390", full=True)
    assert page.errors == []


async def test_without_statistics_the_tab_says_so(browser: Any, hub: Running) -> None:
    pe = await hub.pe()
    dep = await hub.deployment(pe["id"], (await hub.package())["id"])
    page = await logged_in(browser, hub.url)
    await page.goto(f"{hub.url}/#/deployments/{dep['id']}/monitoring")
    await page.wait_for_selector(".empty-charts")
    assert await page.locator(".drift-status").get_attribute("data-status") == "unknown"
    assert page.errors == []
