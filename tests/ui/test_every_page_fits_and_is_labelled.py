"""Every page at 1280 px and at phone width: no sideways scrolling, every control named,
text contrast at least 4.5:1, reachable by keyboard; a screenshot of each for people."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.ui.support import DESKTOP, PHONE, Stack, logged_in, shot

pytestmark = pytest.mark.anyio

PAGES = {
    "inventory": ("#/deployments", "table.inventory tbody tr"),
    "deployment": ("#/deployments/{dep}", "ol.activity li"),
    "deployment-overview": ("#/deployments/{dep}/overview", "dl.facts"),
    "deployment-monitoring": ("#/deployments/{dep}/monitoring", ".drift-status"),
    "events": ("#/events", "table.events tbody tr"),
    "environments": ("#/environments", "[role=switch]"),
    "environment": ("#/environments/{pe}", "[role=switch]"),
    "packages": ("#/packages", "tbody tr"),
    "package": ("#/packages/{pkg}", "pre.json"),
    "settings": ("#/settings", "[data-retention-days]"),
}

SHOWN_TEXT = """() => { const copy = document.body.cloneNode(true);
  copy.querySelectorAll('pre, script, style, noscript').forEach(e => e.remove());
  return copy.textContent; }"""

UNNAMED = """() => [...document.querySelectorAll('input, select, textarea, button, a[href]')]
  .filter(el => el.offsetParent !== null)
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
    && !el.getAttribute('aria-labelledby') && !(el.textContent || '').trim())
  .map(el => el.outerHTML.slice(0, 120))"""

LOW_CONTRAST = """() => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => { const f = c => { c /= 255; return c <= 0.03928 ? c / 12.92
    : ((c + 0.055) / 1.055) ** 2.4; }; return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = el => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el)
    .backgroundColor); if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) return c.slice(0, 3); }
    return [255, 255, 255]; };
  const bad = [];
  for (const el of document.querySelectorAll('main *, header *')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (el.offsetParent === null || !own) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || el.closest('[disabled], .muted-disabled')) continue;
    const fg = rgb(style.color).slice(0, 3), bg = background(el);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    const said = el.textContent.trim().slice(0, 30);
    if (ratio < 4.5) bad.push(`${el.tagName}.${el.className} "${said}" ${ratio.toFixed(2)}`);
  }
  return bad;
}"""


async def test_every_page_fits_both_widths_and_names_its_controls(
    browser: Any, running_stack: Stack
) -> None:
    stack = running_stack
    page = await logged_in(browser, stack.url)
    ids = {"dep": stack.dep_id, "pe": stack.pe["id"], "pkg": stack.packages[0]["id"]}
    for width, viewport in (("1280", DESKTOP), ("390", PHONE)):
        await page.set_viewport_size(viewport)
        for name, (route, ready) in PAGES.items():
            await page.goto(f"{stack.url}/{route.format(**ids)}")
            await page.wait_for_selector(ready)
            await shot(page, f"page-{name}-{width}")
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{name} at {width} px scrolls sideways by {overflow} px"
            assert await page.evaluate(UNNAMED) == [], name
            shown = await page.evaluate(SHOWN_TEXT)
            assert not re.search(r"\b(null|undefined|NaN|\[object Object\])\b", shown), name
            assert await page.evaluate(LOW_CONTRAST) == [], f"{name} at {width} px"
    assert page.errors == []


async def test_the_activity_list_works_from_the_keyboard(
    browser: Any, running_stack: Stack
) -> None:
    stack = running_stack
    page = await logged_in(browser, stack.url)
    await page.goto(f"{stack.url}/#/deployments/{stack.dep_id}")
    await page.wait_for_selector("ol.activity li")
    # Tab from the top of the page reaches the first activity row.
    await page.focus("a.brand")
    for _ in range(40):
        await page.keyboard.press("Tab")
        if await page.evaluate("!!document.activeElement.closest('ol.activity')"):
            break
    else:
        raise AssertionError("Tab never reached the activity list")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#panel:not([hidden])")
    assert await page.evaluate("document.activeElement.id") == "panel-title"
    await page.keyboard.press("Escape")
    await page.wait_for_selector("#panel", state="hidden")
    assert await page.evaluate("!!document.activeElement.closest('ol.activity')")
