"""The storage interface: what the application needs of a database, and how one is chosen.

Two implementations keep the same schema and the same semantics (event-id
de-duplication, one vote per user per product with newer-wins, aggregates
updated in the same transaction, a sequence number on every recorded event,
acknowledged only after commit):

- :class:`service.storage.sqlite.store.SQLiteStore`, the embedded default (``sqlite:///path``);
- :class:`service.storage.postgres.store.PostgresStore` (``postgresql://…``), for several
  replicas sharing one database.

A store raises :class:`StoreError` for anything that goes wrong in the database,
with ``fault`` telling whether the storage itself failed (disk, connection, lock)
or one write did; nothing above this layer sees a driver's exception.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt

from service.domain.values import (
    Erasure,
    ErasureResult,
    Event,
    EventBatch,
    ProductRow,
    VoteChange,
    WriteResults,
)

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
_POSTGRES_SCHEMES = ("postgresql", "postgres")

# The columns of a product row, in the order ProductRow and the export use.
PRODUCT_COLUMNS = (
    "idx, product_id, category, rating_count, star_sum, s1, s2, s3, s4, s5, likes, dislikes, seq"
)
# The numeric columns of a product row, in that order (ProductTable.from_numbers).
PRODUCT_NUMBERS = (
    "idx", "rating_count", "star_sum", "s1", "s2", "s3", "s4", "s5", "likes", "dislikes", "seq",
)  # fmt: skip
# Tables an export carries, with their columns, in an order that restores cleanly.
EXPORT_TABLES: dict[str, tuple[str, ...]] = {
    "products": tuple(c.strip() for c in PRODUCT_COLUMNS.split(",")),
    "ratings": ("product_id", "user_id", "stars", "occurred_at_us", "event_id"),
    "likes": ("product_id", "user_id", "value", "occurred_at_us", "event_id"),
    "events": (
        "event_id",
        "seq",
        "kind",
        "product_id",
        "user_id",
        "value",
        "occurred_at_us",
        "outcome",
        "recorded_at_us",
    ),
    "erased_events": ("event_hash", "erased_at_us"),
    "weights_history": (
        "version",
        "applied_at_us",
        "source_kind",
        "source",
        "trigger",
        "actor",
        "reason",
        "rollback_of",
        "content_sha256",
        "content",
    ),
}


# Products whose stored aggregates differ from a recount of the votes, and votes of
# unknown products (none, ever). Plain SQL that SQLite and PostgreSQL both run.
RECOUNT_MISMATCHES = """
WITH r AS (
    SELECT product_id, count(*) AS n, sum(stars) AS s,
           sum(CASE WHEN stars = 1 THEN 1 ELSE 0 END) AS s1,
           sum(CASE WHEN stars = 2 THEN 1 ELSE 0 END) AS s2,
           sum(CASE WHEN stars = 3 THEN 1 ELSE 0 END) AS s3,
           sum(CASE WHEN stars = 4 THEN 1 ELSE 0 END) AS s4,
           sum(CASE WHEN stars = 5 THEN 1 ELSE 0 END) AS s5
    FROM ratings GROUP BY product_id),
l AS (
    SELECT product_id, sum(CASE WHEN value = 1 THEN 1 ELSE 0 END) AS likes,
           sum(CASE WHEN value = -1 THEN 1 ELSE 0 END) AS dislikes
    FROM likes GROUP BY product_id)
SELECT p.product_id FROM products p
LEFT JOIN r ON r.product_id = p.product_id
LEFT JOIN l ON l.product_id = p.product_id
WHERE p.rating_count != coalesce(r.n, 0) OR p.star_sum != coalesce(r.s, 0)
   OR p.s1 != coalesce(r.s1, 0) OR p.s2 != coalesce(r.s2, 0)
   OR p.s3 != coalesce(r.s3, 0) OR p.s4 != coalesce(r.s4, 0)
   OR p.s5 != coalesce(r.s5, 0)
   OR p.likes != coalesce(l.likes, 0) OR p.dislikes != coalesce(l.dislikes, 0)
