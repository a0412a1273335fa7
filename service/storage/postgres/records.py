"""The small writes beside the events, and their reads: the weights versions
(weights_history), the decisions on bursts of votes (burst_decisions) and the probe's
test write."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import PoolTimeout

from reviewrank.service.app.store import BurstDecision, WeightsRow
from reviewrank.service.domain.errors import StorageProbeFailed
from reviewrank.service.storage.common import (
    BURST_DECISION_COLUMNS,
    burst_decision,
    burst_decision_values,
)
from reviewrank.service.storage.postgres.connection import PostgresBase
from reviewrank.service.storage.tables import EXPORT_TABLES


class PostgresRecords(PostgresBase):
    """Weights history, burst decisions and the probe (part of PostgresStore)."""

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

    def save_burst_decision(self, decision: BurstDecision) -> None:
        """Records one decision on a burst (numbered after the others), committed before
        returning. A retry after a connection lost at the commit records it once: the
        same decision (burst, actor and microsecond) is not inserted twice."""
        values = burst_decision_values(decision)
        same = (decision.product_id, decision.start_us, decision.end_us, decision.actor,
                decision.decided_at_us)  # fmt: skip

        def work(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                conn.execute(_INSERT_BURST_DECISION, (*values, *same))

        self._run("recording the burst decision", work)

    def load_burst_decisions(self) -> list[BurstDecision]:
        """Every recorded decision on a burst, in the order they were made."""
        return self._run("reading the burst decisions", read_burst_decisions)


_INSERT_BURST_DECISION = sql.SQL(
    "INSERT INTO burst_decisions ({}) SELECT {} WHERE NOT EXISTS (SELECT 1 FROM burst_decisions"
    " WHERE product_id = %s AND start_us = %s AND end_us = %s AND actor = %s"
    " AND decided_at_us = %s)"
).format(
    sql.SQL(", ").join(map(sql.Identifier, BURST_DECISION_COLUMNS)),
    sql.SQL(", ").join(sql.Placeholder() * len(BURST_DECISION_COLUMNS)),
)


def read_burst_decisions(conn: psycopg.Connection[Any]) -> list[BurstDecision]:
    """Every recorded decision on a burst, in the order they were made (shared with
    PostgresFollower)."""
    columns = ", ".join(BURST_DECISION_COLUMNS)
    rows = conn.execute(f"SELECT {columns} FROM burst_decisions ORDER BY id")
    return [burst_decision(row) for row in rows]
