"""SQLite storage: the vote tables, the event log and per-product aggregates.

One write transaction applies a group of events: each event is checked
against the event log (DUPLICATE), then against the user's current vote on the
product (newer wins by ``(occurred_at, event_id)``; an older one is
SUPERSEDED), and the product's aggregates are updated in the same transaction,
so they always equal a recount of the votes. Every recorded event takes the
next sequence number; a product row carries the sequence number of its last
change, which makes ``products`` a change feed ordered by ``seq``.

Durability: WAL journal, ``synchronous=FULL`` by default, an explicit
``BEGIN IMMEDIATE`` … ``COMMIT`` per group; callers are acknowledged only after
:meth:`SQLiteStore.apply` returns.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlite_utils
from sqlite_utils.migrations import Migrations

from service.app.store import AppliedGroup, ProductTable, VoteTable, WeightsRow
from service.domain.errors import StorageProbeFailed, StoreError
from service.domain.values import (
    Erasure,
    ErasureResult,
    Event,
    EventBatch,
    Outcome,
    ProductRow,
    WriteResults,
)
from service.domain.voting import (
    Plan,
    Vote,
    VoteChanges,
    VoteKey,
    all_distinct,
    erasure_deltas,
    erasure_result,
    like_keys,
    of_keys,
    plan_events,
    plan_new_votes,
    plan_one_by_one,
    rating_keys,
)
from service.storage.common import (
    EXPORT_TABLES,
    LOAD_VOTES,
    PRODUCT_COLUMNS,
    RECOUNT_MISMATCHES,
    apply_jobs,
    event_hash,
    product_row,
)
from service.storage.sqlite.bulk import write_columns, write_rows

migrations = Migrations("reviewrank")
VOTE_TABLES = ("ratings", "likes")


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


# An erasure's deltas are applied by UPDATE (not by an upsert's VALUES row, whose CHECKs
# would see them); events write each product's new values (_SET_PRODUCTS, _NEW_PRODUCTS).
_UPDATE_PRODUCT = f"""
UPDATE products SET
    category = CASE WHEN ?1 != '' THEN ?1 ELSE category END,
    rating_count = rating_count + ?2, star_sum = star_sum + ?3,
    s1 = s1 + ?4, s2 = s2 + ?5, s3 = s3 + ?6, s4 = s4 + ?7, s5 = s5 + ?8,
    likes = likes + ?9, dislikes = dislikes + ?10, seq = ?11
WHERE product_id = ?12
RETURNING {PRODUCT_COLUMNS}
"""
# Row templates of service/storage/sqlite/bulk.py: {values} stands for a list of rows.
_SET_PRODUCTS = """
UPDATE products SET category = d.column2, rating_count = d.column3, star_sum = d.column4,
    s1 = d.column5, s2 = d.column6, s3 = d.column7, s4 = d.column8, s5 = d.column9,
    likes = d.column10, dislikes = d.column11, seq = d.column12
FROM (VALUES {values}) AS d WHERE products.idx = d.column1
"""
_SET_PRODUCT = """
UPDATE products SET category = ?2, rating_count = ?3, star_sum = ?4,
    s1 = ?5, s2 = ?6, s3 = ?7, s4 = ?8, s5 = ?9, likes = ?10, dislikes = ?11, seq = ?12
WHERE idx = ?1
"""
_NEW_PRODUCTS = f"INSERT INTO products ({PRODUCT_COLUMNS}) VALUES {{values}}"
_INSERT_EVENTS = """
INSERT INTO events
    (event_id, seq, kind, product_id, user_id, value, occurred_at_us, outcome, recorded_at_us)
VALUES {values}
"""
_INSERT_NEW_EVENTS = _INSERT_EVENTS + "ON CONFLICT (event_id) DO NOTHING"
_INSERT_VOTES = """
INSERT INTO {table} (product_id, user_id, {column}, occurred_at_us, event_id) VALUES {{values}}
"""
_UPSERT_VOTES = (
    _INSERT_VOTES
    + """ON CONFLICT (product_id, user_id) DO UPDATE SET
    {column} = excluded.{column}, occurred_at_us = excluded.occurred_at_us,
    event_id = excluded.event_id
