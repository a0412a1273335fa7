"""The throwaway PostgreSQL cluster of the tests (tests/pg_cluster.py) is a real server."""

from __future__ import annotations

import psycopg

from tests.pg_cluster import PostgresCluster


def test_cluster_accepts_connections(pg_cluster: PostgresCluster) -> None:
    with psycopg.connect(pg_cluster.url()) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version_num')::int, current_user"
        ).fetchone()
    assert row is not None
    version, user = row
    assert version >= 130000
    assert user == "postgres"
    assert pg_cluster.url().startswith(f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/")


def test_cluster_keeps_fsync_on(pg_cluster: PostgresCluster) -> None:
    with psycopg.connect(pg_cluster.url()) as conn:
        row = conn.execute("SHOW fsync").fetchone()
    assert row == ("on",)


def test_each_pg_url_is_a_separate_empty_database(pg_url: str, pg_cluster: PostgresCluster) -> None:
    other = pg_cluster.create_database()
    try:
        assert other != pg_url
        with psycopg.connect(pg_url) as conn:
            conn.execute("CREATE TABLE only_here (id int PRIMARY KEY)")
        with psycopg.connect(other) as conn:
            row = conn.execute("SELECT to_regclass('only_here')").fetchone()
        assert row == (None,)
        with psycopg.connect(pg_url) as conn:
            row = conn.execute("SELECT to_regclass('only_here')::text").fetchone()
        assert row == ("only_here",)
    finally:
        pg_cluster.drop_database(other.rsplit("/", 1)[1])


def test_pg_url_starts_empty(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_tables"
            " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchone()
    assert row == (0,)


def test_committed_data_survives_a_new_connection(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE votes (id int PRIMARY KEY, note text NOT NULL)")
        conn.execute("INSERT INTO votes VALUES (1, 'kept'), (2, 'kept too')")
        conn.commit()
        conn.execute("INSERT INTO votes VALUES (3, 'rolled back')")
        conn.rollback()
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT id, note FROM votes ORDER BY id").fetchall()
    assert rows == [(1, "kept"), (2, "kept too")]
