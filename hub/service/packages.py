"""Model packages: accepting uploads, listing them, serving their archives.

An upload is received into a temporary blob (hashing as it streams), then —
unless the same bytes are stored already, in which case the stored package is
the answer — inspected in a thread (:mod:`pilothouse.hub.service.archives`), moved to its
content address and recorded. A refused upload deletes its temporary blob; the
package id derives from the sha256, so uploading the same archive twice is
harmless.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from pilothouse.hub import clock
from pilothouse.hub.api.schemas import ModelPackage, Page
from pilothouse.hub.errors import Forbidden
from pilothouse.hub.service import archives, cursors
from pilothouse.hub.service.auth import Principal
from pilothouse.hub.service.blobs import BlobStore, Received
from pilothouse.hub.settings import LimitSettings
from pilothouse.hub.store.interface import Store
from pilothouse.hub.store.records import Cursor, PageQuery


def package_id(sha256: str) -> str:
    """The id of the package with this content."""
    return f"mp-{sha256[:16]}"


class Packages:
    """Upload, list and read model packages."""

    def __init__(self, store: Store, blobs: BlobStore, limits: LimitSettings) -> None:
        self._store = store
        self._blobs = blobs
        self._max_bytes = limits.max_package_bytes
        self._limits = limits.archive_limits()

    async def upload(self, chunks: AsyncIterator[bytes]) -> tuple[ModelPackage, bool]:
        """Store an archive; return the package and whether it is new."""
        received = await self._blobs.receive(chunks, self._max_bytes)
        try:
            known = await self._store.package_by_sha256(received.sha256)
            if known is not None:
                await self._blobs.discard(received)
                return known, False
            return await self._accept(received)
        except BaseException:
            await asyncio.shield(self._blobs.discard(received))
            raise

    async def get(self, pkg_id: str) -> ModelPackage:
        """One package; ``NotFound`` if unknown."""
        return await self._store.get_package(pkg_id)

    async def page(self, limit: int, cursor: str | None) -> Page[ModelPackage]:
        """A page of packages, newest first."""
        query = PageQuery(limit + 1, cursors.decode(cursor))
        items, after = cursors.split(await self._store.list_packages(query), limit, _key)
        return Page[ModelPackage](items=items, next_cursor=after)

    async def archive(self, pkg_id: str, who: Principal) -> tuple[ModelPackage, Path]:
        """A package and the path of its archive.

        A package token gets only the packages its PE's deployments use; asked for any
        other — known or not, so it learns nothing of the rest — it is refused.
        """
        if who.packages_only:
            pe_id = who.prediction_environment_id
            assert pe_id is not None  # a package token belongs to one PE
            if not await self._store.environment_uses_package(pe_id, pkg_id):
                raise Forbidden(
                    f"this package token is for prediction environment {pe_id!r}, where no "
                    f"deployment uses model package {pkg_id!r}"
                )
        package = await self._store.get_package(pkg_id)
        return package, self._blobs.path(package.sha256)

    async def _accept(self, received: Received) -> tuple[ModelPackage, bool]:
        manifest, written = await asyncio.to_thread(archives.inspect, received.path, self._limits)
        package = ModelPackage(
            id=package_id(received.sha256),
            name=manifest.name,
            version=manifest.version,
            format=manifest.format,
            sha256=received.sha256,
            size=received.size,
            manifest=written,
            created_at=clock.now(),
        )
        await self._blobs.keep(received)
        try:
            return await self._store.add_package(package)
        except BaseException:
            await asyncio.shield(self._forget(received.sha256))
            raise

    async def _forget(self, sha256: str) -> None:
        """Remove a kept blob that no package refers to (its record was refused)."""
        if await self._store.package_by_sha256(sha256) is None:
            await self._blobs.remove(sha256)


def _key(package: ModelPackage) -> Cursor:
    return Cursor(clock.to_us(package.created_at), package.id)