UNION
SELECT product_id FROM ratings WHERE product_id NOT IN (SELECT product_id FROM products)
UNION
SELECT product_id FROM likes WHERE product_id NOT IN (SELECT product_id FROM products)
"""


# Every vote in force with its product's idx (cleared likes excluded): the rows of a
# VoteTable. {where} and {also} narrow it to some products.
LOAD_VOTES = """
SELECT p.idx, 1, r.stars, r.occurred_at_us
FROM ratings r JOIN products p ON p.product_id = r.product_id {where}
UNION ALL
SELECT p.idx, 0, l.value, l.occurred_at_us
FROM likes l JOIN products p ON p.product_id = l.product_id
WHERE l.value <> 0 {also}
"""


class StoreError(Exception):
    """A database operation failed. ``fault``: the storage itself is failing (disk full,
    read-only, I/O, a lock held too long, the connection lost), not one write."""

    def __init__(self, message: str, *, fault: bool) -> None:
        super().__init__(message)
        self.fault = fault


class StorageProbeFailed(Exception):
    """The database cannot take a write now (see the message)."""


def event_hash(event_id: str) -> bytes:
    """What the event log keeps of an erased event: a one-way hash of its id."""
    return hashlib.sha256(event_id.encode("utf-8")).digest()


def product_row(values: Sequence[Any]) -> ProductRow:
    """A ProductRow from the columns of PRODUCT_COLUMNS."""
    return ProductRow(
        idx=values[0],
        product_id=values[1],
        category=values[2],
        rating_count=values[3],
        star_sum=values[4],
        histogram=(values[5], values[6], values[7], values[8], values[9]),
        likes=values[10],
        dislikes=values[11],
        seq=values[12],
    )


@dataclass(frozen=True)
class ProductTable:
    """Product rows as columns (bulk load for the in-memory catalogue)."""

    idx: npt.NDArray[np.int64]
    product_ids: list[str]
    categories: list[str]
    rating_count: npt.NDArray[np.int64]
    star_sum: npt.NDArray[np.int64]
    histogram: npt.NDArray[np.int64]  # shape (n, 5)
    likes: npt.NDArray[np.int64]
    dislikes: npt.NDArray[np.int64]
    seq: int  # the database's last sequence number when read
    row_seq: npt.NDArray[np.int64]  # each row's last change

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[Any]], seq: int) -> ProductTable:
        """From rows of PRODUCT_COLUMNS."""
        numbers = np.array([(r[0], *r[3:13]) for r in rows], dtype=np.int64)
        return cls.from_numbers(numbers, [r[1] for r in rows], [r[2] for r in rows], seq)

    @classmethod
    def from_numbers(
        cls,
        numbers: npt.NDArray[np.int64],
        product_ids: list[str],
        categories: list[str],
        seq: int,
    ) -> ProductTable:
        """From one row of PRODUCT_NUMBERS per product, and its id and category."""
        numbers = numbers.reshape(-1, len(PRODUCT_NUMBERS))
        return cls(
            idx=numbers[:, 0].copy(),
            product_ids=product_ids,
            categories=categories,
            rating_count=numbers[:, 1].copy(),
            star_sum=numbers[:, 2].copy(),
            histogram=numbers[:, 3:8].copy(),
            likes=numbers[:, 8].copy(),
            dislikes=numbers[:, 9].copy(),
            seq=int(seq),
            row_seq=numbers[:, 10].copy(),
        )


@dataclass(frozen=True)
class VoteTable:
    """Every vote in force, as columns: the input of time-decayed sums."""

    product_idx: npt.NDArray[np.int64]
    is_rating: npt.NDArray[np.bool_]
    value: npt.NDArray[np.int64]
    occurred_at_us: npt.NDArray[np.int64]

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[int]]) -> VoteTable:
        """From rows of (product idx, 1 for a rating else 0, value, occurred_at_us)."""
        table = np.array(rows, dtype=np.int64).reshape(-1, 4)
        return cls(
            product_idx=table[:, 0].copy(),
            is_rating=table[:, 1] == 1,
            value=table[:, 2].copy(),
            occurred_at_us=table[:, 3].copy(),
        )


JobResult = WriteResults | ErasureResult
# One weights_history row, in the column order of EXPORT_TABLES["weights_history"].
WeightsRow = tuple[int, int, str, str, str, str, str, int | None, str, str]


@dataclass(frozen=True)
class AppliedGroup:
    """What one committed transaction did."""

    results: list[JobResult]  # per job: one WriteResult per event, or an ErasureResult
    products: list[ProductRow]  # final state of every product touched
    seq: int  # the last sequence number after the commit
    votes: Sequence[VoteChange] = field(default_factory=list)  # every vote replaced, in order
    seq_before: int = 0  # the last sequence number before this transaction


def apply_jobs(
    jobs: Sequence[Sequence[Event] | Erasure],
    seq: int,
    apply_events: Callable[[EventBatch, int], tuple[WriteResults, int]],
    erase: Callable[[str, int], ErasureResult],
) -> tuple[list[JobResult], int]:
    """Runs a group's jobs in order inside a store's transaction: consecutive event jobs in
    one bulk ``apply_events(events, seq)``, each erasure by ``erase(user_id, next seq)``.
    Returns one result per job and the last sequence number taken."""
    results: list[JobResult] = []
    pending: list[Sequence[Event]] = []  # consecutive event jobs, applied together

    def flush() -> None:
        nonlocal seq
        if not pending:
            return
        flat_results, seq = apply_events(EventBatch.concat(pending), seq)
        position = 0
        for job in pending:
            results.append(flat_results[position : position + len(job)])
            position += len(job)
        pending.clear()

    for job in jobs:
        if isinstance(job, Erasure):
            flush()
            erased = erase(job.user_id, seq + 1)
            seq = max(seq, erased.seq)
            results.append(erased)
        else:
            pending.append(job)
    flush()
    return results, seq


class Store(Protocol):
    """What the application, the writer thread and the tools need of a database."""

    location: str  # for messages: the file, or the URL without its password
    # (sequence number before, after) of the transaction apply() is committing now, (0, 0)
    # when none: its rows may be visible to readers before apply() returns.
    committing: tuple[int, int]

    def apply(
        self, jobs: Sequence[Sequence[Event] | Erasure], now_us: int | None = None
    ) -> AppliedGroup: ...
    def probe(self, min_free_bytes: int = 0) -> None: ...
    def last_seq(self) -> int: ...
    def load_products(self, after_seq: int = 0) -> ProductTable: ...
    def load_votes(self, products: Sequence[int] | None = None) -> VoteTable: ...
    def snapshot_problem(
        self, seq: int, idx: npt.NDArray[np.int64], product_ids: Sequence[str]
    ) -> str: ...
    def count_events(self) -> int: ...
    def aggregate_mismatches(self) -> list[str]: ...
    def load_weights_history(self) -> list[WeightsRow]: ...
    def save_weights_entry(self, row: WeightsRow) -> None: ...
    def applied_migrations(self) -> list[str]: ...
    def migrate(self) -> list[str]: ...
    def export(self, chunk: int = 10_000) -> Iterator[tuple[str, list[tuple[Any, ...]]]]: ...
    def restore(self, table: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def finish_restore(self, seq: int) -> None: ...
    def abort_restore(self) -> None: ...
    def follower(self) -> Follower: ...
    def close(self) -> None: ...


class Follower(Protocol):
    """A reader of the change feed, on a connection of its own (service/app/feed.py)."""

    def wait(self, timeout: float) -> None:
        """Returns after ``timeout`` seconds, or sooner when the database says it changed
        (or wake() is called)."""

    def wake(self) -> None: ...

    def last_seq(self) -> int: ...
    def load_products(self, after_seq: int = 0) -> ProductTable: ...
    def load_votes(self, products: Sequence[int] | None = None) -> VoteTable: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class DatabaseURL:
    """A parsed database URL: ``sqlite:///relative/path``, ``sqlite:////absolute/path``,
    or ``postgresql://user:password@host:port/dbname?options``."""

    kind: str  # SQLITE or POSTGRESQL
    url: str
    path: Path | None = None  # SQLite only

    @classmethod
    def parse(cls, url: str) -> DatabaseURL:
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == SQLITE:
            rest = url[len("sqlite:") :]
            if not rest.startswith("///") or len(rest) == 3:
                raise ValueError(f"{url!r}: want sqlite:///relative/path or sqlite:////abs/path")
            return cls(SQLITE, url, Path(rest[3:]))
        if scheme in _POSTGRES_SCHEMES:
            if not urlsplit(url).path.strip("/"):
                raise ValueError(f"{url!r}: name the database, postgresql://host:port/dbname")
            return cls(POSTGRESQL, url)
        raise ValueError(f"{url!r}: the database URL must start with sqlite:/// or postgresql://")

    @classmethod
    def for_path(cls, path: Path) -> DatabaseURL:
        return cls(SQLITE, f"sqlite:///{path}", path)

    @property
    def display(self) -> str:
        """The URL without a password (for logs and messages)."""
        if self.path is not None:
            return str(self.path)
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return parts._replace(netloc=netloc).geturl()


def open_store(
    database: DatabaseURL,
    *,
    synchronous: str = "FULL",
    busy_timeout_ms: int = 5000,
    migrate: bool = True,
) -> Store:
    """Opens (and, with ``migrate``, creates or upgrades) the database the URL names."""
    if database.kind == SQLITE:
        from service.storage.sqlite.store import SQLiteStore

        assert database.path is not None
        return SQLiteStore(
            database.path,
            synchronous=synchronous,
            busy_timeout_ms=busy_timeout_ms,
            migrate=migrate,
        )
    from service.storage.postgres.store import PostgresStore

    return PostgresStore(database.url, busy_timeout_ms=busy_timeout_ms, migrate=migrate)
