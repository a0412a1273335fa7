"""The small writes beside the events, and their reads: the weights versions
(weights_history) and the probe's test write."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import PoolTimeout

from reviewrank.service.app.store import WeightsRow
from reviewrank.service.domain.errors import StorageProbeFailed
from reviewrank.service.storage.postgres.connection import PostgresBase
from reviewrank.service.storage.tables import EXPORT_TABLES


class PostgresRecords(PostgresBase):
    """Weights history and the probe (part of PostgresStore)."""

    def probe(self, min_free_bytes: int = 0) -> None:
        """Raises StorageProbeFailed unless a small write transaction commits (the free
        space is the database server's to watch)."""

        def work(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('probe', %s)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (time.time_ns() // 1000,),
                )

        try:
            with self._pool.connection(timeout=self._busy_timeout_ms / 1000) as conn:
                work(conn)
        except (psycopg.Error, PoolTimeout) as exc:
            raise StorageProbeFailed(f"test write failed: {exc}") from exc

    def save_weights_entry(self, row: WeightsRow) -> None:
        columns = EXPORT_TABLES["weights_history"]
        query = sql.SQL("INSERT INTO weights_history ({}) VALUES ({})").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        )

        def work(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                conn.execute(query, row)

        self._run("recording the weights", work)

    def load_weights_history(self) -> list[WeightsRow]:
        columns = ", ".join(EXPORT_TABLES["weights_history"])

        def work(conn: psycopg.Connection[Any]) -> list[WeightsRow]:
            rows = conn.execute(f"SELECT {columns} FROM weights_history ORDER BY version")
            return [tuple(r) for r in rows]

        return self._run("reading the weights history", work)
