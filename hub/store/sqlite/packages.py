"""SQL of model packages (their metadata; the archives are blobs on disk)."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection

from pilothouse.hub.api.schemas import ModelPackage
from pilothouse.hub.errors import NotFound
from pilothouse.hub.store import mapping
from pilothouse.hub.store.records import PageQuery
from pilothouse.hub.store.sqlite.rows import page_clause, placeholders, taken


def add(conn: sqlite3.Connection, package: ModelPackage) -> tuple[ModelPackage, bool]:
    """Insert a package unless its content is stored; return the stored one and whether new."""
    known = by_sha256(conn, package.sha256)
    if known is not None:
        return known, False
    with taken(f"model package {package.name!r} version {package.version!r} exists already"):
        conn.execute(
            f"INSERT INTO model_packages ({mapping.PACKAGE_COLUMNS}) VALUES ({placeholders(8)})",
            mapping.package_row(package),
        )
    return package, True


def get(conn: sqlite3.Connection, package_id: str) -> ModelPackage:
    """One package, or ``NotFound``."""
    row = conn.execute(
        f"SELECT {mapping.PACKAGE_COLUMNS} FROM model_packages WHERE id = ?", (package_id,)
    ).fetchone()
    if row is None:
        raise NotFound.of("model package", package_id)
    return mapping.package(row)


def by_sha256(conn: sqlite3.Connection, sha256: str) -> ModelPackage | None:
    """The package with this content, if any."""
    row = conn.execute(
        f"SELECT {mapping.PACKAGE_COLUMNS} FROM model_packages WHERE sha256 = ?", (sha256,)
    ).fetchone()
    return None if row is None else mapping.package(row)


def page(conn: sqlite3.Connection, query: PageQuery) -> list[ModelPackage]:
    """Packages, newest first."""
    tail, params = page_clause(query, "created_at")
    rows = conn.execute(
        f"SELECT {mapping.PACKAGE_COLUMNS} FROM model_packages WHERE 1{tail}", params
    ).fetchall()
    return [mapping.package(row) for row in rows]


def known(conn: sqlite3.Connection, ids: Collection[str]) -> set[str]:
    """Which of ``ids`` exist."""
    wanted = list(ids)
    rows = conn.execute(
        f"SELECT id FROM model_packages WHERE id IN ({placeholders(len(wanted))})", wanted
    ).fetchall()
    return {row[0] for row in rows}
