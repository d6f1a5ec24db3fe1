"""The inventory (filter by PE and status, search by name, live rows) and the notification
and retention settings, in a real browser against a real hub."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pilothouse.hub.settings import NotificationSettings
from tests.hub.receivers import receiving
from tests.hub.support import V1, Running, event, ok, running, settings
from tests.ui.support import PHONE, logged_in, shot

pytestmark = pytest.mark.anyio

ROWS = "table.inventory tbody tr[data-id]"


async def _visible(page: Any) -> list[str]:
    names: list[str] = await page.locator(f"{ROWS}:visible th a").all_inner_texts()
    return names


async def test_inventory_filters_search_and_live_rows(browser: Any, hub: Running) -> None:
    prod, edge = await hub.pe("prod"), await hub.pe("edge")
    pkg = await hub.package()
    deps = {}
    for pe, name in ((prod, "fraud-eu"), (prod, "fraud-us"), (edge, "churn"), (edge, "ltv")):
        deps[name] = await hub.deployment(pe["id"], pkg["id"], name=name)
    now = datetime.now(UTC)
    statuses = {"fraud-eu": "failing", "fraud-us": "passing", "churn": "at_risk"}
    await ok(hub.admin.post(f"{V1}/events", json={"events": [
        event(deps[n]["prediction_environment_id"], deployment_id=deps[n]["id"], status=s, time=now)
        for n, s in statuses.items()
    ]}))  # fmt: skip

    page = await logged_in(browser, hub.url)
    await page.wait_for_selector(ROWS)
    assert sorted(await _visible(page)) == ["churn", "fraud-eu", "fraud-us", "ltv"]
    row = page.locator(f"{ROWS}[data-name='fraud-eu']")
    assert await row.locator(".status-icon").get_attribute("data-status") == "failing"
    assert await row.locator("td[data-label='Environment']").inner_text() == "prod"
    assert "iris 1.0" in await row.locator("td[data-label='Champion']").inner_text()
    assert await row.locator("td[data-label='Last event'] time").count() == 1
    await shot(page, "inventory-1280")

    await page.get_by_label("Prediction environment").select_option(prod["id"])
    assert sorted(await _visible(page)) == ["fraud-eu", "fraud-us"]
    await page.get_by_label("Service health").select_option("failing")
    assert await _visible(page) == ["fraud-eu"]
    assert "status=failing" in page.url
    await page.get_by_label("Prediction environment").select_option("")
    await page.get_by_label("Service health").select_option("")
    await page.get_by_label("Search by name").fill("FRAUD")
    assert sorted(await _visible(page)) == ["fraud-eu", "fraud-us"]
    assert "of 4 deployments" in await page.locator(".count").inner_text()
    await page.get_by_label("Search by name").fill("")

    # A failing report turns its row red without a reload.
    later = event(edge["id"], deployment_id=deps["ltv"]["id"], status="failing", time=now)
    await ok(hub.admin.post(f"{V1}/events", json={"events": [later]}))
    await page.wait_for_selector(f"{ROWS}[data-name='ltv'][data-status='failing']", timeout=3000)

    await page.click(f"{ROWS}[data-name='churn'] th a")
    await page.wait_for_selector("h1:has-text('churn')")
    await page.go_back()
    await page.wait_for_selector(ROWS)
    await page.set_viewport_size(PHONE)
    await shot(page, "inventory-390")
    assert page.errors == []


async def test_channels_policies_test_send_deliveries_and_retention(
    browser: Any, tmp_path: Path, anyio_backend: str
) -> None:
    extra: dict[str, Any] = {}
    if "allow_private_targets" in NotificationSettings.model_fields:
        extra["notifications"] = {"allow_private_targets": True}  # the receiver is on 127.0.0.1
    async with running(settings(tmp_path / "hub", **extra)) as hub, receiving() as receiver:
        await hub.pe("prod")
        page = await logged_in(browser, hub.url)
        await page.goto(f"{hub.url}/#/settings")
        await page.wait_for_selector("h2:has-text('Notification channels')")
        await page.get_by_label("Name", exact=True).first.fill("ops hook")
        await page.get_by_label("URL").fill(receiver.url)
        await page.click("button:has-text('Add channel')")
        secret = page.locator("dialog [data-secret]")
        await secret.wait_for()  # a webhook without a secret gets one, shown once
        assert len(await secret.inner_text()) >= 16
        await page.click("dialog button:has-text('Done')")
        channel = page.locator("tr[data-channel-id]")
        await channel.wait_for()
        assert "s3cr3tPATHtoken" not in await channel.inner_text()  # the URL is masked

        await page.click("button:has-text('Send test')")
        await page.wait_for_selector("[data-test-result='delivered']")
        await receiver.wait_for(1)
        await page.wait_for_selector("tr[data-delivery-id][data-state='delivered']")
        await page.click("tr[data-delivery-id] button.link")
        await page.wait_for_selector("#panel h2:has-text('Delivery')")
        await page.keyboard.press("Escape")

        policy_form = page.locator("form[aria-labelledby=add-policy-title]")
        await policy_form.get_by_label("Name").fill("pager")
        await policy_form.get_by_label("Event types").fill("deployment.*, action.*.failed")
        await page.click("button:has-text('Add policy')")
        policy = page.locator("tr[data-policy-id]")
        await policy.wait_for()
        assert "deployment.*, action.*.failed" in await policy.inner_text()
        assert await policy.locator(".status-icon").evaluate_all(
            "icons => icons.map(i => i.dataset.status)"
        ) == ["failing", "at_risk"]  # fmt: skip
        await policy.get_by_role("checkbox").uncheck()
        policies = await ok(hub.admin.get(f"{V1}/notification-policies"))
        for _ in range(50):
            if not policies["items"][0]["enabled"]:
                break
            await page.wait_for_timeout(20)
            policies = await ok(hub.admin.get(f"{V1}/notification-policies"))
        assert policies["items"][0]["enabled"] is False

        await page.get_by_label("Keep events for (days)").fill("45")
        await page.click("button:has-text('Save retention')")
        await page.wait_for_selector("[data-retention-days='45']")
        assert (await ok(hub.admin.get(f"{V1}/settings/retention")))["days"] == 45
        await shot(page, "settings-1280", full=True)
        await page.set_viewport_size(PHONE)
        await shot(page, "settings-390", full=True)
        assert page.errors == []
