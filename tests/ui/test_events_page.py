"""The events page: the API's filters from a form, infinite scroll, live arrivals, export."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.hub.support import V1, Running, event, ok
from tests.ui.support import PHONE, logged_in, shot

pytestmark = pytest.mark.anyio

ROWS = "table.events tr.event-row"


async def _seed(hub: Running) -> tuple[dict[str, Any], dict[str, Any]]:
    pe = await hub.pe("prod")
    pkg = await hub.package()
    dep = await hub.deployment(pe["id"], pkg["id"], name="churn")
    start = datetime.now(UTC) - timedelta(hours=1)
    batch = [
        event(
            pe["id"],
            deployment_id=dep["id"],
            time=start + timedelta(seconds=i),
            status="failing" if i % 10 == 0 else "passing",
            type="deployment.health" if i % 10 == 0 else "deployment.ready",
            message=f"probe {i} "
            + ("timeout talking to the model server" if i % 10 == 0 else "ok"),
        )
        for i in range(250)
    ]
    await ok(hub.admin.post(f"{V1}/events", json={"events": batch}))
    return pe, dep


async def test_filters_scroll_live_and_export(browser: Any, hub: Running) -> None:
    pe, dep = await _seed(hub)
    page = await logged_in(browser, hub.url)
    await page.goto(f"{hub.url}/#/events")
    await page.wait_for_selector(".live[data-state='live']")
    # 250 seeded + the deployment's creation: the first page holds 100, scrolling loads more.
    assert await page.locator(ROWS).count() == 100
    await shot(page, "events-1280")
    while await page.locator(".event-list").get_attribute("data-complete") != "true":
        await page.locator(".sentinel").scroll_into_view_if_needed()
        await page.wait_for_timeout(50)
    assert await page.locator(ROWS).count() == 251

    # Filters: status and text search, applied from the form and kept in the address.
    await page.get_by_label("Status").select_option("failing")
    await page.get_by_label("Search").fill("timeout")
    await page.click("button:has-text('Apply filters')")
    await page.wait_for_function("location.hash.includes('status=failing')")
    await page.wait_for_selector(".live[data-state='live']")
    assert "q=timeout" in page.url
    assert await page.locator(ROWS).count() == 25
    statuses = await page.locator(f"{ROWS}").evaluate_all("rows => rows.map(r => r.dataset.status)")
    assert set(statuses) == {"failing"}

    # A new matching event arrives live at the top; a non-matching one does not.
    agent_event = event(
        pe["id"], deployment_id=dep["id"], time=datetime.now(UTC),
        status="failing", type="deployment.health", message="timeout again",
    )  # fmt: skip
    other = event(pe["id"], deployment_id=dep["id"], time=datetime.now(UTC), message="fine")
    await ok(hub.admin.post(f"{V1}/events", json={"events": [other, agent_event]}))
    await page.wait_for_selector(f"{ROWS}[data-event-id='{agent_event['id']}']", timeout=1000)
    assert await page.locator(ROWS).first.get_attribute("data-event-id") == agent_event["id"]
    assert await page.locator(f"{ROWS}[data-event-id='{other['id']}']").count() == 0

    # Export: exactly the current filter.
    async with page.expect_download() as info:
        await page.click("button:has-text('Export')")
    download = await info.value
    assert download.suggested_filename.endswith(".csv")
    text = await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 26
    assert {r["status"] for r in rows} == {"failing"}
    assert all("timeout" in r["message"] for r in rows)
    await page.get_by_label("Export format").select_option("jsonl")
    async with page.expect_download() as info:
        await page.click("button:has-text('Export')")
    assert (await info.value).suggested_filename.endswith(".jsonl")

    # A time range: only the first ten minutes of the seeded hour.
    await page.goto(f"{hub.url}/#/events?deployment_id={dep['id']}")
    await page.wait_for_selector(".live[data-state='live']")
    assert await page.get_by_label("Deployment").input_value() == dep["id"]
    await page.set_viewport_size(PHONE)
    await shot(page, "events-390")
    assert page.errors == []


async def test_a_bad_search_is_explained(browser: Any, hub: Running) -> None:
    await hub.pe("prod")
    page = await logged_in(browser, hub.url)
    await page.goto(f"{hub.url}/#/events?status=purple")
    await page.wait_for_selector("[role=alert]")
    assert "status" in await page.locator("[role=alert]").inner_text()
