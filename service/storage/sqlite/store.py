"""SQLite storage: the vote tables, the event log and per-product aggregates (what a
write does: writes.py).

Durability: WAL journal, ``synchronous=FULL`` by default, an explicit
``BEGIN IMMEDIATE`` … ``COMMIT`` per group; callers are acknowledged only after
:meth:`SQLiteStore.apply` returns.

SQLiteStore is composed of one part a module: schema.py (migrations), writes.py (apply,
its two write strategies, erasure), records.py (snapshot record, weights history,
probe), reads.py, export.py (export and restore); connection.py holds what they share,
follower.py the change feed's reader. Here: opening and closing the connection.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils

from reviewrank.service.domain.errors import StoreError
from reviewrank.service.domain.values import ProductRow
from reviewrank.service.storage.sqlite.connection import enable_wal, translated_errors
from reviewrank.service.storage.sqlite.export import SQLiteExport
from reviewrank.service.storage.sqlite.follower import SQLiteFollower
from reviewrank.service.storage.sqlite.reads import SQLiteReads
from reviewrank.service.storage.sqlite.records import SQLiteRecords
from reviewrank.service.storage.sqlite.schema import SQLiteSchema
from reviewrank.service.storage.sqlite.writes import SQLiteWrites

# Statements kept compiled per connection: IN (...) lists of every length a group can have.
_CACHED_STATEMENTS = 1024
# WAL pages before a commit folds the WAL into the database file (SQLite's default: 1000).
# Pages every group changes (products, the ends of the tables appended to) are then copied
# once for several groups: 7-12 % less CPU per event, for a WAL of up to ~16 MB.
WAL_CHECKPOINT_PAGES = 4000


class SQLiteStore(SQLiteSchema, SQLiteWrites, SQLiteRecords, SQLiteReads, SQLiteExport):
    """The SQLite database behind the service. Not thread-safe: one writer thread uses it."""

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
        with translated_errors(f"cannot open {self.path}"):
            conn = sqlite3.connect(
                str(self.path),
                check_same_thread=False,
                timeout=busy_timeout_ms / 1000,
                cached_statements=_CACHED_STATEMENTS,
            )
            self.conn = conn
            try:
                # Pragmas sqlite-utils leaves alone: WAL, durability and lock waits.
                mode = enable_wal(conn, busy_timeout_ms)
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
            with translated_errors("WAL checkpoint at close"):
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self.conn.close()

    def follower(self) -> SQLiteFollower:
        return SQLiteFollower(self.path)
