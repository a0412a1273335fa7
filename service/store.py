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
import hashlib
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlite_utils
from sqlite_utils.migrations import Migrations

from service.domain import (
    Erasure,
    ErasureResult,
    Event,
    Outcome,
    ProductRow,
    RatingEvent,
    VoteChange,
    WriteResult,
)

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
    """Every weights version applied (service/weights_admin.py): what restarts restore."""
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


_PRODUCT_COLUMNS = (
    "idx, product_id, category, rating_count, star_sum, s1, s2, s3, s4, s5, likes, dislikes, seq"
)
_ENSURE_PRODUCT = """
INSERT INTO products (product_id, category, seq) VALUES (?, ?, ?)
ON CONFLICT (product_id) DO NOTHING
"""
# Deltas are applied by UPDATE (not by an upsert's VALUES row, whose CHECKs would see them).
# executemany takes no RETURNING: bulk writes use _ADD_TO_PRODUCT and read the rows after.
_ADD_TO_PRODUCT = """
UPDATE products SET
    category = CASE WHEN ?1 != '' THEN ?1 ELSE category END,
    rating_count = rating_count + ?2, star_sum = star_sum + ?3,
    s1 = s1 + ?4, s2 = s2 + ?5, s3 = s3 + ?6, s4 = s4 + ?7, s5 = s5 + ?8,
    likes = likes + ?9, dislikes = dislikes + ?10, seq = ?11
WHERE product_id = ?12
"""
_UPDATE_PRODUCT = _ADD_TO_PRODUCT + f"RETURNING {_PRODUCT_COLUMNS}\n"
_CHUNK = 400  # bound parameters per IN (...) list, well under SQLite's limit
_INSERT_EVENT = """
INSERT INTO events
    (event_id, seq, kind, product_id, user_id, value, occurred_at_us, outcome, recorded_at_us)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

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


def event_hash(event_id: str) -> bytes:
    """What the event log keeps of an erased event: a one-way hash of its id."""
    return hashlib.sha256(event_id.encode("utf-8")).digest()


_PURGE_WAIT_MS = 200  # how long the WAL purge after an erasure may wait for readers


class StorageProbeFailed(Exception):
    """The database cannot take a write now (see the message)."""


def _rollback(conn: sqlite3.Connection) -> None:
    """Rolls back an open transaction, keeping the caller's error if the rollback fails too
    (after a failed COMMIT SQLite may already have rolled back)."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _row(values: Sequence[Any]) -> ProductRow:
    return ProductRow(
        idx=values[0],
        product_id=values[1],
        category=values[2],
        rating_count=values[3],
        star_sum=values[4],
        histogram=(values[5], values[6], values[7], values[8], values[9]),
        likes=values[10],
        dislikes=values[11],
        seq=values[12],
    )


@dataclass(frozen=True)
class ProductTable:
    """All product rows as columns (bulk load for the in-memory catalogue)."""

    idx: npt.NDArray[np.int64]
    product_ids: list[str]
    categories: list[str]
    rating_count: npt.NDArray[np.int64]
    star_sum: npt.NDArray[np.int64]
    histogram: npt.NDArray[np.int64]  # shape (n, 5)
    likes: npt.NDArray[np.int64]
    dislikes: npt.NDArray[np.int64]
    seq: int  # the database's last sequence number when read
    row_seq: npt.NDArray[np.int64]  # each row's last change


JobResult = list[WriteResult] | ErasureResult


@dataclass(frozen=True)
class AppliedGroup:
    """What one committed transaction did."""

    results: list[JobResult]  # per job: one WriteResult per event, or an ErasureResult
    products: list[ProductRow]  # final state of every product touched
    seq: int  # the last sequence number after the commit
    votes: list[VoteChange] = field(default_factory=list)  # every vote replaced, in order
    seq_before: int = 0  # the last sequence number before this transaction


@dataclass(frozen=True)
class VoteTable:
    """Every vote in force, as columns: the input of time-decayed sums."""

    product_idx: npt.NDArray[np.int64]
    is_rating: npt.NDArray[np.bool_]
    value: npt.NDArray[np.int64]
    occurred_at_us: npt.NDArray[np.int64]


