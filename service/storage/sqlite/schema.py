"""The SQLite schema: its migrations (sqlite-utils ``Migrations``, m001 to m013) and
the methods of SQLiteStore that apply and list them."""

from __future__ import annotations

import time

import sqlite_utils
from sqlite_utils.migrations import Migrations

from reviewrank.service.storage.sqlite.connection import SQLiteBase, translated_errors
from reviewrank.service.storage.tables import VOTE_TABLES

migrations = Migrations("reviewrank")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE products (
            idx INTEGER PRIMARY KEY,
            product_id TEXT NOT NULL UNIQUE,
            category TEXT NOT NULL DEFAULT '',
            rating_count INTEGER NOT NULL DEFAULT 0 CHECK (rating_count >= 0),
            star_sum INTEGER NOT NULL DEFAULT 0 CHECK (star_sum >= 0),
            s1 INTEGER NOT NULL DEFAULT 0 CHECK (s1 >= 0),
            s2 INTEGER NOT NULL DEFAULT 0 CHECK (s2 >= 0),
            s3 INTEGER NOT NULL DEFAULT 0 CHECK (s3 >= 0),
            s4 INTEGER NOT NULL DEFAULT 0 CHECK (s4 >= 0),
            s5 INTEGER NOT NULL DEFAULT 0 CHECK (s5 >= 0),
            likes INTEGER NOT NULL DEFAULT 0 CHECK (likes >= 0),
            dislikes INTEGER NOT NULL DEFAULT 0 CHECK (dislikes >= 0),
            seq INTEGER NOT NULL DEFAULT 0
        )"""
    )
    db.execute("CREATE INDEX products_seq ON products (seq)")
    db.execute(
        """CREATE TABLE ratings (
            product_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            stars INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
            occurred_at_us INTEGER NOT NULL,
            event_id TEXT NOT NULL,
            PRIMARY KEY (product_id, user_id)
        ) WITHOUT ROWID"""
    )
    db.execute(
        """CREATE TABLE likes (
            product_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            value INTEGER NOT NULL CHECK (value IN (-1, 0, 1)),
            occurred_at_us INTEGER NOT NULL,
            event_id TEXT NOT NULL,
            PRIMARY KEY (product_id, user_id)
        ) WITHOUT ROWID"""
    )
    db.execute(
        """CREATE TABLE events (
            event_id TEXT PRIMARY KEY,
            seq INTEGER NOT NULL UNIQUE,
            kind TEXT NOT NULL CHECK (kind IN ('rating', 'like')),
            product_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            value INTEGER NOT NULL,
            occurred_at_us INTEGER NOT NULL,
            outcome TEXT NOT NULL CHECK (outcome IN ('APPLIED', 'SUPERSEDED')),
            recorded_at_us INTEGER NOT NULL
        ) WITHOUT ROWID"""
    )
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID")
    db.execute("INSERT INTO meta (key, value) VALUES ('seq', 0)")


@migrations()
def m002_erasure(db: sqlite_utils.Database) -> None:
    """ForgetUser: find a user's rows without a scan; remember erased event ids by hash only."""
    db.execute("CREATE INDEX ratings_user ON ratings (user_id)")
    db.execute("CREATE INDEX likes_user ON likes (user_id)")
    db.execute("CREATE INDEX events_user ON events (user_id)")
    db.execute(
        """CREATE TABLE erased_events (
            event_hash BLOB PRIMARY KEY,  -- SHA-256 of the event_id: replays stay DUPLICATE
            erased_at_us INTEGER NOT NULL
        ) WITHOUT ROWID"""
    )


@migrations()
def m003_weights_history(db: sqlite_utils.Database) -> None:
    """Every weights version applied (service/app/weights_admin.py): what restarts restore."""
    db.execute(
        """CREATE TABLE weights_history (
            version INTEGER PRIMARY KEY CHECK (version >= 1),
            applied_at_us INTEGER NOT NULL,
            source_kind TEXT NOT NULL CHECK (source_kind IN ('file', 'inline', 'rollback')),
            source TEXT NOT NULL,           -- the file path, 'inline' or 'rollback'
            trigger TEXT NOT NULL,          -- startup, rpc, sighup, file-watch
            actor TEXT NOT NULL DEFAULT '',
            reason TEXT NOT NULL DEFAULT '',
            rollback_of INTEGER,            -- the version re-applied by a rollback
            content_sha256 TEXT NOT NULL,
            content TEXT NOT NULL
        )"""
    )


