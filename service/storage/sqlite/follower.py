"""The SQLite change feed's reader (SQLiteFollower): a connection of its own, polled."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Sequence
from pathlib import Path

from reviewrank.service.app.store import (
    BurstDecision,
    CommentRows,
    PollRows,
    ProductTable,
    VoteLogRows,
    VoteTable,
)
from reviewrank.service.storage.sqlite.connection import translated_errors
from reviewrank.service.storage.sqlite.reads import (
    read_comment_rows,
    read_last_seq,
    read_poll_rows,
    read_products,
    read_vote_log,
    read_votes,
)
from reviewrank.service.storage.sqlite.records import read_burst_decisions
from reviewrank.service.storage.tables import DECAYED_VOTE_TABLES


class SQLiteFollower:
    """The change feed's reader: its own connection, polled (SQLite cannot notify)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._wake = threading.Event()
        self._votes_by_product = False  # the index exists (m005: made on demand)
        self._comments_by_product = False

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            with translated_errors(f"cannot open {self._path}"):
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
        with translated_errors("reading the sequence number"):
            return read_last_seq(self._connection())

    def load_products(self, after_seq: int = 0) -> ProductTable:
        with translated_errors("reading the products"):
            return read_products(self._connection(), after_seq)

    def load_votes(
        self, products: Sequence[int] | None = None, shares_only: bool = False
    ) -> VoteTable:
        conn = self._connection()
        if products is not None and not self._votes_by_product:
            # Once per process, and then kept: from now on every write pays for it (m005).
            with translated_errors("indexing the votes by product"):
                for table in DECAYED_VOTE_TABLES:
                    conn.execute(
                        f"CREATE INDEX IF NOT EXISTS {table}_product ON {table} (product_id)"
                    )
            self._votes_by_product = True
        with translated_errors("reading the votes"):
            return read_votes(conn, products, shares_only)

    def load_vote_log(self) -> VoteLogRows:
        with translated_errors("reading the vote log"):
            return read_vote_log(self._connection())

    def load_burst_decisions(self) -> list[BurstDecision]:
        with translated_errors("reading the burst decisions"):
            return read_burst_decisions(self._connection())

    def load_comment_rows(
        self, channels: Collection[str], products: Sequence[int] | None = None
    ) -> CommentRows:
        conn = self._connection()
        if products is not None and not self._comments_by_product:
            with translated_errors("indexing the comments by product"):  # (as load_votes)
                conn.execute("CREATE INDEX IF NOT EXISTS comments_product ON comments (product_id)")
            self._comments_by_product = True
        with translated_errors("reading the comments"):
            return read_comment_rows(conn, channels, products)

    def load_poll_rows(self, after_seq: int | None = None, mark: int = 0) -> PollRows:
        with translated_errors("reading the poll votes"):
            return read_poll_rows(self._connection(), after_seq, mark)

    def close(self) -> None:
        self._wake.set()
        if self._conn is not None:
            self._conn.close()
