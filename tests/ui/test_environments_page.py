"""Prediction environments in the browser: register, the Use Management Agent switch with a
real agent (off: it receives no change; on again: it applies what changed), agent tokens."""

from __future__ import annotations

from typing import Any

import pytest

from tests.hub.support import V1, Running, ok
from tests.ui.support import PHONE, Stack, logged_in, shot

pytestmark = pytest.mark.anyio


async def test_the_switch_holds_changes_back_from_the_agent_until_turned_on(
    browser: Any, running_stack: Stack
) -> None:
    stack = running_stack
    page = await logged_in(browser, stack.url)
    await page.goto(f"{stack.url}/#/environments")
    switch = page.get_by_role("switch", name="Use Management Agent for prod")
    await switch.wait_for()
    assert await switch.get_attribute("aria-checked") == "true"
    await page.wait_for_selector("[data-online='true']")
    await shot(page, "environments-1280")

    await switch.click()
    await page.click("dialog button[value=ok]")  # confirm turning it off
    await page.wait_for_selector("[role=switch][aria-checked='false']")
    assert "receives no desired-state changes" in await page.locator("table").inner_text()

    # The deployment page says so, and a stop from the UI is recorded but not sent.
    await page.goto(f"{stack.url}/#/deployments/{stack.dep_id}")
    banner = page.locator(".callout[data-paused]")
    await banner.wait_for()
    assert "receives no desired-state changes" in await banner.inner_text()
    await shot(page, "deployment-agent-off-1280")
    await page.click("button[data-action='stop']")
    assert (
        "receives it only once the switch is on again" in await page.locator("dialog").inner_text()
    )
    await page.click("dialog button[value=ok]")
    await page.wait_for_selector(".action-status .callout.ok")
    agent = stack.hub.session(stack.agent_token)
    frozen = await ok(agent.get(f"{V1}/prediction-environments/{stack.pe['id']}/desired-state"))
    assert [(d["state"], d["generation"]) for d in frozen["deployments"]] == [("launched", 1)]
    assert (await stack.get_deployment())["desired"]["generation"] == 2
    assert stack.plugin.running() == {stack.dep_id: stack.packages[0]["id"]}

    # On again (from the environment's own page): the agent stops the deployment.
    await page.goto(f"{stack.url}/#/environments/{stack.pe['id']}")
    await page.get_by_role("switch", name="Use Management Agent for prod").click()
    await page.wait_for_selector("[role=switch][aria-checked='true']")
    await stack.until_observed("stopped", 2)
    assert stack.plugin.running() == {}
    await page.goto(f"{stack.url}/#/events?prediction_environment_id={stack.pe['id']}")
    for kind in ("environment.management_agent_disabled", "environment.management_agent_enabled"):
        await page.wait_for_selector(f"tr.event-row[data-type='{kind}']")
    assert page.errors == []


async def test_register_an_environment_and_issue_a_token_shown_once(
    browser: Any, hub: Running
) -> None:
    page = await logged_in(browser, hub.url)
    await page.goto(f"{hub.url}/#/environments")
    await page.get_by_label("Name").fill("edge")
    await page.get_by_label("Platform").select_option("test")
    await page.get_by_label("Description").fill("the edge cluster")
    await page.click("button:has-text('Register')")
    await page.wait_for_selector("h1:has-text('edge')")
    pe_id = page.url.rsplit("/", 1)[-1]
    await page.wait_for_selector("[data-online='false']")

    await page.click("button:has-text('Issue an agent token')")
    secret = page.locator("dialog [data-secret]")
    await secret.wait_for()
    token = await secret.inner_text()
    assert token.startswith("pha_")
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await page.click("dialog button:has-text('Copy')")
    await page.wait_for_selector("dialog button:has-text('Copied')")
    assert await page.evaluate("navigator.clipboard.readText()") == token
    await shot(page, "environment-token-once-1280")
    await page.click("dialog button:has-text('Done')")
    await page.wait_for_selector("dialog", state="detached")
    assert token not in await page.content()  # shown once: gone from the page
    # The token works for the agent channel of this PE.
    agent = hub.session(token)
    await ok(agent.get(f"{V1}/prediction-environments/{pe_id}/desired-state"))

    if not await _lists_tokens(hub, pe_id):
        text = await page.locator("section[aria-labelledby=tokens-title]").inner_text()
        assert "does not list agent tokens" in text
    await page.set_viewport_size(PHONE)
    await shot(page, "environment-390")


async def test_revoke_an_agent_token(browser: Any, hub: Running) -> None:
    pe = await hub.pe("edge")
    assert await _lists_tokens(hub, pe["id"]), "the hub must list and revoke agent tokens"
    token = await ok(hub.admin.post(f"{V1}/prediction-environments/{pe['id']}/agent-tokens"), 201)
    agent = hub.session(token["token"])
    page = await logged_in(browser, hub.url)
    await page.goto(f"{hub.url}/#/environments/{pe['id']}")
    await page.wait_for_selector(f"tr[data-token-id='{token['id']}'][data-revoked='false']")
    await page.click("tr[data-revoked='false'] button:has-text('Revoke')")
    await page.click("dialog button[value=ok]")
    await page.wait_for_selector(f"tr[data-token-id='{token['id']}'][data-revoked='true']")
    async with agent.get(f"{V1}/prediction-environments/{pe['id']}/desired-state") as refused:
        assert refused.status == 401


async def _lists_tokens(hub: Running, pe_id: str) -> bool:
    async with hub.admin.get(f"{V1}/prediction-environments/{pe_id}/agent-tokens") as listing:
        return listing.status == 200