class SQLiteStore:
    """The SQLite database behind the service. Not thread-safe: one writer thread uses it."""

    def __init__(
        self, path: Path | str, synchronous: str = "FULL", busy_timeout_ms: int = 5000
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(self.path), check_same_thread=False, timeout=busy_timeout_ms / 1000
        )
        self.conn = conn
        # Pragmas sqlite-utils leaves alone: WAL, durability and lock waits.
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise RuntimeError(f"{self.path}: could not enable WAL journal (got {mode})")
        conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        self.busy_timeout_ms = int(busy_timeout_ms)
        # Deleted content is overwritten, so that an erased user leaves no bytes behind.
        conn.execute("PRAGMA secure_delete=ON")
        self.db = sqlite_utils.Database(conn)
        migrations.apply(self.db)

    def close(self) -> None:
        """Checkpoints the WAL into the database file and closes the connection."""
        try:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self.conn.close()

    # -- writes -----------------------------------------------------------------------------

    def apply(
        self, jobs: Sequence[Sequence[Event] | Erasure], now_us: int | None = None
    ) -> AppliedGroup:
        """Applies every job (events, or an erasure) in one transaction, in order; commits
        before returning. On any error the whole transaction is rolled back and re-raised."""
        recorded_at = now_us if now_us is not None else time.time_ns() // 1000
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            seq = conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0]
            seq_before = seq
            touched: dict[str, ProductRow] = {}
            votes: list[VoteChange] = []
            results: list[JobResult] = []
            erasing = False
            pending: list[Sequence[Event]] = []  # consecutive event jobs, applied together

            def flush() -> None:
                nonlocal seq
                if not pending:
                    return
                flat = [event for job in pending for event in job]
                flat_results, seq = self._apply_events(flat, seq, recorded_at, touched, votes)
                position = 0
                for job in pending:
                    results.append(flat_results[position : position + len(job)])
                    position += len(job)
                pending.clear()

            for job in jobs:
                if isinstance(job, Erasure):
                    flush()
                    erased = self._erase(job.user_id, seq + 1, recorded_at, touched, votes)
                    seq = max(seq, erased.seq)
                    erasing = erasing or erased.seq > 0
                    results.append(erased)
                    continue
                pending.append(job)
            flush()
            conn.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (seq,))
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        if erasing:
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
        if conn.execute("SELECT EXISTS (SELECT 1 FROM erased_events)").fetchone()[0]:
            hashes = {event_hash(e): e for e in unique if e not in known}
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
        self, table: str, column: str, keys: set[tuple[str, str]]
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
        events: Sequence[Event],
        seq: int,
        recorded_at: int,
        touched: dict[str, ProductRow],
        votes: list[VoteChange],
    ) -> tuple[list[WriteResult], int]:
        """Applies events in order, reading and writing in bulk: one look-up of the ids,
        one of the votes in force, then executemany writes of the final states. Each
        recorded event takes the next sequence number; returns the results and the last."""
        conn = self.conn
        known = self._known_event_ids([e.event_id for e in events])
        ratings = self._current_votes(
            "ratings",
            "stars",
            {(e.product_id, e.user_id) for e in events if isinstance(e, RatingEvent)},
        )
        likes = self._current_votes(
            "likes",
            "value",
            {(e.product_id, e.user_id) for e in events if not isinstance(e, RatingEvent)},
        )
        results: list[WriteResult] = []
        event_rows: list[tuple[Any, ...]] = []
        final_ratings: dict[tuple[str, str], tuple[int, int, str]] = {}
        final_likes: dict[tuple[str, str], tuple[int, int, str]] = {}
        # Per product, in the order first changed: rating_count, star_sum, s1..s5, likes,
        # dislikes; its latest non-empty category; the sequence number of its last change.
        deltas: dict[str, list[int]] = {}
        categories: dict[str, str] = {}
        product_seq: dict[str, int] = {}
        changes: list[tuple[str, str, int | None, int, int, int]] = []  # VoteChange fields
        for event in events:
            if event.event_id in known:
                results.append(WriteResult(Outcome.DUPLICATE, 0))
                continue
            known.add(event.event_id)
            seq += 1
            is_rating = isinstance(event, RatingEvent)
            if isinstance(event, RatingEvent):
                kind, value, current_votes, final = "rating", event.stars, ratings, final_ratings
            else:
                kind, value, current_votes, final = "like", int(event.value), likes, final_likes
            key = (event.product_id, event.user_id)
            current = current_votes.get(key)
            newer = current is None or (current[1], current[2]) < (
                event.occurred_at_us,
                event.event_id,
            )
            outcome = Outcome.APPLIED if newer else Outcome.SUPERSEDED
            event_rows.append(
                (
                    event.event_id,
                    seq,
                    kind,
                    event.product_id,
                    event.user_id,
                    value,
                    event.occurred_at_us,
                    outcome.name,
                    recorded_at,
                )
            )
            results.append(WriteResult(outcome, seq))
            if not newer:
                continue
            state = (value, event.occurred_at_us, event.event_id)
            current_votes[key] = final[key] = state
            old = None if current is None else current[0]
            product = event.product_id
            delta = deltas.get(product)
            if delta is None:
                delta = deltas[product] = [0] * 9
            if is_rating:
                assert isinstance(event, RatingEvent)
                if event.category:
                    categories[product] = event.category
                delta[1] += value
                delta[1 + value] += 1
                if old is None:
                    delta[0] += 1
                else:
                    delta[1] -= old
                    delta[1 + old] -= 1
            else:
                delta[7] += (value == 1) - (old == 1)
                delta[8] += (value == -1) - (old == -1)
            product_seq[product] = seq
            old_time = 0 if current is None else current[1]
            changes.append((product, kind, old, old_time, value, event.occurred_at_us))
        if event_rows:
            conn.executemany(_INSERT_EVENT, event_rows)
        for table, column, final in (
            ("ratings", "stars", final_ratings),
            ("likes", "value", final_likes),
        ):
            if final:
                conn.executemany(
                    f"INSERT INTO {table} (product_id, user_id, {column}, occurred_at_us, event_id)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (product_id, user_id) DO UPDATE SET "
                    f"{column} = excluded.{column}, occurred_at_us = excluded.occurred_at_us, "
                    "event_id = excluded.event_id",
                    [(p, u, v, t, e) for (p, u), (v, t, e) in final.items()],
                )
        if deltas:
            order = list(deltas)
            conn.executemany(
                _ENSURE_PRODUCT, [(p, categories.get(p, ""), product_seq[p]) for p in order]
            )
            conn.executemany(
                _ADD_TO_PRODUCT,
                [(categories.get(p, ""), *deltas[p], product_seq[p], p) for p in order],
            )
            for start in range(0, len(order), _CHUNK):
                chunk = order[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT {_PRODUCT_COLUMNS} FROM products WHERE product_id IN ({marks})", chunk
                )
                for row in rows:
                    touched[row[1]] = _row(row)
            for product, kind, old, old_time, value, new_time in changes:
                votes.append(VoteChange(touched[product].idx, kind, old, old_time, value, new_time))
        return results, seq

    def _purge_wal(self) -> None:
        """After an erasure the WAL still holds older page images with the erased rows:
        fold it into the (securely overwritten) database file and empty it. The erasure
        is committed already, so a failure, or a reader holding an old snapshot past a
        short wait, only postpones that to a later checkpoint."""
        conn = self.conn
        conn.execute(f"PRAGMA busy_timeout={_PURGE_WAIT_MS}")  # the writer must not stall
        try:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")

    def _erase(
        self,
        user_id: str,
        seq: int,
        erased_at: int,
        touched: dict[str, ProductRow],
        votes: list[VoteChange],
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
        # Per product: rating_count, star_sum, s1..s5, likes, dislikes (as in _UPDATE_PRODUCT).
        deltas: dict[str, list[int]] = {}
        removed: list[tuple[str, str, int, int]] = []
        for product_id, stars, occurred in ratings:
            delta = deltas.setdefault(product_id, [0] * 9)
            delta[0] -= 1
            delta[1] -= stars
            delta[1 + stars] -= 1
            removed.append((product_id, "rating", stars, occurred))
        for product_id, value, occurred in likes:
            delta = deltas.setdefault(product_id, [0] * 9)
            delta[7] -= value == 1
            delta[8] -= value == -1
            removed.append((product_id, "like", value, occurred))
        for product_id, delta in deltas.items():
            row = conn.execute(_UPDATE_PRODUCT, ("", *delta, seq, product_id)).fetchone()
            touched[product_id] = _row(row)
        for product_id, kind, value, occurred in removed:
            votes.append(VoteChange(touched[product_id].idx, kind, value, occurred, None, 0))
        return ErasureResult(
            ratings_removed=len(ratings),
            likes_removed=sum(1 for row in likes if row[1] != 0),
            events_erased=len(event_ids),
            seq=seq,
        )

    def probe(self, min_free_bytes: int = 0) -> None:
        """Raises StorageProbeFailed unless the filesystem holding the database has
        ``min_free_bytes`` free and a small write transaction commits."""
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

    # -- reads ------------------------------------------------------------------------------

    def last_seq(self) -> int:
        return int(self.conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0])

    def load_products(self, after_seq: int = 0) -> ProductTable:
        """Every product row changed after ``after_seq`` (all of them for 0), in one read."""
        conn = self.conn
        conn.execute("BEGIN")
        try:
            seq = conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0]
            rows = conn.execute(
                f"SELECT {_PRODUCT_COLUMNS} FROM products WHERE seq > ? ORDER BY idx", (after_seq,)
            ).fetchall()
        finally:
            conn.execute("COMMIT")
        numbers = np.array([r[:1] + r[3:13] for r in rows], dtype=np.int64).reshape(-1, 11)
        return ProductTable(
            idx=numbers[:, 0].copy(),
            product_ids=[r[1] for r in rows],
            categories=[r[2] for r in rows],
            rating_count=numbers[:, 1].copy(),
            star_sum=numbers[:, 2].copy(),
            histogram=numbers[:, 3:8].copy(),
            likes=numbers[:, 8].copy(),
            dislikes=numbers[:, 9].copy(),
            seq=int(seq),
            row_seq=numbers[:, 10].copy(),
        )

    def snapshot_problem(
        self, seq: int, idx: npt.NDArray[np.int64], product_ids: Sequence[str]
    ) -> str:
        """Why a catalogue snapshot taken at ``seq`` does not fit this database ("" if it
        does): the database must be at or past ``seq`` and hold the same products."""
        last = self.last_seq()
        if last < seq:
            return f"the database is at sequence {last}, before the snapshot's {seq}"
        top = int(idx.max()) if idx.size else 0
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

    def load_votes(self, products: Sequence[int] | None = None) -> VoteTable:
        """Every rating and like in force with its product's idx (cleared likes excluded);
        only those of the given product idx values when ``products`` is given."""
        query = """
            SELECT p.idx, 1, r.stars, r.occurred_at_us
            FROM ratings r JOIN products p ON p.product_id = r.product_id {where}
            UNION ALL
            SELECT p.idx, 0, l.value, l.occurred_at_us
            FROM likes l JOIN products p ON p.product_id = l.product_id
            WHERE l.value != 0 {also}
            """
        if products is None:
            rows = self.conn.execute(query.format(where="", also="")).fetchall()
        else:
            rows = []
            wanted = list(products)
            for start in range(0, len(wanted), 400):
                chunk = wanted[start : start + 400]
                marks = ",".join("?" * len(chunk))
                sql = query.format(
                    where=f"WHERE p.idx IN ({marks})", also=f"AND p.idx IN ({marks})"
                )
                rows += self.conn.execute(sql, (*chunk, *chunk)).fetchall()
        table = np.array(rows, dtype=np.int64).reshape(-1, 4)
        return VoteTable(
            product_idx=table[:, 0].copy(),
            is_rating=table[:, 1] == 1,
            value=table[:, 2].copy(),
            occurred_at_us=table[:, 3].copy(),
        )

    def count_events(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM events").fetchone()[0])

    def aggregate_mismatches(self) -> list[str]:
        """Products whose stored aggregates differ from a recount of the votes (should be none)."""
        recount = self.conn.execute(
            """
            WITH r AS (
                SELECT product_id, count(*) AS n, sum(stars) AS s,
                       sum(stars = 1) AS s1, sum(stars = 2) AS s2, sum(stars = 3) AS s3,
                       sum(stars = 4) AS s4, sum(stars = 5) AS s5
                FROM ratings GROUP BY product_id),
            l AS (
                SELECT product_id, sum(value = 1) AS likes, sum(value = -1) AS dislikes
                FROM likes GROUP BY product_id)
            SELECT p.product_id FROM products p
            LEFT JOIN r ON r.product_id = p.product_id
            LEFT JOIN l ON l.product_id = p.product_id
            WHERE p.rating_count != coalesce(r.n, 0) OR p.star_sum != coalesce(r.s, 0)
               OR p.s1 != coalesce(r.s1, 0) OR p.s2 != coalesce(r.s2, 0)
               OR p.s3 != coalesce(r.s3, 0) OR p.s4 != coalesce(r.s4, 0)
               OR p.s5 != coalesce(r.s5, 0)
               OR p.likes != coalesce(l.likes, 0) OR p.dislikes != coalesce(l.dislikes, 0)
            UNION
            SELECT product_id FROM ratings WHERE product_id NOT IN (SELECT product_id FROM products)
            UNION
            SELECT product_id FROM likes WHERE product_id NOT IN (SELECT product_id FROM products)
            """
        ).fetchall()
        return sorted(r[0] for r in recount)
