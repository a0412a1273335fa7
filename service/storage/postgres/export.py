"""PostgresStore's half of ``reviewrank export`` and ``import`` (service/storage/transfer.py):
one REPEATABLE READ snapshot streamed out, rows copied in (COPY) in one transaction that
commits only if the aggregates equal a recount."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import sql

from reviewrank.service.domain.errors import StoreError
from reviewrank.service.storage.common import (
    RECOUNT_MISMATCHES_POSTGRES,
    check_recount,
    fill_listing_times,
)
from reviewrank.service.storage.postgres.connection import CHANNEL, PostgresBase, is_retryable
from reviewrank.service.storage.postgres.reads import read_last_seq
from reviewrank.service.storage.tables import EXPORT_TABLES


class PostgresExport(PostgresBase):
    """Export and restore (part of PostgresStore)."""

    # -- export and import ------------------------------------------------------------------

    def export(self, chunk: int = 10_000) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        """As SQLiteStore.export: one REPEATABLE READ snapshot, streamed by a server cursor."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                yield "seq", [(read_last_seq(conn),)]
                for table, names in EXPORT_TABLES.items():
                    with conn.cursor(name=f"export_{table}") as cur:
                        cur.execute(f"SELECT {', '.join(names)} FROM {table} ORDER BY 1")
                        while rows := cur.fetchmany(chunk):
                            yield table, [_plain(r) for r in rows]
        except psycopg.Error as exc:
            raise StoreError(f"exporting: {exc}", fault=is_retryable(exc)) from exc

    def restore(self, table: str, rows: Sequence[Sequence[Any]]) -> None:
        """Copies exported rows in (COPY), in a transaction that finish_restore commits."""
        columns = EXPORT_TABLES[table]
        try:
            conn = self._restore_connection()
            with conn.cursor() as cur:
                if table == "weights_history":  # the target's own versions are kept
                    existing = {r[0] for r in cur.execute("SELECT version FROM weights_history")}
                    rows = [r for r in rows if r[0] not in existing]
                copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
                    sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
                )
                with cur.copy(copy_sql) as copy:
                    for row in rows:
                        copy.write_row(row)
        except psycopg.Error as exc:
            self._abandon_restore()
            raise StoreError(f"importing {table}: {exc}", fault=is_retryable(exc)) from exc

    def finish_restore(self, seq: int) -> None:
        try:
            conn = self._restore_connection()
            conn.execute("UPDATE meta SET value = %s WHERE key = 'seq'", (seq,))
            for statement in fill_listing_times(time.time_ns() // 1000):
                conn.execute(statement)
            check_recount(conn.execute(RECOUNT_MISMATCHES_POSTGRES).fetchall())
            conn.execute(_NUMBER_BURST_DECISIONS_ON)
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(seq)))
            conn.execute("COMMIT")
            self._pool.putconn(conn)
            self._restoring = None
        except psycopg.Error as exc:
            self._abandon_restore()
            raise StoreError(f"finishing the import: {exc}", fault=is_retryable(exc)) from exc
        except BaseException:
            self._abandon_restore()
            raise

    def _restore_connection(self) -> psycopg.Connection[Any]:
        """The connection of the import under way, in its open transaction."""
        if self._restoring is None:
            conn = self._pool.getconn()
            try:
                conn.execute("BEGIN")
            except BaseException:
                self._pool.putconn(conn)
                raise
            self._restoring = conn
        return self._restoring

    def abort_restore(self) -> None:
        """Rolls back what restore() copied in (an import that failed before finish_restore)."""
        self._abandon_restore()

    def _abandon_restore(self) -> None:
        conn, self._restoring = self._restoring, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.execute("ROLLBACK")
            self._pool.putconn(conn)


# Burst decisions copied in keep their numbers, which the identity did not hand out: the
# next one made takes a number after them (SQLite's AUTOINCREMENT does so by itself).
_NUMBER_BURST_DECISIONS_ON = (
    "SELECT setval(pg_get_serial_sequence('burst_decisions', 'id'), coalesce(max(id), 0) + 1,"
    " false) FROM burst_decisions"
)


def _plain(row: Sequence[Any]) -> tuple[Any, ...]:
    """bytea arrives as memoryview or bytes: always bytes."""
    return tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
