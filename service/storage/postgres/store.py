"""PostgreSQL storage: the same schema and semantics as service/storage/sqlite/store.py, shared by
many replicas (psycopg 3 with a connection pool).

Writers from every replica serialise on the row ``meta.seq`` (``SELECT … FOR UPDATE`` is
the first statement of each write transaction), so sequence numbers are taken without
gaps and committed in order: a reader that sees sequence ``n`` sees every change up to
``n``, which is what the change feed relies on. The rules themselves (duplicates,
newer wins, deltas) are decided in service/domain/voting.py; here they become set-based
statements over ``unnest`` arrays, a fixed number per transaction whatever its size.

A commit notifies the channel ``reviewrank_changes`` with its sequence number; each
replica's follower LISTENs on its own connection and polls as well, in case a
notification is lost with a connection.

Serialization failures, deadlocks, lock timeouts and lost connections roll the
transaction back and run it again (up to a few times, with backoff). That is safe
because events carry ids: if a lost connection hid a commit that did happen, the
events of the retry come back DUPLICATE, and the change feed brings the committed
rows into memory.

PostgresStore is composed of one part a module: schema.py (migrations), writes.py (apply,
erasure), records.py (weights history, probe), reads.py, export.py (export and
restore); connection.py holds what they share (the retry loop), follower.py the change
feed's reader. Here: opening and closing the pool.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from reviewrank.service.app.store import DatabaseURL
from reviewrank.service.domain.errors import StoreError
from reviewrank.service.storage.postgres.export import PostgresExport
from reviewrank.service.storage.postgres.follower import PostgresFollower
from reviewrank.service.storage.postgres.reads import PostgresReads
from reviewrank.service.storage.postgres.records import PostgresRecords
from reviewrank.service.storage.postgres.schema import PostgresSchema
from reviewrank.service.storage.postgres.writes import PostgresWrites


class PostgresStore(PostgresSchema, PostgresWrites, PostgresRecords, PostgresReads, PostgresExport):
    """The PostgreSQL database behind one replica. apply() is called by one writer thread;
    the pool lets the feed, probes and tools use connections of their own."""

    def __init__(
        self,
        url: str,
        busy_timeout_ms: int = 5000,
        migrate: bool = True,
        pool_size: int = 4,
        connect_timeout_seconds: float = 10.0,
    ) -> None:
        self.url = url
        self.location = DatabaseURL.parse(url).display
        self.committing = (0, 0)
        self._restoring: psycopg.Connection[Any] | None = None  # an import's transaction
        self._busy_timeout_ms = int(busy_timeout_ms)
        # Waits for another replica's write transaction are bounded like SQLite's busy timeout.
        options = (
            f"-c lock_timeout={self._busy_timeout_ms} -c idle_in_transaction_session_timeout=60000"
        )
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "options": options, "application_name": "reviewrank"},
            timeout=connect_timeout_seconds,
            open=False,
            name="reviewrank",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout_seconds)
        except PoolTimeout as exc:
            self._pool.close()
            raise StoreError(
                f"cannot connect to {self.location} within {connect_timeout_seconds:g} s",
                fault=True,
            ) from exc
        try:
            if migrate:
                self.migrate()
        except BaseException:
            self._pool.close()
            raise

    def close(self) -> None:
        self._pool.close()

    def follower(self) -> PostgresFollower:
        return PostgresFollower(self.url)
