"""Logging in with a token: checked against the hub, kept in the tab's session, never in a URL."""

from __future__ import annotations

from typing import Any

import pytest

from tests.hub.support import ADMIN, Running
from tests.ui.support import DESKTOP, shot

pytestmark = pytest.mark.anyio


async def _login_page(browser: Any, hub: Running) -> tuple[Any, Any]:
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    await page.goto(hub.url + "/")
    await page.wait_for_selector("form.login")
    return context, page


async def test_the_admin_token_logs_in_and_stays_in_the_session_only(
    browser: Any, hub: Running
) -> None:
    pe = await hub.pe("prod")
    agent_token = await hub.admin.post(f"/api/v1/prediction-environments/{pe['id']}/agent-tokens")
    agent = (await agent_token.json())["token"]
    context, page = await _login_page(browser, hub)
    assert await page.locator(".main-nav").is_hidden()
    await shot(page, "login-1280")
    token = page.get_by_label("Admin token")

    await token.fill("not-a-token")
    await page.click("button[type=submit]")
    alert = page.locator("[role=alert]")
    await alert.wait_for()
    assert "does not know this token" in await alert.inner_text()

    await token.fill(agent)
    await page.click("button[type=submit]")
    await page.wait_for_selector("text=This is an agent token")

    await token.fill(ADMIN)
    await page.click("button[type=submit]")
    await page.wait_for_selector("h1:has-text('Deployments')")
    assert ADMIN not in page.url
    assert await page.evaluate("sessionStorage.getItem('pilothouse.token')") == ADMIN
    assert await page.evaluate("localStorage.length") == 0
    assert await context.cookies() == []
    # A reload keeps the session; a new tab of another session asks again.
    await page.reload()
    await page.wait_for_selector("h1:has-text('Deployments')")
    other = await browser.new_context()
    fresh = await other.new_page()
    await fresh.goto(hub.url + "/#/events")
    await fresh.wait_for_selector("form.login")
    await other.close()
    # Logging out forgets it.
    await page.click("#logout")
    await page.wait_for_selector("form.login")
    assert await page.evaluate("sessionStorage.getItem('pilothouse.token')") is None
    await context.close()


async def test_a_token_the_hub_stops_accepting_returns_to_the_login(
    browser: Any, hub: Running
) -> None:
    context = await browser.new_context(viewport=DESKTOP)
    await context.add_init_script("sessionStorage.setItem('pilothouse.token', 'stale-token');")
    page = await context.new_page()
    await page.goto(hub.url + "/#/events")
    await page.wait_for_selector("form.login")
    assert "log in again" in await page.locator(".callout").inner_text()
    await context.close()
