"""The PostgreSQL schema: its migrations (the same names as SQLite's, applied one replica
at a time under an advisory lock) and the methods of PostgresStore that apply and list
them."""

from __future__ import annotations

from typing import Any

import psycopg

from reviewrank.service.storage.postgres.connection import PostgresBase

_MIGRATION_LOCK = 0x7265766965777261  # pg_advisory_xact_lock key: b"reviewra"

_MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "m001_initial",
        [
            """CREATE TABLE products (
                idx INTEGER PRIMARY KEY,
                product_id TEXT NOT NULL UNIQUE,
                category TEXT NOT NULL DEFAULT '',
                rating_count BIGINT NOT NULL DEFAULT 0 CHECK (rating_count >= 0),
                star_sum BIGINT NOT NULL DEFAULT 0 CHECK (star_sum >= 0),
                s1 BIGINT NOT NULL DEFAULT 0 CHECK (s1 >= 0),
                s2 BIGINT NOT NULL DEFAULT 0 CHECK (s2 >= 0),
                s3 BIGINT NOT NULL DEFAULT 0 CHECK (s3 >= 0),
                s4 BIGINT NOT NULL DEFAULT 0 CHECK (s4 >= 0),
                s5 BIGINT NOT NULL DEFAULT 0 CHECK (s5 >= 0),
                likes BIGINT NOT NULL DEFAULT 0 CHECK (likes >= 0),
                dislikes BIGINT NOT NULL DEFAULT 0 CHECK (dislikes >= 0),
                seq BIGINT NOT NULL DEFAULT 0
            )""",
            "CREATE INDEX products_seq ON products (seq)",
            """CREATE TABLE ratings (
                product_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                stars INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
                occurred_at_us BIGINT NOT NULL,
                event_id TEXT NOT NULL,
                PRIMARY KEY (product_id, user_id)
            )""",
            """CREATE TABLE likes (
                product_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                value INTEGER NOT NULL CHECK (value IN (-1, 0, 1)),
                occurred_at_us BIGINT NOT NULL,
                event_id TEXT NOT NULL,
                PRIMARY KEY (product_id, user_id)
            )""",
            """CREATE TABLE events (
                event_id TEXT PRIMARY KEY,
                seq BIGINT NOT NULL UNIQUE,
                kind TEXT NOT NULL CHECK (kind IN ('rating', 'like')),
                product_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                value INTEGER NOT NULL,
                occurred_at_us BIGINT NOT NULL,
                outcome TEXT NOT NULL CHECK (outcome IN ('APPLIED', 'SUPERSEDED')),
                recorded_at_us BIGINT NOT NULL
            )""",
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
            "INSERT INTO meta (key, value) VALUES ('seq', 0)",
        ],
    ),
    (
        "m002_erasure",
        [
            "CREATE INDEX ratings_user ON ratings (user_id)",
            "CREATE INDEX likes_user ON likes (user_id)",
            "CREATE INDEX events_user ON events (user_id)",
            """CREATE TABLE erased_events (
                event_hash BYTEA PRIMARY KEY,
                erased_at_us BIGINT NOT NULL
            )""",
        ],
    ),
    (
        "m003_weights_history",
        [
            """CREATE TABLE weights_history (
                version INTEGER PRIMARY KEY CHECK (version >= 1),
                applied_at_us BIGINT NOT NULL,
                source_kind TEXT NOT NULL CHECK (source_kind IN ('file', 'inline', 'rollback')),
                source TEXT NOT NULL,
                trigger TEXT NOT NULL,
                actor TEXT NOT NULL DEFAULT '',
                reason TEXT NOT NULL DEFAULT '',
                rollback_of INTEGER,
                content_sha256 TEXT NOT NULL,
                content TEXT NOT NULL
            )""",
        ],
    ),
    (
        # As SQLite's m004_rowid_tables (PostgreSQL's tables are heaps already): the votes
        # are unique by (user_id, product_id) and indexed by product_id (was: the other way
        # round), and nothing indexes the event log's seq, which nothing reads by.
        "m004_rowid_tables",
        [
            "DROP INDEX ratings_user",
            "ALTER TABLE ratings DROP CONSTRAINT ratings_pkey",
            "ALTER TABLE ratings ADD PRIMARY KEY (user_id, product_id)",
            "CREATE INDEX ratings_product ON ratings (product_id)",
            "DROP INDEX likes_user",
            "ALTER TABLE likes DROP CONSTRAINT likes_pkey",
            "ALTER TABLE likes ADD PRIMARY KEY (user_id, product_id)",
            "CREATE INDEX likes_product ON likes (product_id)",
            "ALTER TABLE events DROP CONSTRAINT events_seq_key",
        ],
    ),
    (
        # As SQLite's m006_shop_catalogue.
        "m006_shop_catalogue",
        [
            "ALTER TABLE products"
            " ADD COLUMN IF NOT EXISTS active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),"
            " ADD COLUMN IF NOT EXISTS owned INTEGER NOT NULL DEFAULT 0 CHECK (owned IN (0, 1)),"
            " ADD COLUMN IF NOT EXISTS more_categories TEXT NOT NULL DEFAULT '',"
            " ADD COLUMN IF NOT EXISTS display TEXT NOT NULL DEFAULT ''",
        ],
    ),
    (
        # As SQLite's m007_shares (PostgreSQL changes the CHECK in place).
        "m007_shares",
        [
            "ALTER TABLE events DROP CONSTRAINT IF EXISTS events_kind_check",
            "ALTER TABLE events ADD CONSTRAINT events_kind_check"
            " CHECK (kind IN ('rating', 'like', 'share'))",
            "ALTER TABLE events ADD COLUMN IF NOT EXISTS channel TEXT NOT NULL DEFAULT ''",
            """CREATE TABLE IF NOT EXISTS shares (
                product_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                value INTEGER NOT NULL CHECK (value = 1),
                occurred_at_us BIGINT NOT NULL,
                event_id TEXT NOT NULL,
                channel TEXT NOT NULL DEFAULT '',
                PRIMARY KEY (user_id, product_id)
            )""",
            "CREATE INDEX IF NOT EXISTS shares_product ON shares (product_id)",
            "ALTER TABLE products"
            " ADD COLUMN IF NOT EXISTS shares INTEGER NOT NULL DEFAULT 0 CHECK (shares >= 0)",
        ],
    ),
    (
        # As SQLite's m008_listing_time.
        "m008_listing_time",
        [
            "ALTER TABLE products ADD COLUMN IF NOT EXISTS listed_at_us BIGINT NOT NULL DEFAULT 0",
            """UPDATE products SET listed_at_us = e.first
            FROM (SELECT product_id, min(occurred_at_us) AS first FROM events
                  GROUP BY product_id) AS e
            WHERE e.product_id = products.product_id AND products.listed_at_us = 0""",
            "UPDATE products SET listed_at_us = (extract(epoch FROM now()) * 1000000)::bigint"
            " WHERE listed_at_us = 0",
        ],
    ),
    (
        # As SQLite's m009_comments (PostgreSQL changes the CHECK in place).
        "m009_comments",
        [
            "ALTER TABLE events DROP CONSTRAINT IF EXISTS events_kind_check",
            "ALTER TABLE events ADD CONSTRAINT events_kind_check"
            " CHECK (kind IN ('rating', 'like', 'share', 'comment'))",
            """CREATE TABLE IF NOT EXISTS comments (
                product_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                score INTEGER NOT NULL CHECK (score BETWEEN -10000 AND 10000),
                occurred_at_us BIGINT NOT NULL,
                event_id TEXT NOT NULL,
                channel TEXT NOT NULL DEFAULT '',
                language TEXT NOT NULL DEFAULT '',
                analyzer TEXT NOT NULL DEFAULT '',
                PRIMARY KEY (user_id, product_id)
            )""",
            "CREATE INDEX IF NOT EXISTS comments_product ON comments (product_id)",
            "ALTER TABLE products ADD COLUMN IF NOT EXISTS comments INTEGER NOT NULL DEFAULT 0"
            " CHECK (comments >= 0)",
            "ALTER TABLE products ADD COLUMN IF NOT EXISTS sentiment_sum BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE products ADD COLUMN IF NOT EXISTS sentiment_squares BIGINT NOT NULL"
            " DEFAULT 0 CHECK (sentiment_squares >= 0)",
        ],
    ),
    (
        # As SQLite's m010_poll_votes.
        "m010_poll_votes",
        [
            "ALTER TABLE events DROP CONSTRAINT IF EXISTS events_kind_check",
            "ALTER TABLE events ADD CONSTRAINT events_kind_check"
            " CHECK (kind IN ('rating', 'like', 'share', 'comment', 'poll_vote'))",
            """CREATE TABLE IF NOT EXISTS poll_votes (
                poll_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                chosen TEXT NOT NULL,
                occurred_at_us BIGINT NOT NULL,
                event_id TEXT NOT NULL,
                channel TEXT NOT NULL DEFAULT '',
                shown TEXT NOT NULL
                    CHECK (json_typeof(shown::json) = 'array'
                           AND json_array_length(shown::json) >= 2),
                PRIMARY KEY (user_id, poll_id)
            )""",
            "ALTER TABLE products ADD COLUMN IF NOT EXISTS polls_shown INTEGER NOT NULL"
            " DEFAULT 0 CHECK (polls_shown >= 0)",
            "ALTER TABLE products ADD COLUMN IF NOT EXISTS polls_won INTEGER NOT NULL"
            " DEFAULT 0 CHECK (polls_won >= 0)",
        ],
    ),
    (
        # The poll fitter reads the poll votes events put in force since its last read
        # (service/storage/postgres/reads.py): a BRIN index finds a range of the event
        # log's seq, which is written in order, at a few pages' upkeep (SQLite's seq is its
        # rowid already: no migration there).
        "m011_events_seq_brin",
        ["CREATE INDEX IF NOT EXISTS events_seq_brin ON events USING brin (seq)"],
    ),
    (
        # As SQLite's m012_burst_decisions: the flag an integer, as products.active is; the
        # number an identity that an import may set (finish_restore then moves it past the
        # rows copied in).
        "m012_burst_decisions",
        [
            """CREATE TABLE IF NOT EXISTS burst_decisions (
                id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                product_id TEXT NOT NULL,
                start_us BIGINT NOT NULL,
                end_us BIGINT NOT NULL,
                confirmed INTEGER NOT NULL CHECK (confirmed IN (0, 1)),
                actor TEXT NOT NULL,
                reason TEXT NOT NULL,
                decided_at_us BIGINT NOT NULL
            )""",
        ],
    ),
    (
        # As SQLite's m013_verified_purchase: a rating's or like's verified purchase flag.
        "m013_verified_purchase",
        [
            f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS verified INTEGER NOT NULL DEFAULT 0"
            " CHECK (verified IN (0, 1))"
            for table in ("ratings", "likes")
        ],
    ),
]


class PostgresSchema(PostgresBase):
    """Creating and upgrading the schema (part of PostgresStore)."""

    # -- schema -----------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Creates or upgrades the schema (one replica at a time); returns what it applied."""

        def work(conn: psycopg.Connection[Any]) -> list[str]:
            applied: list[str] = []
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS reviewrank_migrations ("
                    " name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                done = {r[0] for r in conn.execute("SELECT name FROM reviewrank_migrations")}
                for name, statements in _MIGRATIONS:
                    if name in done:
                        continue
                    for statement in statements:
                        conn.execute(statement)
                    conn.execute("INSERT INTO reviewrank_migrations (name) VALUES (%s)", (name,))
                    applied.append(name)
            return applied

        return self._run("migrating the schema", work)

    def applied_migrations(self) -> list[str]:
        def work(conn: psycopg.Connection[Any]) -> list[str]:
            exists = conn.execute("SELECT to_regclass('reviewrank_migrations')").fetchone()
            if exists is None or exists[0] is None:
                return []
            rows = conn.execute("SELECT name FROM reviewrank_migrations ORDER BY name")
            return [r[0] for r in rows]

        return self._run("reading the migrations", work)
