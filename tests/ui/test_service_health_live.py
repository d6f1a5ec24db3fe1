"""The deployment page's Service Health tab in a real browser, against a real hub and agent.

A new event appears in the Recent Management Agent Activity list within a
second, without a reload, newest first and with the icon of its status; a row
opens the side panel with the whole event; a model replaced from the UI reaches
the agent and its events appear in the list.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.hub.support import V1, event, ok
from tests.ui.support import PHONE, Stack, logged_in, shot, within

pytestmark = pytest.mark.anyio

ROWS = "ol.activity li.event-row"


async def _post(stack: Stack, **fields: Any) -> dict[str, Any]:
    agent = stack.hub.session(stack.agent_token)
    from datetime import UTC, datetime

    body = event(stack.pe["id"], deployment_id=stack.dep_id, time=datetime.now(UTC), **fields)
    await ok(agent.post(f"{V1}/events", json={"events": [body]}))
    return body


async def test_a_new_event_appears_within_a_second_with_its_icon(
    browser: Any, running_stack: Stack
) -> None:
    stack = running_stack
    page = await logged_in(browser, stack.url)
    await page.goto(f"{stack.url}/#/deployments/{stack.dep_id}")
    await page.wait_for_selector(f"{ROWS}[data-type='deployment.ready']")
    await page.wait_for_selector(".live[data-state='live']")
    before = await page.locator(ROWS).count()
    await shot(page, "deployment-service-health-1280")

    for status in ("failing", "at_risk", "passing", "unknown", "informational"):
        began = time.perf_counter()
        posted = await _post(stack, status=status, type=f"health.{status}", message=f"now {status}")
        row = page.locator(f"{ROWS}[data-event-id='{posted['id']}']")
        await row.wait_for(timeout=1000)
        took = time.perf_counter() - began
        assert took < 1.0, took
        icon = row.locator(".status-icon")
        assert await icon.get_attribute("data-status") == status
        assert await icon.get_attribute("aria-label") == {
            "failing": "Failing", "at_risk": "At risk", "passing": "Passing",
            "unknown": "Unknown", "informational": "Informational",
        }[status]  # fmt: skip
        # Newest first: the new row is the first of the list.
        assert await page.locator(ROWS).first.get_attribute("data-event-id") == posted["id"]
    assert await page.locator(ROWS).count() == before + 5
    assert page.errors == []


async def test_the_agents_failing_report_turns_the_status_red_without_reload(
    browser: Any, running_stack: Stack
) -> None:
    stack = running_stack
    page = await logged_in(browser, stack.url)
    await page.goto(f"{stack.url}/#/deployments/{stack.dep_id}")
    health = page.locator(".health-big")
    await page.wait_for_selector(".health-big[data-status='passing']")
    await _post(stack, status="failing", type="deployment.health", message="server down: 5 errors")
    await page.wait_for_selector(".health-big[data-status='failing']", timeout=2000)
    assert "server down: 5 errors" in await page.locator(".reason").inner_text()
    assert "agent" in await page.locator(".reason").inner_text()
    await shot(page, "deployment-failing-1280")
    assert await health.locator(".health-word").inner_text() == "Failing"


async def test_a_row_opens_the_side_panel_with_the_whole_event(
    browser: Any, running_stack: Stack
) -> None:
    stack = running_stack
    page = await logged_in(browser, stack.url)
    await page.goto(f"{stack.url}/#/deployments/{stack.dep_id}")
    pkg = stack.packages[1]["id"]
    posted = await _post(
        stack, status="at_risk", type="drift.detected", message="drift on petal_width",
        data={"feature": "petal_width", "psi": 0.31, "model_package_id": pkg},
    )  # fmt: skip
    row = page.locator(f"{ROWS}[data-event-id='{posted['id']}'] button")
    await row.click()
    panel = page.locator("#panel")
    await panel.wait_for()
    assert await page.locator("#panel-title").inner_text() == "drift.detected"
    text = await panel.inner_text()
    assert "drift on petal_width" in text and "At risk" in text and posted["id"] in text
    data = await panel.locator("pre.json").inner_text()
    assert '"psi": 0.31' in data  # pretty-printed
    assert await panel.locator(f"a[href='#/deployments/{stack.dep_id}']").count() == 1
    assert await panel.locator(f"a[href='#/packages/{pkg}']").count() == 1
    await shot(page, "deployment-side-panel-1280")
    # Keyboard: Escape closes it and gives focus back to the row.
    await page.keyboard.press("Escape")
    await panel.wait_for(state="hidden")
    focused = await page.evaluate("document.activeElement.closest('li')?.dataset.eventId")
    assert focused == posted["id"]
    # Enter on a focused row opens it again.
    await page.keyboard.press("Enter")
    await panel.wait_for()
    await page.set_viewport_size(PHONE)
    await shot(page, "deployment-side-panel-390")


async def test_a_model_replaced_from_the_ui_reaches_the_agent(
    browser: Any, running_stack: Stack
) -> None:
    stack = running_stack
    page = await logged_in(browser, stack.url)
    await page.goto(f"{stack.url}/#/deployments/{stack.dep_id}")
    await page.wait_for_selector(".live[data-state='live']")
    p1, p2 = (p["id"] for p in stack.packages)

    # Cancelling the confirmation changes nothing.
    await page.click("button[data-action='replace_model']")
    await page.locator("dialog select[name=model_package_id]").select_option(p2)
    await shot(page, "deployment-replace-dialog-1280")
    await page.click("dialog button[value=cancel]")
    assert (await stack.get_deployment())["desired"]["generation"] == 1

    await page.click("button[data-action='replace_model']")
    await page.locator("dialog select[name=model_package_id]").select_option(p2)
    await page.click("dialog button[value=ok]")
    await page.wait_for_selector(".action-status .callout.ok")
    await stack.until_observed("ready", 2)
    assert stack.plugin.running() == {stack.dep_id: p2}
    for kind in ("deployment.replacing_model", "action.replace_model.succeeded"):
        await page.wait_for_selector(f"{ROWS}[data-type='{kind}']", timeout=3000)
    await page.wait_for_selector(f"{ROWS}[data-type='deployment.action_requested']")
    # The header follows: the champion is now the new package.
    await within(3, lambda: _champion_is(page, "iris 2"))
    assert p1 != p2
    assert page.errors == []


async def _champion_is(page: Any, name: str) -> bool:
    return name in await page.locator(".summary").inner_text()
