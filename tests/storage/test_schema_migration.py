"""m004_rowid_tables: a database created with the schema before it (m001-m003), holding
every kind of row, migrates with its data intact and keeps working (duplicates, votes,
erasures, export and import), on real SQLite files and the real PostgreSQL."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlite_utils

from reviewrank.service.app.store import Store
from reviewrank.service.domain.values import (
    Erasure,
    ErasureResult,
    LikeEvent,
    LikeValue,
    Outcome,
    RatingEvent,
    WriteResults,
)
from reviewrank.service.storage.postgres import schema as schema_postgres
from reviewrank.service.storage.postgres.store import PostgresStore
from reviewrank.service.storage.sqlite.schema import migrations
from reviewrank.service.storage.sqlite.store import SQLiteStore
from reviewrank.service.storage.tables import TABLES
from reviewrank.service.storage.transfer import export_to, import_from
from tests.helpers import WEIGHTS_ROW, exported

NEW = "m004_rowid_tables"
OLD = ["m001_initial", "m002_erasure", "m003_weights_history"]

backends = pytest.mark.parametrize("backend", ["sqlite", "postgresql"])


# Today's code writes the columns m006_shop_catalogue, m007_shares, m008_listing_time,
# m009_comments and m010_poll_votes add; an old database gets them beforehand so that it
# can fill one (m006 then adds nothing, m007 to m010 keep them).
CATALOGUE_COLUMNS = (
    "ALTER TABLE products ADD COLUMN active INTEGER NOT NULL DEFAULT 1",
    "ALTER TABLE products ADD COLUMN owned INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE products ADD COLUMN more_categories TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE products ADD COLUMN display TEXT NOT NULL DEFAULT ''",
    # and those of m007_shares
    "ALTER TABLE products ADD COLUMN shares INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE events ADD COLUMN channel TEXT NOT NULL DEFAULT ''",
    "CREATE TABLE shares (product_id TEXT NOT NULL, user_id TEXT NOT NULL,"
    " value INTEGER NOT NULL CHECK (value = 1), occurred_at_us INTEGER NOT NULL,"
    " event_id TEXT NOT NULL, channel TEXT NOT NULL DEFAULT '')",
)


def comment_columns(big: str) -> tuple[str, ...]:
    """The columns and tables of m009_comments and m010_poll_votes, ``big`` the type of
    64-bit integers."""
    return (
        "ALTER TABLE products ADD COLUMN comments INTEGER NOT NULL DEFAULT 0",
        f"ALTER TABLE products ADD COLUMN sentiment_sum {big} NOT NULL DEFAULT 0",
        f"ALTER TABLE products ADD COLUMN sentiment_squares {big} NOT NULL DEFAULT 0",
        "CREATE TABLE comments (product_id TEXT NOT NULL, user_id TEXT NOT NULL,"
        f" score INTEGER NOT NULL, occurred_at_us {big} NOT NULL, event_id TEXT NOT NULL,"
        " channel TEXT NOT NULL DEFAULT '', language TEXT NOT NULL DEFAULT '',"
        " analyzer TEXT NOT NULL DEFAULT '')",
        "ALTER TABLE products ADD COLUMN polls_shown INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE products ADD COLUMN polls_won INTEGER NOT NULL DEFAULT 0",
        "CREATE TABLE poll_votes (poll_id TEXT NOT NULL, user_id TEXT NOT NULL,"
        f" chosen TEXT NOT NULL, occurred_at_us {big} NOT NULL, event_id TEXT NOT NULL,"
        " channel TEXT NOT NULL DEFAULT '', shown TEXT NOT NULL)",
    )


def old_database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database with the schema of m001-m003 only (and the columns of CATALOGUE_COLUMNS):
    a SQLite path or a PostgreSQL URL."""
    if backend == "sqlite":
        path = tmp_path / "old.db"
        conn = sqlite3.connect(path)
        try:
            migrations.apply(sqlite_utils.Database(conn), stop_before=NEW)
            for statement in CATALOGUE_COLUMNS:
                conn.execute(statement)
            conn.execute("ALTER TABLE products ADD COLUMN listed_at_us INTEGER NOT NULL DEFAULT 0")
            for statement in comment_columns("INTEGER"):
                conn.execute(statement)
            conn.commit()
        finally:
            conn.close()
        return str(path)
    url = str(request.getfixturevalue("pg_url"))
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute(
            "CREATE TABLE reviewrank_migrations ("
            " name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        for name, statements in schema_postgres._MIGRATIONS:
            if name == NEW:
                break
            for statement in statements:
                pg.execute(statement)
            pg.execute("INSERT INTO reviewrank_migrations (name) VALUES (%s)", (name,))
        for statement in CATALOGUE_COLUMNS:
            pg.execute(statement)
        pg.execute("ALTER TABLE products ADD COLUMN listed_at_us BIGINT NOT NULL DEFAULT 0")
        for statement in comment_columns("BIGINT"):
            pg.execute(statement)
        pg.execute("ALTER TABLE shares ADD PRIMARY KEY (user_id, product_id)")
        pg.execute("ALTER TABLE comments ADD PRIMARY KEY (user_id, product_id)")
        pg.execute("ALTER TABLE poll_votes ADD PRIMARY KEY (user_id, poll_id)")
    return url


def opener(backend: str, where: str) -> Callable[[bool], Store]:
    def open_it(migrate: bool) -> Store:
        if backend == "sqlite":
            return SQLiteStore(where, migrate=migrate)
        return PostgresStore(where, migrate=migrate)

    return open_it


def fill(store: Store) -> None:
    """Every kind of row: applied, superseded and duplicate events, a cleared like, a
    replaced vote, an erased user (hashes of their ids), a weights version."""
    store.apply(
        [
            [
                RatingEvent("e1", "p1", "u1", 4, 100, category="books"),
                RatingEvent("e2", "p1", "u2", 5, 110),
                LikeEvent("e3", "p2", "u1", LikeValue.LIKE, 120),
                LikeEvent("e4", "p1", "u3", LikeValue.DISLIKE, 130),
                RatingEvent("e5", "p2", "ü-ser", 3, 140, category="künste"),
                RatingEvent("e6", "p3", "u3", 2, 150),
            ]
        ],
        now_us=1_000,
    )
    store.apply(
        [
            [
                RatingEvent("e7", "p1", "u1", 2, 50),  # older than e1: SUPERSEDED
                RatingEvent("e1", "p1", "u1", 4, 100),  # DUPLICATE
                LikeEvent("e8", "p2", "u1", LikeValue.CLEAR, 200),
                LikeEvent("e9", "p1", "u2", LikeValue.LIKE, 210),
                RatingEvent("e10", "p3", "u3", 5, 220),  # replaces e6
            ],
            Erasure("u2"),
        ],
        now_us=2_000,
    )
    store.save_weights_entry(WEIGHTS_ROW)


def dump(store: Store) -> dict[str, Any]:
    return exported(store, chunk=4)


def sqlite_schema(path: Path | str) -> dict[str, Any]:
    """Each table's columns and each index's table, columns and uniqueness."""
    conn = sqlite3.connect(path)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        schema: dict[str, Any] = {}
        for table in tables:
            schema[table] = [tuple(r[1:]) for r in conn.execute(f"PRAGMA table_xinfo({table})")]
            for index in conn.execute(f"PRAGMA index_list({table})"):
                columns = [r[2] for r in conn.execute(f"PRAGMA index_info({index[1]})")]
                schema[f"{table}.{index[1]}"] = (index[2], columns)
        schema["without rowid"] = sorted(
            name
            for name, sql in conn.execute("SELECT name, sql FROM sqlite_master")
            if "WITHOUT ROWID" in (sql or "")
        )
        return schema
    finally:
        conn.close()


@backends
def test_an_old_database_migrates_with_every_row_and_keeps_working(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    where = old_database(backend, tmp_path, request)
    open_store = opener(backend, where)
    old = open_store(False)
    assert OLD == old.applied_migrations()
    fill(old)
    before = dump(old)
    old.close()

    store = open_store(True)
    try:
        later = ["m005_votes_by_product_on_demand"] if backend == "sqlite" else []
        later += ["m006_shop_catalogue", "m007_shares", "m008_listing_time", "m009_comments"]
        later += ["m010_poll_votes"] + (["m011_events_seq_brin"] if backend == "postgresql" else [])
        assert [*OLD, NEW, *later] == store.applied_migrations()
        assert before == dump(store)
        assert [] == store.aggregate_mismatches()
        products = store.load_products()
        p3 = int(products.idx[products.product_ids.index("p3")])
        votes = store.load_votes([p3])  # through the new index on product_id
        assert ([p3], [5]) == (votes.product_idx.tolist(), votes.value.tolist())

        group = store.apply(
            [
                [
                    RatingEvent("e1", "p1", "u1", 1, 999),  # recorded before: DUPLICATE
                    RatingEvent("e2", "p1", "u9", 1, 999),  # erased before: DUPLICATE
                    RatingEvent("n1", "p1", "u1", 1, 300),  # newer than e1: APPLIED
                    RatingEvent("n2", "p3", "u3", 1, 10),  # older than e10: SUPERSEDED
                    LikeEvent("n3", "p2", "u1", LikeValue.DISLIKE, 300),  # replaces the CLEAR
                    RatingEvent("n4", "p4", "u4", 3, 300),  # a new product
                ]
            ],
            now_us=3_000,
        )
        results = group.results[0]
        assert isinstance(results, WriteResults)
        seq = before["seq"]
        assert [
            (Outcome.DUPLICATE, 0),
            (Outcome.DUPLICATE, 0),
            (Outcome.APPLIED, seq + 1),
            (Outcome.SUPERSEDED, seq + 2),
            (Outcome.APPLIED, seq + 3),
            (Outcome.APPLIED, seq + 4),
        ] == [(r.outcome, r.seq) for r in results]
        erased = store.apply([Erasure("u1")], now_us=4_000).results[0]
        # u1: the rating on p1 (n1) and the dislike on p2 (n3); e1, e3, e7, e8, n1, n3.
        assert ErasureResult(1, 1, 6, seq + 5) == erased
        assert [] == store.aggregate_mismatches()
        products = store.load_products()
        ratings = dict(zip(products.product_ids, products.rating_count.tolist(), strict=True))
        assert {"p1": 0, "p2": 1, "p3": 1, "p4": 1} == ratings

        export_to(store, tmp_path / "export.jsonl")
        after = dump(store)
    finally:
        store.close()
    fresh = SQLiteStore(tmp_path / "fresh.db")
    try:
        import_from(fresh, tmp_path / "export.jsonl")
        assert after == dump(fresh)
    finally:
        fresh.close()


@backends
def test_migration_m008_gives_each_product_its_earliest_event_time_as_written_since(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    sqlite = backend == "sqlite"
    where = str(tmp_path / "db.sqlite") if sqlite else str(request.getfixturevalue("pg_url"))
    open_store = opener(backend, where)
    store = open_store(True)
    fill(store)  # p1's earliest event is e7 at 50 (superseded), p2's e3 at 120, p3's e6 at 150
    written = listing_times(store)
    store.close()
    # Back to before m008: no column, the migration not applied.
    drop = "ALTER TABLE products DROP COLUMN listed_at_us"
    if backend == "sqlite":
        with sqlite3.connect(where) as conn:
            conn.execute(drop)
            conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm008_listing_time'")
    else:
        with psycopg.connect(str(where), autocommit=True) as pg:
            pg.execute(drop)
            pg.execute("DELETE FROM reviewrank_migrations WHERE name = 'm008_listing_time'")

    store = open_store(True)
    try:
        assert {"p1": 50, "p2": 120, "p3": 150} == listing_times(store) == written
    finally:
        store.close()


def listing_times(store: Store) -> dict[str, int]:
    products = store.load_products()
    return dict(zip(products.product_ids, products.listed_at_us.tolist(), strict=True))


def test_a_migrated_sqlite_database_has_the_schema_of_a_new_one(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    where = old_database("sqlite", tmp_path, request)
    old = sqlite_schema(where)
    assert ["erased_events", "events", "likes", "meta", "ratings"] == old["without rowid"]
    assert (1, ["event_id"]) == old["events.sqlite_autoindex_events_1"]
    SQLiteStore(where).close()
    SQLiteStore(tmp_path / "new.db").close()

    migrated, new = sqlite_schema(where), sqlite_schema(tmp_path / "new.db")

    assert new == migrated
    assert ["erased_events", "meta"] == new["without rowid"]
    assert (1, ["event_id"]) == new["events.events_event_id"]
    assert (1, ["user_id", "product_id"]) == new["ratings.ratings_vote"]
    assert [] == [name for name in new if name.endswith("_product")]  # made on demand


@backends
def test_the_tables_the_migrations_make_have_the_columns_storage_tables_describes(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Both stores build their statements from service/storage/tables.py, while each
    backend's migrations keep their own CREATE TABLE text: the two must agree."""
    made: dict[str, set[str]] = {}
    if backend == "sqlite":
        SQLiteStore(tmp_path / "db.sqlite").close()
        with sqlite3.connect(tmp_path / "db.sqlite") as conn:
            for table in TABLES:
                made[table] = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        conn.close()
    else:
        url = str(request.getfixturevalue("pg_url"))
        PostgresStore(url).close()
        with psycopg.connect(url) as pg:
            for table in TABLES:
                rows = pg.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = current_schema() AND table_name = %s",
                    (table,),
                )
                made[table] = {row[0] for row in rows}
    assert {table: set(columns) for table, columns in TABLES.items()} == made


def test_processes_opening_a_new_sqlite_database_at_once_create_its_schema_once(
    tmp_path: Path,
) -> None:
    # `serve --workers N` starts N processes on one file: each must find the schema
    # made (or make it) rather than fail on tables another one created a moment before.
    where = tmp_path / "shared.db"
    script = (
        "import sys, time\n"
        "from service.storage.sqlite.store import SQLiteStore\n"
        "while time.time() < float(sys.argv[2]): pass\n"
        "SQLiteStore(sys.argv[1]).close()\n"
    )
    start_at = f"{time.time() + 2.0:.3f}"  # after every interpreter has started
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(where), start_at],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    failures = [p.communicate(timeout=60)[1] for p in openers if p.wait(timeout=60) != 0]

    assert [] == failures
    alone = SQLiteStore(tmp_path / "alone.db")
    shared = SQLiteStore(where)
    try:
        assert alone.applied_migrations() == shared.applied_migrations()  # each once
    finally:
        alone.close()
        shared.close()
    assert sqlite_schema(tmp_path / "alone.db") == sqlite_schema(where)
