"""What every part of SQLiteStore shares: the connection's state (SQLiteBase), the
translation of SQLite's errors into StoreError (which of them are storage faults),
rollback, and switching a database to WAL."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import sqlite_utils

from reviewrank.service.domain.errors import StoreError
from reviewrank.service.domain.values import ProductRow
from reviewrank.service.storage.common import product_row
from reviewrank.service.storage.tables import PRODUCT_COLUMNS

CHUNK_ROWS = 400  # bound parameters per IN (...) list, well under SQLite's limit

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


def rollback_quietly(conn: sqlite3.Connection) -> None:
    """Rolls back an open transaction, keeping the caller's error if the rollback fails too
    (after a failed COMMIT SQLite may already have rolled back)."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


@contextlib.contextmanager
def translated_errors(action: str) -> Iterator[None]:
    """Re-raises SQLite's errors as StoreError (fault or not), naming the action."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(f"{action}: {exc}", fault=is_storage_fault(exc)) from exc


def enable_wal(conn: sqlite3.Connection, busy_timeout_ms: int) -> str:
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


class SQLiteBase:
    """The state the parts of SQLiteStore (schema, writes, records, reads, export) work
    on; SQLiteStore.__init__ sets it."""

    path: Path
    location: str
    conn: sqlite3.Connection
    db: sqlite_utils.Database
    synchronous: str
    busy_timeout_ms: int
    committing: tuple[int, int]
    writes_refused: str
    _write_cache: bool
    _rows: dict[str, ProductRow]
    _data_version: int | None

    def _writable(self) -> None:
        if self.writes_refused:
            raise StoreError(f"writes refused: {self.writes_refused}", fault=False)

    def _product_rows(
        self, product_ids: Iterable[str], touched: dict[str, ProductRow]
    ) -> dict[str, ProductRow | None]:
        """Each product's row as it is in this transaction: written in it (``touched``),
        kept from an earlier one, or else read (None: no such product)."""
        current = {p: touched.get(p) or self._rows.get(p) for p in product_ids}
        unknown = [p for p, row in current.items() if row is None]
        for start in range(0, len(unknown), CHUNK_ROWS):
            chunk = unknown[start : start + CHUNK_ROWS]
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                f"SELECT {PRODUCT_COLUMNS} FROM products WHERE product_id IN ({marks})", chunk
            )
            current.update((row[1], product_row(row)) for row in rows)
        return current

    def _forget_rows(self) -> None:
        """Drops the cached product rows (after a failed or outside write)."""
        self._rows.clear()
        self._data_version = None


# A bulk.py template inserting product rows (the values of PRODUCT_COLUMNS).
NEW_PRODUCTS = f"INSERT INTO products ({PRODUCT_COLUMNS}) VALUES {{values}}"


def largest_idx(conn: sqlite3.Connection) -> int:
    """The largest idx of a product (0 for none): new ones are numbered on from it."""
    return int(conn.execute("SELECT coalesce(max(idx), 0) FROM products").fetchone()[0])
