"""The tests' throwaway PostgreSQL cluster: one per session, a fresh database per test."""

from __future__ import annotations

import os
from pathlib import Path

from tests.postgres_support import Cluster


def _name(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_each_test_gets_a_fresh_database(postgres_cluster: Cluster, postgres_url: str) -> None:
    database = _name(postgres_url)
    assert postgres_cluster.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
                                 database) == "0"  # fmt: skip
    postgres_cluster.psql("CREATE TABLE left_behind (x int)", database)
    other = postgres_cluster.new_database()
    try:
        found = postgres_cluster.psql("SELECT to_regclass('left_behind') IS NULL", other)
        assert found == "t"
    finally:
        postgres_cluster.drop_database(other)


def test_the_cluster_lives_in_a_temporary_directory_on_its_own_port(
    postgres_cluster: Cluster, postgres_url: str
) -> None:
    assert postgres_url.startswith(f"postgresql://postgres@127.0.0.1:{postgres_cluster.port}/")
    assert Path(postgres_cluster.data, "PG_VERSION").exists()
    port = postgres_cluster.psql("SHOW port")
    assert int(port) == postgres_cluster.port
    if os.geteuid() == 0:  # initdb refuses root: the server runs as another user
        assert postgres_cluster.psql("SELECT current_setting('data_directory')") == str(
            postgres_cluster.data
        )
        assert Path(postgres_cluster.data).stat().st_uid != 0
