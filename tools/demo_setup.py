"""The demo stack's one-shot ``setup`` service (docker-compose.yml): everything the agent needs.

Run in the project's image (``python /demo/demo_setup.py``), against the hub of the stack:

1. the ``docker`` prediction environment ``demo-docker``: found by name, else registered;
2. its agent's token and config: ``agent-token`` (0600) and ``agent.yaml`` (the PE's id) in
   the ``secrets`` volume, which the agent mounts read-only and reads through
   ``PILOTHOUSE_HUB__TOKEN_FILE`` and ``--config``. A token is issued only when none was
   written for this PE yet, so a second run leaves the running agent's token alone;
3. every package under the models directory, uploaded (the hub stores one package per
   content: an upload of the same bytes answers the stored package);
4. the deployments of :data:`DEPLOYMENTS`: found by name in the PE, else created.

The service starts with the hub, not once the engine has found it healthy (its first
health check comes seconds after the hub answers): it waits here, polling every
:data:`POLL_S`, until the hub has written its admin token and answers, for at most
``DEMO_WAIT_S`` (:data:`WAIT_S`).

A second run therefore creates nothing (``make demo`` twice resumes). The token and config
files are written under a temporary name and renamed, so the agent never reads half of one.
Environment: DEMO_HUB_URL (replicas comma-separated), DEMO_ADMIN_TOKEN_FILE, DEMO_SECRETS_DIR,
DEMO_MODELS_DIR, DEMO_WAIT_S.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pilothouse.agent.errors import HubError, HubUnreachableError
from pilothouse.agent.hublink.client import API, HubClient
from pilothouse.modelpkg.packing import build_package

PE_NAME = "demo-docker"
DEPLOYMENTS = {"iris": "iris-1.0.0", "iris-rules": "iris-rules-1.0.0"}
"""Deployment name -> the example package it serves (``iris-2.0.0`` is uploaded too: the
model to replace ``iris``'s with)."""
TOKEN_FILE = "agent-token"
CONFIG_FILE = "agent.yaml"
WAIT_S = 120.0
"""How long to wait for the hub's admin token and its first answer."""
POLL_S = 0.1
"""Between two looks at the hub while waiting: the hub answers about a second after it starts."""


def say(message: str) -> None:
    """One line on stdout (``docker-compose logs setup``)."""
    print(f"setup: {message}", flush=True)


async def listing(admin: HubClient, path: str, **params: str) -> list[dict[str, Any]]:
    """Every item of a paged list."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": "500", **({"cursor": cursor} if cursor else {})}
        page = await admin.request("GET", f"{API}/{path}", params=query)
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items


async def hub_ready(token_file: Path, urls: list[str], wait_s: float) -> HubClient | None:
    """An admin client once the hub has written its admin token and answers.

    None (said why) when that does not happen within ``wait_s``. A hub that refuses the
    token is not waited for: that raises :class:`HubError`.
    """
    deadline = time.monotonic() + wait_s
    while True:
        token = (await asyncio.to_thread(_read, token_file)).strip()
        if token:
            admin = HubClient(urls, token)
            try:
                await admin.request("GET", f"{API}/prediction-environments", params={"limit": "1"})
                return admin
            except HubUnreachableError as exc:
                last = f"the hub does not answer yet: {exc}"
                await admin.close()
            except BaseException:
                await admin.close()
                raise
        else:
            last = f"the hub's admin token is not in {token_file} yet"
        if time.monotonic() >= deadline:
            say(f"gave up after {wait_s:.0f} s: {last}")
            return None
        await asyncio.sleep(POLL_S)


async def environment(admin: HubClient) -> str:
    """The id of the demo's PE, registered if the hub has none of that name."""
    for pe in await listing(admin, "prediction-environments"):
        if pe["name"] == PE_NAME:
            say(f"prediction environment {PE_NAME} is {pe['id']}")
            return str(pe["id"])
    pe = await admin.request(
        "POST", f"{API}/prediction-environments", body={"name": PE_NAME, "platform": "docker"}
    )
    say(f"registered prediction environment {PE_NAME}: {pe['id']}")
    return str(pe["id"])


async def agent_credentials(admin: HubClient, pe_id: str, secrets: Path) -> None:
    """The agent's token and config in ``secrets``, issued once per PE."""
    config = f"prediction_environment: {pe_id}\n"
    written = [await asyncio.to_thread(_read, secrets / name) for name in (CONFIG_FILE, TOKEN_FILE)]
    if written[0] == config and written[1]:
        say(f"the agent's token for {pe_id} is in place")
        return
    token = await admin.request("POST", f"{API}/prediction-environments/{pe_id}/agent-tokens")
    await asyncio.to_thread(_write_private, secrets / TOKEN_FILE, token["token"] + "\n")
    # Last: the agent's config names the PE, and the agent cannot start before it exists.
    await asyncio.to_thread(_write_private, secrets / CONFIG_FILE, config)
    say(f"issued an agent token for {pe_id} into {secrets / TOKEN_FILE}")


async def packages(admin: HubClient, models: Path) -> dict[str, str]:
    """Upload every package directory under ``models``; directory name -> package id."""
    uploaded: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for directory in await asyncio.to_thread(_package_directories, models):
            target = Path(tmp) / f"{directory.name}.tar.gz"
            _, archive = await asyncio.to_thread(build_package, directory, target)
            package = await admin.request(
                "POST", f"{API}/model-packages", raw=await asyncio.to_thread(archive.read_bytes),
                content_type="application/gzip",
            )  # fmt: skip
            uploaded[directory.name] = str(package["id"])
            say(f"package {directory.name} is {package['id']}")
    return uploaded


async def deployments(admin: HubClient, pe_id: str, uploaded: dict[str, str]) -> None:
    """Create each deployment of :data:`DEPLOYMENTS` that the PE does not have yet."""
    existing = {
        d["name"]: d
        for d in await listing(admin, "deployments", prediction_environment_id=pe_id)
        if d["prediction_environment_id"] == pe_id
    }
    for name, package in DEPLOYMENTS.items():
        if name in existing:
            say(f"deployment {name} is {existing[name]['id']}")
            continue
        created = await admin.request("POST", f"{API}/deployments", body={
            "name": name, "prediction_environment_id": pe_id,
            "model_package_id": uploaded[package],
        })  # fmt: skip
        say(f"deployed {package} as {name}: {created['id']}")


async def main() -> int:
    """Set the demo up; exit 1 with the hub's words when it refuses something."""
    env = os.environ
    token_file = Path(env.get("DEMO_ADMIN_TOKEN_FILE", "/hub/hub/admin-token"))
    # Hub replicas comma-separated: a replica that does not answer is skipped.
    urls = [url.strip() for url in env.get("DEMO_HUB_URL", "http://hub:8700").split(",")]
    try:
        admin = await hub_ready(
            token_file, [url for url in urls if url], float(env.get("DEMO_WAIT_S", WAIT_S))
        )
    except HubError as exc:
        say(f"the hub refused: {exc}")
        return 1
    if admin is None:
        return 1
    try:
        pe_id = await environment(admin)
        await agent_credentials(admin, pe_id, Path(env.get("DEMO_SECRETS_DIR", "/secrets")))
        uploaded = await packages(admin, Path(env.get("DEMO_MODELS_DIR", "/demo/models")))
        await deployments(admin, pe_id, uploaded)
    except HubError as exc:
        say(f"the hub refused: {exc}")
        return 1
    finally:
        await admin.close()
    say("done")
    return 0


def _package_directories(models: Path) -> list[Path]:
    return sorted(p for p in models.iterdir() if (p / "model.yaml").is_file())


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def _write_private(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    partial.replace(path)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
