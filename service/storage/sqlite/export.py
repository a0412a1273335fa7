"""SQLiteStore's half of ``reviewrank export`` and ``import`` (service/storage/transfer.py):
every table read in one transaction, and rows restored in one that commits only if the
aggregates equal a recount."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from reviewrank.service.storage.common import (
    RECOUNT_MISMATCHES_SQLITE,
    check_recount,
    fill_listing_times,
)
from reviewrank.service.storage.sqlite.connection import (
    SQLiteBase,
    rollback_quietly,
    translated_errors,
)
from reviewrank.service.storage.sqlite.reads import read_last_seq
from reviewrank.service.storage.tables import EXPORT_TABLES, VOTE_TABLES


class SQLiteExport(SQLiteBase):
    """Export and restore (part of SQLiteStore)."""

    def export(self, chunk: int = 10_000) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        """("seq", [(last sequence number,)]), then the rows of each table of EXPORT_TABLES
        in chunks: all read in one transaction, so a consistent copy of a live database."""
        conn = self.conn
        with translated_errors("exporting"):
            conn.execute("BEGIN")
            try:
                yield "seq", [(read_last_seq(conn),)]
                for table, names in EXPORT_TABLES.items():
                    # Votes in the order of their unique index (no index by product, m005).
                    order = f"user_id, {names[0]}" if table in VOTE_TABLES else "1"
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
        with translated_errors(f"importing {table}"):
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
        with translated_errors("finishing the import"):
            if not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (seq,))
                for statement in fill_listing_times(time.time_ns() // 1000):
                    conn.execute(statement)
                check_recount(conn.execute(RECOUNT_MISMATCHES_SQLITE).fetchall())
                conn.execute("COMMIT")
            except BaseException:
                rollback_quietly(conn)
                raise

    def abort_restore(self) -> None:
        """Rolls back what restore() inserted (an import that failed before finish_restore)."""
        rollback_quietly(self.conn)