"""
)
_UPSERT_RATINGS = _UPSERT_VOTES.format(table="ratings", column="stars")
_UPSERT_LIKES = _UPSERT_VOTES.format(table="likes", column="value")
_INSERT_NEW_VOTES = _INSERT_VOTES + "ON CONFLICT (product_id, user_id) DO NOTHING"
_INSERT_NEW_RATINGS = _INSERT_NEW_VOTES.format(table="ratings", column="stars")
_INSERT_NEW_LIKES = _INSERT_NEW_VOTES.format(table="likes", column="value")
_CHUNK = 400  # bound parameters per IN (...) list, well under SQLite's limit
# Statements kept compiled per connection: IN (...) lists of every length a group can have.
_CACHED_STATEMENTS = 1024
# Page cache of the writer's connection, in KiB (SQLite's default: 2 MB). Random event
# ids and users spread each group's writes over many pages, which then stay cached.
WRITE_CACHE_KIB = 64 * 1024
PRODUCT_ROW_CACHE = 65_536  # product rows kept between groups (SQLiteStore._rows)
# WAL pages before a commit folds the WAL into the database file (SQLite's default: 1000).
# Pages every group changes (products, the ends of the tables appended to) are then copied
# once for several groups: 7-12 % less CPU per event, for a WAL of up to ~16 MB.
WAL_CHECKPOINT_PAGES = 4000

# SQLite primary result codes that mean the storage itself failed (not one bad write):
# I/O error, disk full, read-only, cannot open, locked/busy, corrupt, out of memory.
_STORAGE_FAULT_CODES = frozenset(
    {
        3,  # SQLITE_PERM
        5,  # SQLITE_BUSY
        6,  # SQLITE_LOCKED
        7,  # SQLITE_NOMEM
        8,  # SQLITE_READONLY
        10,  # SQLITE_IOERR
        11,  # SQLITE_CORRUPT
        13,  # SQLITE_FULL
        14,  # SQLITE_CANTOPEN
        15,  # SQLITE_PROTOCOL
        26,  # SQLITE_NOTADB
    }
)


def is_storage_fault(error: BaseException) -> bool:
    """True when a SQLite error is about the storage (disk full, read-only, I/O, lock)."""
    if not isinstance(error, sqlite3.Error):
        return False
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:
        return isinstance(error, sqlite3.OperationalError)
    return code & 0xFF in _STORAGE_FAULT_CODES


_PURGE_WAIT_MS = 200  # how long the WAL purge after an erasure may wait for readers


def _rollback(conn: sqlite3.Connection) -> None:
    """Rolls back an open transaction, keeping the caller's error if the rollback fails too
    (after a failed COMMIT SQLite may already have rolled back)."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