@migrations()
def m004_rowid_tables(db: sqlite_utils.Database) -> None:
    """Fewer B-tree pages written per event: the event log and the votes become rowid
    tables, appended to, with narrower indexes beside them.

    - events, keyed by ``seq`` (was: rows of every column in event_id order, each new
      event written at a random place, and a second index on seq); its event ids in an
      index of their own, its users in events_user as before.
    - ratings and likes: unique by (user_id, product_id) (was: rows of every column in
      (product_id, user_id) order, and an index on user_id), and indexed by product_id
      for loading some products' votes. Events come in with their products in no
      order, and an index of (product_id, rowid) is a fraction of the width of whole
      rows: far fewer of its pages change in a transaction.
    """
    db.execute(
        """CREATE TABLE events_by_seq (
            seq INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('rating', 'like')),
            product_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            value INTEGER NOT NULL,
            occurred_at_us INTEGER NOT NULL,
            outcome TEXT NOT NULL CHECK (outcome IN ('APPLIED', 'SUPERSEDED')),
            recorded_at_us INTEGER NOT NULL
        )"""
    )
    db.execute(
        """INSERT INTO events_by_seq
            (seq, event_id, kind, product_id, user_id, value, occurred_at_us, outcome,
             recorded_at_us)
        SELECT seq, event_id, kind, product_id, user_id, value, occurred_at_us, outcome,
            recorded_at_us
        FROM events ORDER BY seq"""
    )
    db.execute("DROP TABLE events")  # with events_user and the unique index on seq
    db.execute("ALTER TABLE events_by_seq RENAME TO events")
    db.execute("CREATE UNIQUE INDEX events_event_id ON events (event_id)")
    db.execute("CREATE INDEX events_user ON events (user_id)")
    for table, value in (
        ("ratings", "stars INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5)"),
        ("likes", "value INTEGER NOT NULL CHECK (value IN (-1, 0, 1))"),
    ):
        column = value.split()[0]
        db.execute(
            f"""CREATE TABLE {table}_by_rowid (
                product_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                {value},
                occurred_at_us INTEGER NOT NULL,
                event_id TEXT NOT NULL
            )"""
        )
        db.execute(
            f"""INSERT INTO {table}_by_rowid
                (product_id, user_id, {column}, occurred_at_us, event_id)
            SELECT product_id, user_id, {column}, occurred_at_us, event_id
            FROM {table} ORDER BY product_id, user_id"""
        )
        db.execute(f"DROP TABLE {table}")  # with {table}_user
        db.execute(f"ALTER TABLE {table}_by_rowid RENAME TO {table}")
        db.execute(f"CREATE UNIQUE INDEX {table}_vote ON {table} (user_id, product_id)")
        db.execute(f"CREATE INDEX {table}_product ON {table} (product_id)")


@migrations()
def m005_votes_by_product_on_demand(db: sqlite_utils.Database) -> None:
    """No index of the votes by product unless a process needs one (SQLiteFollower): the
    events of a batch name their products in no order, so each of its votes changed a
    page of that index of its own, and on a database of 380,000 events SubmitBatch took
    half the time without it. Only a follower keeping time-decayed sums reads some
    products' votes; it creates the index the first time it does."""
    for table in VOTE_TABLES:
        db.execute(f"DROP INDEX IF EXISTS {table}_product")


@migrations()
def m006_shop_catalogue(db: sqlite_utils.Database) -> None:
    """The shop's catalogue (AdminService.UpsertProducts): whether a product is listed
    (Top leaves out the delisted), whether the shop defines it (then feedback events
    never set its category), the other categories the shop lists it in, and its display
    fields. Adds only the columns missing."""
    held = db["products"].columns_dict
    for column, default in (("active", 1), ("owned", 0)):
        if column not in held:
            db.execute(
                f"ALTER TABLE products ADD COLUMN {column} INTEGER NOT NULL DEFAULT {default}"
                f" CHECK ({column} IN (0, 1))"
            )
    for column in ("more_categories", "display"):  # other categories one a line; JSON
        if column not in held:
            db.execute(f"ALTER TABLE products ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")


