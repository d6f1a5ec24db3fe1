"""Opening a connection: the pragmas that make SQLite fast and safe for the hub.

WAL lets readers run beside the writer; ``synchronous=NORMAL`` in WAL mode
keeps every commit atomic and durable across a crash of the process (only an
OS crash may lose the last commits), without an fsync per transaction. A large
page cache per connection and memory-mapped reads keep the event indexes hot;
the writer copies the WAL back every ``checkpoint_pages`` pages, so the WAL
stays bounded while a batch of 500 events costs one commit.

*Scanners* read through a whole table once (an export): they map no memory and
keep a small page cache, so a scan of a million events neither grows the
process by the size of the database nor evicts the readers' hot pages.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pilothouse.hub.settings import DatabaseSettings

SCANNER_CACHE_MB = 4


def connect(
    path: Path, settings: DatabaseSettings, *, writer: bool, scanner: bool = False
) -> sqlite3.Connection:
    """Open ``path`` with the hub's pragmas; readers and scanners are read-only."""
    conn = sqlite3.connect(
        path,
        isolation_level=None,
        timeout=settings.busy_timeout_s,
        cached_statements=256,
    )
    try:
        _configure(conn, settings, writer=writer, scanner=scanner)
    except BaseException:
        conn.close()
        raise
    return conn


def _configure(
    conn: sqlite3.Connection, settings: DatabaseSettings, *, writer: bool, scanner: bool
) -> None:
    cache_mb = SCANNER_CACHE_MB if scanner else settings.cache_mb
    mmap_mb = 0 if scanner else settings.mmap_mb
    pragmas = [
        "journal_mode = WAL",
        "synchronous = NORMAL",
        "foreign_keys = ON",
        "temp_store = MEMORY",
        f"cache_size = -{cache_mb * 1024}",
        f"mmap_size = {mmap_mb * 1024 * 1024}",
        f"busy_timeout = {int(settings.busy_timeout_s * 1000)}",
    ]
    if writer:
        pragmas.append(f"wal_autocheckpoint = {settings.checkpoint_pages}")
    else:
        pragmas.append("query_only = ON")
    for pragma in pragmas:
        conn.execute(f"PRAGMA {pragma}")