@contextlib.contextmanager
def _translated(action: str) -> Iterator[None]:
    """Re-raises SQLite's errors as StoreError (fault or not), naming the action."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(f"{action}: {exc}", fault=is_storage_fault(exc)) from exc


def _enable_wal(conn: sqlite3.Connection, busy_timeout_ms: int) -> str:
    """Switches the database to WAL (it stays so); returns the journal mode then in force.
    The switch needs the file to itself, and while another process holds it SQLite
    answers "database is locked" at once rather than after busy_timeout: so the wait is
    here (processes opening a new database together, ``serve --workers N``)."""
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


class SQLiteStore:
    """The SQLite database behind the service. Not thread-safe: one writer thread uses it."""

    # Write a batch as all new first, undoing that if it is not (_write_new_votes); False:
    # always look ids and votes up first (the tests compare the two).
    insert_first = True

    def __init__(
        self,
        path: Path | str,
        synchronous: str = "FULL",
        busy_timeout_ms: int = 5000,
        migrate: bool = True,
    ) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.committing = (0, 0)
        # Why this database takes no write ("" if it does): found damaged at start-up
        # (service/storage/sqlite/integrity.py). Every write method refuses, whoever calls it.
        self.writes_refused = ""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {self.path.parent}: {exc}", fault=True) from exc
        self.synchronous = synchronous.upper()
        self.busy_timeout_ms = int(busy_timeout_ms)
        self._write_cache = False  # the page cache is enlarged at the first write
        # Product rows as this connection last committed them, valid while no other
        # connection commits (PRAGMA data_version): most groups then read no product.
        self._rows: dict[str, ProductRow] = {}
        self._data_version: int | None = None
        with _translated(f"cannot open {self.path}"):
            conn = sqlite3.connect(
                str(self.path),
                check_same_thread=False,
                timeout=busy_timeout_ms / 1000,
                cached_statements=_CACHED_STATEMENTS,
            )
            self.conn = conn
            try:
                # Pragmas sqlite-utils leaves alone: WAL, durability and lock waits.
                mode = _enable_wal(conn, busy_timeout_ms)
                if str(mode).lower() != "wal":
                    raise StoreError(
                        f"{self.path}: could not enable WAL journal (got {mode})", fault=True
                    )
                conn.execute(f"PRAGMA synchronous={self.synchronous}")
                conn.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
                # Deleted content is overwritten, so that an erased user leaves no bytes behind.
                conn.execute("PRAGMA secure_delete=ON")
                conn.execute("PRAGMA temp_store=MEMORY")  # the IN (...) lists' sorters
                conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
                self.db = sqlite_utils.Database(conn)
                if migrate:
                    self._apply_migrations()
            except BaseException:
                conn.close()
                raise

    def close(self) -> None:
        """Checkpoints the WAL into the database file and closes the connection."""
        try:
            with _translated("WAL checkpoint at close"):
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self.conn.close()

    def follower(self) -> SQLiteFollower:
        return SQLiteFollower(self.path)

    def migrate(self) -> list[str]:
        """Creates or upgrades the schema; returns the names of the migrations applied now."""
        with _translated("migrating the schema"):
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
        with _translated("reading the migrations"):
            return [
                row[0]
                for row in self.conn.execute(
                    "SELECT name FROM _sqlite_migrations WHERE migration_set = ? ORDER BY id",
                    (migrations.name,),
                )
            ]

    # -- writes -----------------------------------------------------------------------------

    def _writable(self) -> None:
        if self.writes_refused:
            raise StoreError(f"writes refused: {self.writes_refused}", fault=False)

    def record_snapshot(self, seq: int, digest: int) -> None:
        """Keeps the catalogue snapshot's sequence number and digest (service/app/snapshot.py)."""
        self._writable()
        with _translated("recording the catalogue snapshot"):
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                self.conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (("snapshot_seq", seq), ("snapshot_digest", digest)),
                )
                self.conn.execute("COMMIT")
            except BaseException:
                _rollback(self.conn)
                raise

    def recorded_snapshot(self) -> tuple[int, int] | None:
        """(sequence number, digest) of the last snapshot written, None if none was."""
        with _translated("reading the snapshot record"):
            rows = dict(
                self.conn.execute(
                    "SELECT key, value FROM meta WHERE key IN ('snapshot_seq', 'snapshot_digest')"
                ).fetchall()
            )
        if len(rows) != 2:
            return None
        return int(rows["snapshot_seq"]), int(rows["snapshot_digest"])

    def apply(
        self, jobs: Sequence[Sequence[Event] | Erasure], now_us: int | None = None
    ) -> AppliedGroup:
        """Applies every job (events, or an erasure) in one transaction, in order; commits
        before returning. On any error the whole transaction is rolled back and StoreError
        raised."""
        self._writable()
        recorded_at = now_us if now_us is not None else time.time_ns() // 1000
        conn = self.conn
        if not self._write_cache:  # sized now: the start-up's bulk reads do not fill it
            self._write_cache = True
            with _translated("sizing the page cache"):
                conn.execute(f"PRAGMA cache_size=-{WRITE_CACHE_KIB}")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA data_version").fetchone()[0]
                if version != self._data_version:  # another connection wrote meanwhile
                    self._rows.clear()
                seq = conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0]
                seq_before = seq
                touched: dict[str, ProductRow] = {}
                votes = VoteChanges()
                results, seq = apply_jobs(
                    jobs,
                    seq,
                    lambda events, at: self._apply_events(events, at, recorded_at, touched, votes),
                    lambda user, at: self._erase(user, at, recorded_at, touched, votes),
                )
                conn.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (seq,))
                self.committing = (seq_before, seq)
                try:  # (the commit's WAL checkpoint may take a while after it is visible)
                    conn.execute("COMMIT")
                finally:
                    self.committing = (0, 0)
            except BaseException:
                self._forget_rows()
                _rollback(conn)
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"write failed: {exc}", fault=is_storage_fault(exc)) from exc
        self._data_version = version
        if len(self._rows) + len(touched) > PRODUCT_ROW_CACHE:
            self._rows.clear()
        self._rows.update(touched)
        if any(isinstance(r, ErasureResult) and r.seq for r in results):
            self._purge_wal()
        return AppliedGroup(
            results=results,
            products=list(touched.values()),
            seq=seq,
            votes=votes,
            seq_before=seq_before,
        )

    def _known_event_ids(self, event_ids: Sequence[str]) -> set[str]:
        """Those of the ids already recorded, or recorded and then erased (by hash)."""
        conn = self.conn
        unique = list(dict.fromkeys(event_ids))
        known: set[str] = set()
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(f"SELECT event_id FROM events WHERE event_id IN ({marks})", chunk)
            known.update(row[0] for row in rows)
        known.update(self._erased_event_ids([e for e in unique if e not in known]))
        return known

    def _erased_event_ids(self, event_ids: Sequence[str]) -> set[str]:
        """Those of the ids recorded and then erased (kept by hash only)."""
        conn = self.conn
        known: set[str] = set()
        if not conn.execute("SELECT EXISTS (SELECT 1 FROM erased_events)").fetchone()[0]:
            return known
        hashes = {event_hash(e): e for e in event_ids}
        digests = list(hashes)
        for start in range(0, len(digests), _CHUNK):
            part = digests[start : start + _CHUNK]
            marks = ",".join("?" * len(part))
            rows = conn.execute(
                f"SELECT event_hash FROM erased_events WHERE event_hash IN ({marks})", part
            )
            known.update(hashes[row[0]] for row in rows)
        return known

    def _current_votes(
        self, table: str, column: str, keys: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, int, str]]:
        """(product_id, user_id) -> (value, occurred_at_us, event_id) of the votes in force."""
        found: dict[tuple[str, str], tuple[int, int, str]] = {}
        pairs = list(keys)
        step = _CHUNK // 2
        for start in range(0, len(pairs), step):
            chunk = pairs[start : start + step]
            values = ",".join("(?, ?)" for _ in chunk)
            # A join on a VALUES list searches the primary key; `(a, b) IN (VALUES …)` scans.
            rows = self.conn.execute(
                f"SELECT v.product_id, v.user_id, v.{column}, v.occurred_at_us, v.event_id"
                f" FROM (VALUES {values}) AS k JOIN {table} AS v"
                " ON v.product_id = k.column1 AND v.user_id = k.column2",
                [part for pair in chunk for part in pair],
            )
            for product_id, user_id, value, occurred, event_id in rows:
                found[(product_id, user_id)] = (value, occurred, event_id)
        return found

    def _apply_events(
        self,
        events: EventBatch,
        seq: int,
        recorded_at: int,
        touched: dict[str, ProductRow],
        votes: VoteChanges,
    ) -> tuple[WriteResults, int]:
        """Applies events in order, reading and writing in bulk, many rows a statement.
        A batch of new ids is written as if every vote were the first on its key, then
        decided again where a vote was in force (_write_new_votes); any other batch is
        decided after one look-up of the ids and one of the votes in force
        (service/domain/voting.py decides). Then one read of the products and one write of
        their new states. Returns the results and the last sequence number."""
        conn = self.conn
        plan = self._write_new_votes(events, seq, recorded_at) if self.insert_first else None
        if plan is None:
            plan = plan_events(
                events,
                self._known_event_ids(events.event_ids),
                self._current_votes("ratings", "stars", rating_keys(events)),
                self._current_votes("likes", "value", like_keys(events)),
                seq,
                recorded_at,
            )
            write_columns(conn, _INSERT_EVENTS, plan.events)
            write_columns(conn, _UPSERT_RATINGS, plan.ratings)
            write_columns(conn, _UPSERT_LIKES, plan.likes)
        if plan.deltas:
            self._write_products(plan.product_updates(), touched)
            votes.add(plan.changes, touched)
        return plan.results, plan.seq

    def _write_new_votes(self, events: EventBatch, seq: int, recorded_at: int) -> Plan | None:
        """Writes a batch of new events as if each were the first vote on its key, the
        inserts themselves finding what is not so (a row already there is skipped):
        this saves looking up ids and votes that, in the usual batch, are not there.
        Where a vote was in force, decides again (_replan). Returns the plan, or None,
        with nothing written, if the batch holds an id twice, a key twice, or an id
        recorded (or erased) before."""
        if not all_distinct(events) or self._erased_event_ids(events.event_ids):
            return None
        conn = self.conn
        plan = plan_new_votes(events, seq, recorded_at)
        written = conn.total_changes
        write_columns(conn, _INSERT_NEW_EVENTS, plan.events)
        if _rows_since(conn, written) != len(events):  # some id recorded before
            conn.execute("DELETE FROM events WHERE seq > ?", (seq,))
            return None
        written = conn.total_changes
        write_columns(conn, _INSERT_NEW_RATINGS, plan.ratings)
        write_columns(conn, _INSERT_NEW_LIKES, plan.likes)
        if _rows_since(conn, written) != len(events):  # some users had voted before
            return self._replan(events, seq, recorded_at)
        return plan

    def _replan(self, events: EventBatch, seq: int, recorded_at: int) -> Plan:
        """After _write_new_votes found votes in force on some keys: decides the batch
        against them (newer wins) and brings what it wrote in line: those events'
        outcomes and the votes that replace them. The events took the same sequence
        numbers as they would have (every id is new)."""
        conn = self.conn
        ids = set(events.event_ids)
        in_force: list[dict[VoteKey, Vote]] = []
        for table, column, keys in (
            ("ratings", "stars", rating_keys(events)),
            ("likes", "value", like_keys(events)),
        ):
            found = self._current_votes(table, column, keys)
            # A vote holding an id of the batch was written just now: it was none before.
            in_force.append({key: vote for key, vote in found.items() if vote[2] not in ids})
        ratings, likes = in_force
        replaced = (set(ratings), set(likes))
        plan = plan_one_by_one(events, set(), ratings, likes, seq, recorded_at)
        superseded = Outcome.SUPERSEDED
        conn.executemany(
            "UPDATE events SET outcome = ? WHERE seq = ?",
            [
                (superseded.name, s)
                for o, s in zip(plan.results.outcomes, plan.results.seqs, strict=True)
                if o is superseded
            ],
        )
        write_columns(conn, _UPSERT_RATINGS, of_keys(plan.ratings, replaced[0]))
        write_columns(conn, _UPSERT_LIKES, of_keys(plan.likes, replaced[1]))
        return plan

    def _write_products(
        self, updates: list[tuple[str, str, list[int], int]], touched: dict[str, ProductRow]
    ) -> None:
        """Adds each delta to its product's row, creating the products not yet known (idx
        numbered on from the largest, as SQLite would): one read of the rows, then one
        write of each new state by idx. Keeps the rows as written in ``touched``."""
        conn = self.conn
        current = {p: touched.get(p) or self._rows.get(p) for p, _, _, _ in updates}
        unknown = [p for p, row in current.items() if row is None]
        for start in range(0, len(unknown), _CHUNK):
            chunk = unknown[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT {PRODUCT_COLUMNS} FROM products WHERE product_id IN ({marks})", chunk
            )
            current.update((row[1], product_row(row)) for row in rows)
        changed: list[tuple[Any, ...]] = []
        created: list[tuple[Any, ...]] = []
        top: int | None = None
        for product_id, category, delta, seq in updates:
            row = current[product_id]
            if row is None:
                if top is None:
                    top = conn.execute("SELECT coalesce(max(idx), 0) FROM products").fetchone()[0]
                top += 1
                values = (top, product_id, category, *delta, seq)
                created.append(values)
                touched[product_id] = product_row(values)
                continue
            count, stars, s1, s2, s3, s4, s5, likes, dislikes = delta
            h1, h2, h3, h4, h5 = row.histogram
            # The columns of _SET_PRODUCTS: idx, category, counts, seq.
            values = (
                row.idx, category or row.category, row.rating_count + count,
                row.star_sum + stars, h1 + s1, h2 + s2, h3 + s3, h4 + s4, h5 + s5,
                row.likes + likes, row.dislikes + dislikes, seq,
            )  # fmt: skip
            changed.append(values)
            touched[product_id] = ProductRow(
                values[0], product_id, values[1], values[2], values[3], values[4:9],
                values[9], values[10], seq,
            )  # fmt: skip
        write_rows(conn, _NEW_PRODUCTS, created)
        changed.sort()  # by idx: the rows one after the other in the table (and its pages)
        write_rows(conn, _SET_PRODUCTS, changed, _SET_PRODUCT)

    def _forget_rows(self) -> None:
        """Drops the cached product rows (after a failed or outside write)."""
        self._rows.clear()
        self._data_version = None

    def _purge_wal(self) -> None:
        """After an erasure the WAL still holds older page images with the erased rows:
        fold it into the (securely overwritten) database file and empty it. The erasure
        is committed already, so a failure, or a reader holding an old snapshot past a
        short wait, only postpones that to a later checkpoint."""
        conn = self.conn
        with contextlib.suppress(sqlite3.Error):
            conn.execute(f"PRAGMA busy_timeout={_PURGE_WAIT_MS}")  # the writer must not stall
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")

    def _erase(
        self,
        user_id: str,
        seq: int,
        erased_at: int,
        touched: dict[str, ProductRow],
        votes: VoteChanges,
    ) -> ErasureResult:
        """Removes the user's votes, updates their products, and erases the user's events,
        keeping only a hash of each event id (de-duplication). Takes ``seq`` if anything
        was erased."""
        conn = self.conn
        ratings = conn.execute(
            "DELETE FROM ratings WHERE user_id = ? RETURNING product_id, stars, occurred_at_us",
            (user_id,),
        ).fetchall()
        likes = conn.execute(
            "DELETE FROM likes WHERE user_id = ? RETURNING product_id, value, occurred_at_us",
            (user_id,),
        ).fetchall()
        rows = conn.execute("SELECT event_id FROM events WHERE user_id = ?", (user_id,))
        event_ids = [row[0] for row in rows]
        if not (ratings or likes or event_ids):
            return ErasureResult(0, 0, 0, 0)
        conn.executemany(
            "INSERT OR IGNORE INTO erased_events (event_hash, erased_at_us) VALUES (?, ?)",
            [(event_hash(e), erased_at) for e in event_ids],
        )
        conn.execute("DELETE FROM events WHERE user_id = ?", (user_id,))
        deltas, removed = erasure_deltas(ratings, likes)
        for product_id, delta in deltas.items():
            row = conn.execute(_UPDATE_PRODUCT, ("", *delta, seq, product_id)).fetchone()
            touched[product_id] = product_row(row)
        votes.add(removed, touched)
        return erasure_result(ratings, likes, len(event_ids), seq)

    def probe(self, min_free_bytes: int = 0) -> None:
        """Raises StorageProbeFailed unless the filesystem holding the database has
        ``min_free_bytes`` free and a small write transaction commits."""
        if self.writes_refused:
            raise StorageProbeFailed(self.writes_refused)
        if min_free_bytes > 0:
            try:
                stat = os.statvfs(self.path.parent)
            except OSError as exc:
                raise StorageProbeFailed(f"cannot stat the database directory: {exc}") from exc
            free = stat.f_bavail * stat.f_frsize
            if free < min_free_bytes:
                raise StorageProbeFailed(
                    f"{free} bytes free on the database's filesystem (want {min_free_bytes})"
                )
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            # A changing value: SQLite skips writing a row whose content is unchanged.
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('probe', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (time.time_ns(),),
            )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            raise StorageProbeFailed(f"test write failed: {exc}") from exc

    def save_weights_entry(self, row: WeightsRow) -> None:
        """Records one weights version, committed before returning."""
        conn = self.conn
        self._writable()
        columns = EXPORT_TABLES["weights_history"]
        with _translated("recording the weights"):
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    f"INSERT INTO weights_history ({', '.join(columns)})"
                    f" VALUES ({', '.join('?' * len(columns))})",
                    row,
                )
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

    # -- reads ------------------------------------------------------------------------------

    def last_seq(self) -> int:
        with _translated("reading the sequence number"):
            return _last_seq(self.conn)

    def load_products(self, after_seq: int = 0) -> ProductTable:
        """Every product row changed after ``after_seq`` (all of them for 0), in one read."""
        with _translated("reading the products"):
            return _load_products(self.conn, after_seq)

    def load_votes(self, products: Sequence[int] | None = None) -> VoteTable:
        """Every rating and like in force with its product's idx (cleared likes excluded);
        only those of the given product idx values when ``products`` is given."""
        with _translated("reading the votes"):
            return _load_votes(self.conn, products)

    def load_weights_history(self) -> list[WeightsRow]:
        """Every recorded weights version, oldest first."""
        columns = ", ".join(EXPORT_TABLES["weights_history"])
        with _translated("reading the weights history"):
            rows = self.conn.execute(f"SELECT {columns} FROM weights_history ORDER BY version")
            return [tuple(row) for row in rows]

    def snapshot_problem(
        self, seq: int, idx: npt.NDArray[np.int64], product_ids: Sequence[str]
    ) -> str:
        """Why a catalogue snapshot taken at ``seq`` does not fit this database ("" if it
        does): the database must be at or past ``seq`` and hold the same products."""
        last = self.last_seq()
        if last < seq:
            return f"the database is at sequence {last}, before the snapshot's {seq}"
        top = int(idx.max()) if idx.size else 0
        with _translated("checking the snapshot"):
            count = self.conn.execute("SELECT count(*) FROM products WHERE idx <= ?", (top,))
            if count.fetchone()[0] != idx.size:
                return "the database holds other products"
            step = max(1, idx.size // 64)
            for i in range(0, idx.size, step):
                row = self.conn.execute(
                    "SELECT product_id FROM products WHERE idx = ?", (int(idx[i]),)
                ).fetchone()
                if row is None or row[0] != product_ids[i]:
                    return f"product {int(idx[i])} differs"
        return ""

    def count_events(self) -> int:
        with _translated("counting events"):
            return int(self.conn.execute("SELECT count(*) FROM events").fetchone()[0])

    def aggregate_mismatches(self) -> list[str]:
        """Products whose stored aggregates differ from a recount of the votes (should be none)."""
        with _translated("recounting"):
            recount = self.conn.execute(RECOUNT_MISMATCHES).fetchall()
        return sorted(r[0] for r in recount)

    # -- export and import ------------------------------------------------------------------

    def export(self, chunk: int = 10_000) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        """("seq", [(last sequence number,)]), then the rows of each table of EXPORT_TABLES
        in chunks: all read in one transaction, so a consistent copy of a live database."""
        conn = self.conn
        with _translated("exporting"):
            conn.execute("BEGIN")
            try:
                yield "seq", [(_last_seq(conn),)]
                for table, names in EXPORT_TABLES.items():
                    # Votes in the order of their unique index (no index by product, m005).
                    order = "user_id, product_id" if table in VOTE_TABLES else "1"
                    cursor = conn.execute(
                        f"SELECT {', '.join(names)} FROM {table} ORDER BY {order}"
                    )
                    while rows := cursor.fetchmany(chunk):
                        yield table, [tuple(row) for row in rows]
            finally:
                conn.execute("COMMIT")

    def restore(self, table: str, rows: Sequence[Sequence[Any]]) -> None:
        """Inserts exported rows as they are (into an empty database; finish_restore commits).
        Weights versions the target holds already are kept (as PostgresStore does)."""
        columns = EXPORT_TABLES[table]
        conn = self.conn
        # Only a version conflict is skipped (INSERT OR IGNORE would skip CHECK failures too).
        keep = " ON CONFLICT (version) DO NOTHING" if table == "weights_history" else ""
        self._forget_rows()
        with _translated(f"importing {table}"):
            if not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)})"
                f" VALUES ({', '.join('?' * len(columns))}){keep}",
                rows,
            )

    def finish_restore(self, seq: int) -> None:
        """Sets the sequence number and commits what restore() inserted, if the aggregates
        equal a recount; rolls everything back otherwise."""
        conn = self.conn
        with _translated("finishing the import"):
            if not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (seq,))
                wrong = conn.execute(RECOUNT_MISMATCHES).fetchall()
                if wrong:
                    raise StoreError(
                        f"imported aggregates differ from a recount for {len(wrong)} products",
                        fault=False,
                    )
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

    def abort_restore(self) -> None:
        """Rolls back what restore() inserted (an import that failed before finish_restore)."""
        _rollback(self.conn)