@migrations()
def m007_shares(db: sqlite_utils.Database) -> None:
    """Shares (issue 22): their votes in force (one per user and product, with the
    share's channel), each product's count of sharers, and an event log that holds
    shares and every event's channel. The log is rebuilt (SQLite cannot change a CHECK),
    in seq order as m004 made it."""
    db.execute(
        """CREATE TABLE events_with_channel (
            seq INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('rating', 'like', 'share')),
            product_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            value INTEGER NOT NULL,
            occurred_at_us INTEGER NOT NULL,
            outcome TEXT NOT NULL CHECK (outcome IN ('APPLIED', 'SUPERSEDED')),
            recorded_at_us INTEGER NOT NULL,
            channel TEXT NOT NULL DEFAULT ''
        )"""
    )
    db.execute(
        """INSERT INTO events_with_channel
            (seq, event_id, kind, product_id, user_id, value, occurred_at_us, outcome,
             recorded_at_us)
        SELECT seq, event_id, kind, product_id, user_id, value, occurred_at_us, outcome,
            recorded_at_us
        FROM events ORDER BY seq"""
    )
    db.execute("DROP TABLE events")  # with its indexes
    db.execute("ALTER TABLE events_with_channel RENAME TO events")
    db.execute("CREATE UNIQUE INDEX events_event_id ON events (event_id)")
    db.execute("CREATE INDEX events_user ON events (user_id)")
    db.execute(
        """CREATE TABLE IF NOT EXISTS shares (
            product_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            value INTEGER NOT NULL CHECK (value = 1),
            occurred_at_us INTEGER NOT NULL,
            event_id TEXT NOT NULL,
            channel TEXT NOT NULL DEFAULT ''
        )"""
    )
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS shares_vote ON shares (user_id, product_id)")
    if "shares" not in db["products"].columns_dict:
        db.execute(
            "ALTER TABLE products ADD COLUMN shares INTEGER NOT NULL DEFAULT 0 CHECK (shares >= 0)"
        )


