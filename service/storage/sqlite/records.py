"""The small writes beside the events, and their reads: the catalogue snapshot's record
(meta), the weights versions (weights_history), the decisions on bursts of votes
(burst_decisions), and the probe's test write."""

from __future__ import annotations

import os
import sqlite3
import time

from reviewrank.service.app.store import BurstDecision, WeightsRow
from reviewrank.service.domain.errors import StorageProbeFailed
from reviewrank.service.storage.common import (
    BURST_DECISION_COLUMNS,
    burst_decision,
    burst_decision_values,
)
from reviewrank.service.storage.sqlite.connection import (
    SQLiteBase,
    rollback_quietly,
    translated_errors,
)
from reviewrank.service.storage.tables import EXPORT_TABLES


class SQLiteRecords(SQLiteBase):
    """Snapshot records, weights history, burst decisions and the probe (part of SQLiteStore)."""

    def record_snapshot(self, seq: int, digest: int) -> None:
        """Keeps the catalogue snapshot's sequence number and digest (service/app/snapshot.py)."""
        self._writable()
        with translated_errors("recording the catalogue snapshot"):
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                self.conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (("snapshot_seq", seq), ("snapshot_digest", digest)),
                )
                self.conn.execute("COMMIT")
            except BaseException:
                rollback_quietly(self.conn)
                raise

    def recorded_snapshot(self) -> tuple[int, int] | None:
        """(sequence number, digest) of the last snapshot written, None if none was."""
        with translated_errors("reading the snapshot record"):
            rows = dict(
                self.conn.execute(
                    "SELECT key, value FROM meta WHERE key IN ('snapshot_seq', 'snapshot_digest')"
                ).fetchall()
            )
        if len(rows) != 2:
            return None
        return int(rows["snapshot_seq"]), int(rows["snapshot_digest"])

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
            rollback_quietly(conn)
            raise StorageProbeFailed(f"test write failed: {exc}") from exc

    def save_weights_entry(self, row: WeightsRow) -> None:
        """Records one weights version, committed before returning."""
        conn = self.conn
        self._writable()
        columns = EXPORT_TABLES["weights_history"]
        with translated_errors("recording the weights"):
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    f"INSERT INTO weights_history ({', '.join(columns)})"
                    f" VALUES ({', '.join('?' * len(columns))})",
                    row,
                )
                conn.execute("COMMIT")
            except BaseException:
                rollback_quietly(conn)
                raise

    def load_weights_history(self) -> list[WeightsRow]:
        """Every recorded weights version, oldest first."""
        columns = ", ".join(EXPORT_TABLES["weights_history"])
        with translated_errors("reading the weights history"):
            rows = self.conn.execute(f"SELECT {columns} FROM weights_history ORDER BY version")
            return [tuple(row) for row in rows]

    def save_burst_decision(self, decision: BurstDecision) -> None:
        """Records one decision on a burst (numbered after the others), committed before
        returning."""
        conn = self.conn
        self._writable()
        with translated_errors("recording the burst decision"):
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(_INSERT_BURST_DECISION, burst_decision_values(decision))
                conn.execute("COMMIT")
            except BaseException:
                rollback_quietly(conn)
                raise

    def load_burst_decisions(self) -> list[BurstDecision]:
        """Every recorded decision on a burst, in the order they were made."""
        with translated_errors("reading the burst decisions"):
            return read_burst_decisions(self.conn)


_INSERT_BURST_DECISION = (
    f"INSERT INTO burst_decisions ({', '.join(BURST_DECISION_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(BURST_DECISION_COLUMNS))})"
)


def read_burst_decisions(conn: sqlite3.Connection) -> list[BurstDecision]:
    """Every recorded decision on a burst, in the order they were made (shared with
    SQLiteFollower)."""
    columns = ", ".join(BURST_DECISION_COLUMNS)
    rows = conn.execute(f"SELECT {columns} FROM burst_decisions ORDER BY id")
    return [burst_decision(row) for row in rows]
