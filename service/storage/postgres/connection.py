"""What every part of PostgresStore shares: its state (PostgresBase: the pool), the
retry loop every transaction runs in, and which errors are worth a retry."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from reviewrank.service.domain.errors import StoreError

T = TypeVar("T")

CHANNEL = "reviewrank_changes"
_ATTEMPTS = 5  # tries of one transaction before the storage is reported failing
_BACKOFF_SECONDS = 0.02


def is_retryable(error: psycopg.Error) -> bool:
    """Worth running the transaction again: serialization failure, deadlock, lock
    timeout, a lost or refused connection, the server shutting down or starting."""
    return isinstance(error, psycopg.OperationalError)


class PostgresBase:
    """The state the parts of PostgresStore (schema, writes, records, reads, export) work
    on; PostgresStore.__init__ sets it."""

    url: str
    location: str
    committing: tuple[int, int]
    _restoring: psycopg.Connection[Any] | None
    _busy_timeout_ms: int
    _pool: ConnectionPool

    # -- the retry loop ---------------------------------------------------------------------

    def _run(self, action: str, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Runs ``work`` on a pooled connection, again after a retryable failure (it must
        do everything in one transaction). Anything else, or the last failure, is raised
        as StoreError."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self._pool.connection() as conn:
                    return work(conn)
            except psycopg.Error as exc:
                if not is_retryable(exc):
                    raise StoreError(f"{action}: {exc}", fault=False) from exc
                if attempt == _ATTEMPTS:
                    raise StoreError(f"{action}: {exc}", fault=True) from exc
            except PoolTimeout as exc:
                if attempt == _ATTEMPTS:
                    raise StoreError(
                        f"{action}: no database connection: {exc}", fault=True
                    ) from exc
            time.sleep(_BACKOFF_SECONDS * 2 ** (attempt - 1) * (0.5 + random.random()))
        raise AssertionError("unreachable")