@migrations()
def m008_listing_time(db: sqlite_utils.Database) -> None:
    """When each product was first seen (issue 22: the exposure of its share rate): its
    earliest event's time, or now for a product with none (the shop's catalogue)."""
    if "listed_at_us" not in db["products"].columns_dict:
        db.execute("ALTER TABLE products ADD COLUMN listed_at_us INTEGER NOT NULL DEFAULT 0")
    db.execute(
        """UPDATE products SET listed_at_us = e.first
        FROM (SELECT product_id, min(occurred_at_us) AS first FROM events GROUP BY product_id)
            AS e
        WHERE e.product_id = products.product_id AND products.listed_at_us = 0"""
    )
    db.execute(
        "UPDATE products SET listed_at_us = ? WHERE listed_at_us = 0", (time.time_ns() // 1000,)
    )


@migrations()
def m009_comments(db: sqlite_utils.Database) -> None:
    """Comments (issue 22): their votes in force (one per user and product: the sentiment
    score in 1/10,000, the channel, the language and the analyzer; never the text), each
    product's count of comments and the sum of their scores and of their squares, and an
    event log that holds comments. The log is rebuilt for its CHECK, as m007 did."""
    db.execute(
        """CREATE TABLE events_with_comments (
            seq INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('rating', 'like', 'share', 'comment')),
            product_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            value INTEGER NOT NULL,
            occurred_at_us INTEGER NOT NULL,
            outcome TEXT NOT NULL CHECK (outcome IN ('APPLIED', 'SUPERSEDED')),
            recorded_at_us INTEGER NOT NULL,
            channel TEXT NOT NULL DEFAULT ''
        )"""
    )
    db.execute(
        """INSERT INTO events_with_comments
            (seq, event_id, kind, product_id, user_id, value, occurred_at_us, outcome,
             recorded_at_us, channel)
        SELECT seq, event_id, kind, product_id, user_id, value, occurred_at_us, outcome,
            recorded_at_us, channel
        FROM events ORDER BY seq"""
    )
    db.execute("DROP TABLE events")  # with its indexes
    db.execute("ALTER TABLE events_with_comments RENAME TO events")
    db.execute("CREATE UNIQUE INDEX events_event_id ON events (event_id)")
    db.execute("CREATE INDEX events_user ON events (user_id)")
    db.execute(
        """CREATE TABLE IF NOT EXISTS comments (
            product_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            score INTEGER NOT NULL CHECK (score BETWEEN -10000 AND 10000),
            occurred_at_us INTEGER NOT NULL,
            event_id TEXT NOT NULL,
            channel TEXT NOT NULL DEFAULT '',
            language TEXT NOT NULL DEFAULT '',
            analyzer TEXT NOT NULL DEFAULT ''
        )"""
    )
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS comments_vote ON comments (user_id, product_id)")
    held = db["products"].columns_dict
    for column, check in (
        ("comments", " CHECK (comments >= 0)"),
        ("sentiment_sum", ""),
        ("sentiment_squares", " CHECK (sentiment_squares >= 0)"),
    ):
        if column not in held:
            db.execute(
                f"ALTER TABLE products ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0{check}"
            )


@migrations()
def m010_poll_votes(db: sqlite_utils.Database) -> None:
    """Poll votes (issue 22): their votes in force (one per user and poll: the product
    chosen, the products shown as a JSON array of ids, the channel), each product's count
    of poll votes that showed it and that chose it, and an event log that holds poll votes
    (naming the product chosen). The log is rebuilt for its CHECK, as m007 did."""
    db.execute(
        """CREATE TABLE events_with_polls (
            seq INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL,
            kind TEXT NOT NULL
                CHECK (kind IN ('rating', 'like', 'share', 'comment', 'poll_vote')),
            product_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            value INTEGER NOT NULL,
            occurred_at_us INTEGER NOT NULL,
            outcome TEXT NOT NULL CHECK (outcome IN ('APPLIED', 'SUPERSEDED')),
            recorded_at_us INTEGER NOT NULL,
            channel TEXT NOT NULL DEFAULT ''
        )"""
    )
    db.execute(
        """INSERT INTO events_with_polls
            (seq, event_id, kind, product_id, user_id, value, occurred_at_us, outcome,
             recorded_at_us, channel)
        SELECT seq, event_id, kind, product_id, user_id, value, occurred_at_us, outcome,
            recorded_at_us, channel
        FROM events ORDER BY seq"""
    )
    db.execute("DROP TABLE events")  # with its indexes
    db.execute("ALTER TABLE events_with_polls RENAME TO events")
    db.execute("CREATE UNIQUE INDEX events_event_id ON events (event_id)")
    db.execute("CREATE INDEX events_user ON events (user_id)")
    db.execute(
        """CREATE TABLE IF NOT EXISTS poll_votes (
            poll_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            chosen TEXT NOT NULL,
            occurred_at_us INTEGER NOT NULL,
            event_id TEXT NOT NULL,
            channel TEXT NOT NULL DEFAULT '',
            shown TEXT NOT NULL CHECK (json_valid(shown) AND json_array_length(shown) >= 2)
        )"""
    )
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS poll_votes_vote ON poll_votes (user_id, poll_id)")
    held = db["products"].columns_dict
    for column in ("polls_shown", "polls_won"):
        if column not in held:
            db.execute(
                f"ALTER TABLE products ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0"
                f" CHECK ({column} >= 0)"
            )


@migrations()
def m012_burst_decisions(db: sqlite_utils.Database) -> None:
    """Admins' decisions on bursts of votes (issue 23), kept as an audit record and numbered
    in the order made (AUTOINCREMENT: a number is never taken twice). Numbered after
    PostgreSQL's m011_events_seq_brin, which SQLite does without, so that both backends
    name it alike."""
    db.execute(
        """CREATE TABLE IF NOT EXISTS burst_decisions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            product_id TEXT NOT NULL,
            start_us INTEGER NOT NULL,          -- the burst's first vote
            end_us INTEGER NOT NULL,            -- and its last
            confirmed INTEGER NOT NULL CHECK (confirmed IN (0, 1)),  -- 0: dismissed
            actor TEXT NOT NULL,
            reason TEXT NOT NULL,
            decided_at_us INTEGER NOT NULL
        )"""
    )


@migrations()
def m013_verified_purchase(db: sqlite_utils.Database) -> None:
    """Whether a rating or like is of a verified purchase (issue 23: the shop's
    verified_purchase; such a vote counts in full in a burst), 0 or 1 as the other flags.
    Votes kept before it are not verified. Adds only the columns missing."""
    for table in ("ratings", "likes"):
        if "verified" not in db[table].columns_dict:
            db.execute(
                f"ALTER TABLE {table} ADD COLUMN verified INTEGER NOT NULL DEFAULT 0"
                " CHECK (verified IN (0, 1))"
            )


class SQLiteSchema(SQLiteBase):
    """Creating and upgrading the schema (part of SQLiteStore)."""

    def migrate(self) -> list[str]:
        """Creates or upgrades the schema; returns the names of the migrations applied now."""
        with translated_errors("migrating the schema"):
            before = {applied.name for applied in migrations.applied(self.db)}
            self._apply_migrations()
            return [name for name in self.applied_migrations() if name not in before]

    def _apply_migrations(self) -> None:
        """Applies the pending migrations, all in one write transaction: processes opening
        one database at once (``serve --workers N``) take turns, and each finds pending
        only what no other applied first (sqlite-utils reads what is pending before its
        own transactions). Nothing pending, nothing is locked."""
        if not migrations.pending(self.db):
            return
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")  # waits up to busy_timeout for another migrator
        try:
            migrations.apply(self.db)  # its transactions become savepoints in this one
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def applied_migrations(self) -> list[str]:
        with translated_errors("reading the migrations"):
            return [
                row[0]
                for row in self.conn.execute(
                    "SELECT name FROM _sqlite_migrations WHERE migration_set = ? ORDER BY id",
                    (migrations.name,),
                )
            ]
