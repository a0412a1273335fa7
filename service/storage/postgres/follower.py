"""The PostgreSQL change feed's reader (PostgresFollower): LISTEN on a connection of its
own, and polling while it is lost."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

import psycopg

from reviewrank.service.app.store import (
    BurstDecision,
    CommentRows,
    PollRows,
    ProductTable,
    VoteLogRows,
    VoteTable,
)
from reviewrank.service.domain.errors import StoreError
from reviewrank.service.storage.postgres.connection import CHANNEL, T
from reviewrank.service.storage.postgres.reads import (
    read_comment_rows,
    read_last_seq,
    read_poll_rows,
    read_products,
    read_vote_log,
    read_votes,
)
from reviewrank.service.storage.postgres.records import read_burst_decisions


class PostgresFollower:
    """The change feed's reader: one connection that LISTENs and reads; if it is lost,
    the feed polls on a new one until it is back."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: psycopg.Connection[Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is not None and conn.broken:
            with contextlib.suppress(psycopg.Error):
                conn.close()
            conn = self._conn = None
        if conn is None:
            try:
                conn = psycopg.connect(
                    self._url,
                    autocommit=True,
                    connect_timeout=5,
                    application_name="reviewrank-feed",
                )
                conn.execute(f"LISTEN {CHANNEL}")
            except psycopg.Error as exc:
                raise StoreError(f"change feed connection: {exc}", fault=True) from exc
            self._conn = conn
        return conn

    def wait(self, timeout: float) -> None:
        """Until a commit is notified, or ``timeout`` seconds pass."""
        try:
            conn = self._connection()
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                pass
        except (psycopg.Error, StoreError):
            time.sleep(timeout)  # polling, until the connection is back

    def wake(self) -> None:
        """Nothing to do: a wait lasts one poll interval at most."""

    def _read(self, action: str, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        try:
            return work(self._connection())
        except psycopg.Error as exc:
            raise StoreError(f"{action}: {exc}", fault=True) from exc

    def last_seq(self) -> int:
        return self._read("reading the sequence number", read_last_seq)

    def load_products(self, after_seq: int = 0) -> ProductTable:
        return self._read("reading the products", lambda conn: read_products(conn, after_seq))

    def load_votes(
        self, products: Sequence[int] | None = None, shares_only: bool = False
    ) -> VoteTable:
        return self._read("reading the votes", lambda conn: read_votes(conn, products, shares_only))

    def load_vote_log(self) -> VoteLogRows:
        return self._read("reading the vote log", read_vote_log)

    def load_burst_decisions(self) -> list[BurstDecision]:
        return self._read("reading the burst decisions", read_burst_decisions)

    def load_comment_rows(
        self, channels: Collection[str], products: Sequence[int] | None = None
    ) -> CommentRows:
        return self._read(
            "reading the comments", lambda conn: read_comment_rows(conn, channels, products)
        )

    def load_poll_rows(self, after_seq: int | None = None, mark: int = 0) -> PollRows:
        return self._read("reading the poll votes", lambda conn: read_poll_rows(conn, after_seq))

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