class SQLiteFollower:
    """The change feed's reader: its own connection, polled (SQLite cannot notify)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._wake = threading.Event()
        self._votes_by_product = False  # the index exists (m005: made on demand)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            with _translated(f"cannot open {self._path}"):
                conn = sqlite3.connect(str(self._path), check_same_thread=False, timeout=5)
                conn.execute("PRAGMA busy_timeout=5000")
            self._conn = conn
        return self._conn

    def wait(self, timeout: float) -> None:
        self._wake.wait(timeout)
        self._wake.clear()

    def wake(self) -> None:
        self._wake.set()

    def last_seq(self) -> int:
        with _translated("reading the sequence number"):
            return _last_seq(self._connection())

    def load_products(self, after_seq: int = 0) -> ProductTable:
        with _translated("reading the products"):
            return _load_products(self._connection(), after_seq)

    def load_votes(self, products: Sequence[int] | None = None) -> VoteTable:
        conn = self._connection()
        if products is not None and not self._votes_by_product:
            # Once per process, and then kept: from now on every write pays for it (m005).
            with _translated("indexing the votes by product"):
                for table in VOTE_TABLES:
                    conn.execute(
                        f"CREATE INDEX IF NOT EXISTS {table}_product ON {table} (product_id)"
                    )
            self._votes_by_product = True
        with _translated("reading the votes"):
            return _load_votes(conn, products)

    def close(self) -> None:
        self._wake.set()
        if self._conn is not None:
            self._conn.close()


def _rows_since(conn: sqlite3.Connection, total_changes: int) -> int:
    """Rows inserted, updated or deleted on the connection since its ``total_changes`` was
    the one given (a C int: it wraps around after 2**31 changes)."""
    return (conn.total_changes - total_changes) % 2**32


def _last_seq(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0])


def _load_products(conn: sqlite3.Connection, after_seq: int) -> ProductTable:
    conn.execute("BEGIN")
    try:
        seq = _last_seq(conn)
        rows = conn.execute(
            f"SELECT {PRODUCT_COLUMNS} FROM products WHERE seq > ? ORDER BY idx", (after_seq,)
        ).fetchall()
    finally:
        conn.execute("COMMIT")
    return ProductTable.from_rows(rows, seq)


def _load_votes(conn: sqlite3.Connection, products: Sequence[int] | None) -> VoteTable:
    if products is None:
        rows = conn.execute(LOAD_VOTES.format(where="", also="")).fetchall()
    else:
        rows = []
        wanted = list(products)
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            sql = LOAD_VOTES.format(
                where=f"WHERE p.idx IN ({marks})", also=f"AND p.idx IN ({marks})"
            )
            rows += conn.execute(sql, (*chunk, *chunk)).fetchall()
    return VoteTable.from_rows(rows)
