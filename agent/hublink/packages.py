"""Model package archives from the hub, verified and cached on local disk.

``GET /api/v1/model-packages/{id}`` names the sha256; the archive is streamed
to a temporary file while hashing, checked against it, and renamed into
``<cache>/<sha256>.tar.gz``. A package already in the cache is not fetched
again: its name is its checksum, verified when it was stored.

Which checksum a package id names is remembered too (``<cache>/ids/``): a
package once fetched is found while the hub is unreachable, so the agent can
go back to it by itself (a health-gated rollback must not wait for the hub).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import aiohttp

from pilothouse.agent.errors import HubRejectedError, HubUnreachableError
from pilothouse.agent.hublink.client import API, HubClient
from pilothouse.agent.plugin import FetchedPackage


class PackageCache:
    """Fetches packages through a :class:`HubClient` into a cache directory."""

    def __init__(self, client: HubClient, cache_dir: Path) -> None:
        self._client = client
        self._dir = cache_dir
        self._locks: dict[str, asyncio.Lock] = {}

    async def fetch(self, model_package_id: str) -> FetchedPackage:
        """The package's archive on disk (downloaded once; cached ones without the hub)."""
        try:
            meta = await self._client.request("GET", f"{API}/model-packages/{model_package_id}")
        except HubUnreachableError:
            cached = await asyncio.to_thread(self._cached, model_package_id)
            if cached is None:
                raise
            return cached
        sha = str(meta["sha256"])
        path = self._dir / f"{sha}.tar.gz"
        async with self._locks.setdefault(sha, asyncio.Lock()):
            if not await asyncio.to_thread(path.exists):
                await self._download(model_package_id, sha, path)
        await asyncio.to_thread(self._remember, model_package_id, sha)
        return FetchedPackage(model_package_id, path, sha)

    def _index(self, model_package_id: str) -> Path:
        # Hashed: a package id is the hub's string, not necessarily a safe file name.
        return self._dir / "ids" / hashlib.sha256(model_package_id.encode()).hexdigest()

    def _remember(self, model_package_id: str, sha: str) -> None:
        index = self._index(model_package_id)
        if index.exists():
            return
        index.parent.mkdir(parents=True, exist_ok=True)
        tmp = index.with_suffix(f".{os.getpid()}.part")
        tmp.write_text(sha)
        os.replace(tmp, index)

    def _cached(self, model_package_id: str) -> FetchedPackage | None:
        try:
            sha = self._index(model_package_id).read_text().strip()
        except FileNotFoundError:
            return None
        path = self._dir / f"{sha}.tar.gz"
        return FetchedPackage(model_package_id, path, sha) if path.exists() else None

    async def _download(self, model_package_id: str, sha: str, path: Path) -> None:
        await asyncio.to_thread(self._dir.mkdir, parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.part")
        digest = hashlib.sha256()
        try:
            async with self._client.stream(
                "GET", f"{API}/model-packages/{model_package_id}/archive"
            ) as resp:
                out = await asyncio.to_thread(tmp.open, "wb")
                try:  # open, write and close all in threads: none may block the loop
                    async for chunk in resp.content.iter_chunked(1 << 20):
                        digest.update(chunk)
                        await asyncio.to_thread(out.write, chunk)
                finally:
                    await asyncio.to_thread(out.close)
            if digest.hexdigest() != sha:
                raise HubRejectedError(
                    f"package {model_package_id}: downloaded sha256 {digest.hexdigest()} "
                    f"does not match {sha}", status=200)  # fmt: skip
            await asyncio.to_thread(os.replace, tmp, path)
        except aiohttp.ClientError as exc:
            raise HubUnreachableError(f"download of {model_package_id} broke: {exc}") from None
        finally:
            await asyncio.to_thread(tmp.unlink, missing_ok=True)
