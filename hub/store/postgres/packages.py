"""SQL of model packages on PostgreSQL (their metadata; the archives are blobs).

Two replicas may receive the same archive at once: the insert yields to the one
stored first (``ON CONFLICT (sha256) DO NOTHING``) and returns that one, as a
second upload of the same bytes does on one hub.
"""

from __future__ import annotations

from collections.abc import Collection

from pilothouse.hub.api.schemas import ModelPackage
from pilothouse.hub.errors import NotFound, StorageError
from pilothouse.hub.store import mapping
from pilothouse.hub.store.postgres.db import Connection, page_clause, taken
from pilothouse.hub.store.records import PageQuery


async def add(conn: Connection, package: ModelPackage) -> tuple[ModelPackage, bool]:
    """Insert a package unless its content is stored; return the stored one and whether new."""
    with taken(f"model package {package.name!r} version {package.version!r} exists already"):
        inserted = await conn.fetchval(
            f"INSERT INTO model_packages ({mapping.PACKAGE_COLUMNS}) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
            "ON CONFLICT (sha256) DO NOTHING RETURNING true",
            *mapping.package_row(package),
        )
    if inserted:
        return package, True
    known = await by_sha256(conn, package.sha256)
    if known is None:
        raise StorageError(f"model package with sha256 {package.sha256} vanished while stored")
    return known, False


async def get(conn: Connection, package_id: str) -> ModelPackage:
    """One package, or ``NotFound``."""
    row = await conn.fetchrow(
        f"SELECT {mapping.PACKAGE_COLUMNS} FROM model_packages WHERE id = $1", package_id
    )
    if row is None:
        raise NotFound.of("model package", package_id)
    return mapping.package(row)


async def by_sha256(conn: Connection, sha256: str) -> ModelPackage | None:
    """The package with this content, if any."""
    row = await conn.fetchrow(
        f"SELECT {mapping.PACKAGE_COLUMNS} FROM model_packages WHERE sha256 = $1", sha256
    )
    return None if row is None else mapping.package(row)


async def page(conn: Connection, query: PageQuery) -> list[ModelPackage]:
    """Packages, newest first."""
    tail, params = page_clause(query, "created_at", 1)
    rows = await conn.fetch(
        f"SELECT {mapping.PACKAGE_COLUMNS} FROM model_packages WHERE true{tail}", *params
    )
    return [mapping.package(row) for row in rows]


async def known(conn: Connection, ids: Collection[str]) -> set[str]:
    """Which of ``ids`` exist."""
    rows = await conn.fetch("SELECT id FROM model_packages WHERE id = any($1::text[])", list(ids))
    return {row[0] for row in rows}
