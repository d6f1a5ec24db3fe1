"""Benchmark: the web UI's first render, measured in the browser (issue #13).

A hub process (``pilothouse hub run``) holds 1,000 deployments in one
prediction environment and 10,000 events of one of them. Headless Chromium
(Debian's ``/usr/bin/chromium``, driven by Playwright) opens, in a fresh
browser context each time (cold cache, a first visit):

* the deployment page of the deployment with the events
  (``/#/deployments/<id>``): first render is when its header and the first
  page of its Recent Management Agent Activity are in the DOM — the UI marks
  it ``pilothouse:deployment-rendered``;
* the inventory (``/#/deployments``): every one of the 1,000 rows rendered,
  marked ``pilothouse:inventory-rendered``.

Each figure is the mark's time from the navigation's start (the page's
``performance`` time origin), read in the page: the HTML, the modules, the
API calls, the stream's first page and the DOM work all count. ``--runs``
navigations each; the median is reported, with min and max for the spread.
Target: both medians <= 1,000 ms. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from pilothouse.foundation.domain.events import UlidFactory

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.hub.support import package_bytes  # noqa: E402
from tests.ui.support import ARGS, CHROMIUM  # noqa: E402

ADMIN = "bench-admin-token"
V1 = "/api/v1"
TARGET_MS = 1000.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def hub_process(state: Path) -> AsyncIterator[str]:
    """``pilothouse hub run`` on a free port until the block ends (SIGTERM)."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pilothouse", "hub", "run", "--port", str(port),
        "--state-dir", str(state), "--admin-token", ADMIN, "--log-level", "WARNING",
        env={**os.environ, "PILOTHOUSE_HUB_RETENTION__DEFAULT_DAYS": "3650"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(url + "/readyz") as resp:
                        if resp.status == 200:
                            break
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError("the hub did not become ready")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        if await asyncio.wait_for(proc.wait(), 60) != 0:
            raise RuntimeError("the hub exited with an error")


async def fill(url: str, deployments: int, events: int) -> str:
    """Register a PE, a package, ``deployments`` deployments, ``events`` events on the first."""
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with aiohttp.ClientSession(url, headers=headers) as http:
        async with http.post(f"{V1}/prediction-environments",
                             json={"name": "prod", "platform": "test"}) as resp:  # fmt: skip
            pe = (await resp.json())["id"]
        async with http.post(f"{V1}/model-packages", data=package_bytes("iris", "1"),
                             headers={"Content-Type": "application/gzip"}) as resp:  # fmt: skip
            pkg = (await resp.json())["id"]
        gate = asyncio.Semaphore(8)

        async def create(i: int) -> str:
            body = {
                "name": f"model-{i:04d}",
                "prediction_environment_id": pe,
                "model_package_id": pkg,
            }
            async with gate, http.post(f"{V1}/deployments", json=body) as resp:
                assert resp.status == 201, await resp.text()
                return str((await resp.json())["id"])

        ids = await asyncio.gather(*(create(i) for i in range(deployments)))
        target = ids[0]
        ulids = UlidFactory()
        start = datetime.now(UTC) - timedelta(days=7)
        statuses = ["passing"] * 8 + ["at_risk", "failing"]
        batch: list[dict[str, Any]] = []
        for i in range(events):
            at = start + timedelta(seconds=60 * i)
            batch.append({
                "id": ulids.new(int(at.timestamp() * 1000)), "time": at.isoformat(),
                "prediction_environment_id": pe, "deployment_id": target, "source": "agent",
                "type": "deployment.health", "status": statuses[i % len(statuses)],
                "message": f"probe {i}: p99 {20 + i % 50} ms", "data": {"probe": i},
            })  # fmt: skip
            if len(batch) == 2000 or i == events - 1:
                body = orjson.dumps({"events": batch})
                json_type = {"Content-Type": "application/json"}
                async with http.post(f"{V1}/events", data=body, headers=json_type) as resp:
                    assert resp.status == 200, await resp.text()
                batch = []
    return target


async def measure(browser: Any, url: str, route: str, mark: str, ready: str) -> float:
    """Milliseconds from navigation start to ``mark``, in a fresh context."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        await context.add_init_script(f"sessionStorage.setItem('pilothouse.token', {ADMIN!r});")
        page = await context.new_page()
        await page.goto(url + route)
        await page.wait_for_selector(ready)
        # Polled with evaluate: the page's CSP forbids the in-page eval of wait_for_function.
        for _ in range(1000):
            value = await page.evaluate(f"performance.getEntriesByName({mark!r})[0]?.startTime")
            if value is not None:
                return float(value)
            await asyncio.sleep(0.01)
        raise RuntimeError(f"the page never marked {mark}")
    finally:
        await context.close()


async def timed(
    browser: Any, url: str, target: str, args: argparse.Namespace
) -> tuple[list[float], list[float]]:
    """``args.runs`` first renders of each page, after one warm-up of the hub's caches."""
    inventory_page = ("/#/deployments", "pilothouse:inventory-rendered")
    all_rows = f"table.inventory tbody tr:nth-child({args.deployments})"
    await measure(browser, url, *inventory_page, all_rows)
    deployment, inventory = [], []
    for run in range(args.runs):
        page = (f"/#/deployments/{target}", "pilothouse:deployment-rendered")
        deployment.append(await measure(browser, url, *page, "ol.activity li.event-row"))
        inventory.append(await measure(browser, url, *inventory_page, all_rows))
        print(
            f"run {run + 1}: deployment page {deployment[-1]:.0f} ms, "
            f"inventory {inventory[-1]:.0f} ms",
            flush=True,
        )
    return deployment, inventory


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory(prefix="ui-bench-") as tmp:
        async with hub_process(Path(tmp)) as url:
            began = time.perf_counter()
            target = await fill(url, args.deployments, args.events)
            print(f"filled: {args.deployments} deployments, {args.events} events on {target} "
                  f"in {time.perf_counter() - began:.1f} s", flush=True)  # fmt: skip
            async with async_playwright() as driver:
                browser = await driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
                try:
                    deployment, inventory = await timed(browser, url, target, args)
                finally:
                    await browser.close()
    dep, inv = spread(deployment), spread(inventory)
    missed = [name for name, s in (("deployment_page", dep), ("inventory", inv))
              if s["median"] > TARGET_MS]  # fmt: skip
    return {
        "deployment_page_first_render_ms": dep["median"],
        "inventory_first_render_ms": inv["median"],
        "deployment_page_spread_ms": dep,
        "inventory_spread_ms": inv,
        "deployments": args.deployments,
        "events": args.events,
        "runs": args.runs,
        "target_ms": TARGET_MS,
        "targets_missed": missed,
        "targets_met": not missed,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    if not CHROMIUM.is_file():
        sys.exit(f"ui_render: no Chromium at {CHROMIUM} (apt-get install chromium)")
    print(orjson.dumps(asyncio.run(main(parser.parse_args()))).decode())
