"""The storage interface the application owns: what it needs of a database, and the
values a store hands back. service.storage implements it (SQLite, PostgreSQL; chosen by
service.storage.factory.open_store).

Both implementations keep the same schema and the same semantics (event-id
de-duplication, one vote per user per product with newer-wins, aggregates updated in
the same transaction, a sequence number on every recorded event, acknowledged only
after commit). A store raises service.domain.errors.StoreError for anything that goes
wrong in the database, with ``fault`` telling whether the storage itself failed (disk,
connection, lock) or one write did; nothing above it sees a driver's exception.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt

from reviewrank.service.domain.values import (
    CatalogueResult,
    CatalogueUpsert,
    Erasure,
    ErasureResult,
    Event,
    ProductRow,
    VoteChange,
    WriteResults,
)

SQLITE = "sqlite"


POSTGRESQL = "postgresql"


_POSTGRES_SCHEMES = ("postgresql", "postgres")


# How a VoteTable codes each vote's kind (as LOAD_VOTES in service/storage/common.py).
VOTE_LIKE, VOTE_RATING, VOTE_SHARE = 0, 1, 2

# The numeric columns of a product row, in that order (ProductTable.from_numbers).
PRODUCT_NUMBERS = (
    "idx", "rating_count", "star_sum", "s1", "s2", "s3", "s4", "s5", "likes", "dislikes", "seq",
    "active", "shares", "listed_at_us", "comments", "sentiment_sum", "sentiment_squares",
    "polls_shown", "polls_won",
)  # fmt: skip


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
    active: npt.NDArray[np.bool_]  # False: delisted by the shop's catalogue
    shares: npt.NDArray[np.int64]  # users who shared each product
    listed_at_us: npt.NDArray[np.int64]  # when each was first seen (ProductRow.listed_at_us)
    comments: npt.NDArray[np.int64]  # users whose comment on each is in force
    sentiment_sum: npt.NDArray[np.int64]  # their scores' sum, in 1/SENTIMENT_SCALE
    sentiment_squares: npt.NDArray[np.int64]  # the sum of their squares
    polls_shown: npt.NDArray[np.int64]  # poll votes in force whose poll showed each
    polls_won: npt.NDArray[np.int64]  # those that chose it
    # idx -> the other categories of the catalogue (ProductRow.more_categories), and idx ->
    # its display fields (ProductRow.display), where any
    more_categories: dict[int, str] = field(default_factory=dict)
    display: dict[int, str] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[Any]], seq: int) -> ProductTable:
        """From rows of PRODUCT_COLUMNS."""
        numbers = np.array([(r[0], *r[3:14], *r[17:24]) for r in rows], dtype=np.int64)
        more = {r[0]: r[15] for r in rows if r[15]}
        display = {r[0]: r[16] for r in rows if r[16]}
        ids, categories = [r[1] for r in rows], [r[2] for r in rows]
        return cls.from_numbers(numbers, ids, categories, seq, more, display)

    @classmethod
    def from_numbers(
        cls,
        numbers: npt.NDArray[np.int64],
        product_ids: list[str],
        categories: list[str],
        seq: int,
        more_categories: dict[int, str] | None = None,
        display: dict[int, str] | None = None,
    ) -> ProductTable:
        """From one row of PRODUCT_NUMBERS per product, and its id and category. The
        columns are views of ``numbers`` (a copy of each doubled the memory a million
        products take at start-up)."""
        numbers = numbers.reshape(-1, len(PRODUCT_NUMBERS))
        return cls(
            idx=numbers[:, 0],
            product_ids=product_ids,
            categories=categories,
            rating_count=numbers[:, 1],
            star_sum=numbers[:, 2],
            histogram=numbers[:, 3:8],
            likes=numbers[:, 8],
            dislikes=numbers[:, 9],
            seq=int(seq),
            row_seq=numbers[:, 10],
            active=numbers[:, 11] != 0,
            shares=numbers[:, 12],
            listed_at_us=numbers[:, 13],
            comments=numbers[:, 14],
            sentiment_sum=numbers[:, 15],
            sentiment_squares=numbers[:, 16],
            polls_shown=numbers[:, 17],
            polls_won=numbers[:, 18],
            more_categories=more_categories or {},
            display=display or {},
        )


@dataclass(frozen=True)
class VoteTable:
    """Every vote in force, as columns: the input of time-decayed sums."""

    product_idx: npt.NDArray[np.int64]
    kind: npt.NDArray[np.int8]  # VOTE_RATING, VOTE_LIKE or VOTE_SHARE
    value: npt.NDArray[np.int64]
    occurred_at_us: npt.NDArray[np.int64]
    channel: npt.NDArray[np.object_]  # a share's channel; "" for ratings and likes

    @classmethod
    def from_rows(
        cls, rows: Sequence[Sequence[int]], shares: Sequence[Sequence[Any]] = ()
    ) -> VoteTable:
        """From rows of (product idx, kind code, value, occurred_at_us) of ratings and
        likes, and of (product idx, occurred_at_us, channel) of shares."""
        table = np.array(rows, dtype=np.int64).reshape(-1, 4)
        shared = np.array([(r[0], r[1]) for r in shares], dtype=np.int64).reshape(-1, 2)
        n = len(shares)
        channel = np.full(table.shape[0] + n, "", dtype=object)
        channel[table.shape[0] :] = [r[2] for r in shares]
        return cls(
            product_idx=np.concatenate([table[:, 0], shared[:, 0]]),
            kind=np.concatenate([table[:, 1], np.full(n, VOTE_SHARE)]).astype(np.int8),
            value=np.concatenate([table[:, 2], np.ones(n, dtype=np.int64)]),
            occurred_at_us=np.concatenate([table[:, 3], shared[:, 1]]),
            channel=channel,
        )

    def subset(self, wanted: npt.NDArray[np.bool_]) -> VoteTable:
        return VoteTable(
            self.product_idx[wanted], self.kind[wanted], self.value[wanted],
            self.occurred_at_us[wanted], self.channel[wanted],
        )  # fmt: skip


@dataclass(frozen=True)
class PollRows:
    """Poll votes in force, one row per product each showed: the vote (a number the rows
    of one vote share, the same for as long as the vote's key has a vote in force), the
    product's idx, and whether it is the one chosen; rows in vote order. Read with the
    ids already turned into idx by the database: no id becomes a Python string.

    ``seq``: the last sequence number the read reflects; ``in_force``: how many poll votes
    were in force then (-1: not counted); ``since``: the rows are only the votes put in
    force after this sequence number (None: every vote in force); ``mark``: the store's
    note of where its next read of the votes put in force since may start (SQLite: the
    largest vote number then), handed back with ``seq``."""

    vote: npt.NDArray[np.int64]
    product_idx: npt.NDArray[np.int64]
    chosen: npt.NDArray[np.bool_]
    seq: int = 0
    in_force: int = -1
    since: int | None = None
    mark: int = 0

    @classmethod
    def from_packed(
        cls, packed: bytes, seq: int = 0, in_force: int = -1, since: int | None = None
    ) -> PollRows:
        """From (vote, idx, chosen) triples of 8-byte big-endian integers, in any order."""
        table = np.frombuffer(packed, dtype=">i8").reshape(-1, 3).astype(np.int64)
        return cls.from_columns(
            table[:, 0], 2 * table[:, 1] + (table[:, 2] != 0), seq, in_force, since
        )

    @classmethod
    def from_columns(
        cls,
        vote: npt.NDArray[np.int64],
        choice: npt.NDArray[np.int64],
        seq: int = 0,
        in_force: int = -1,
        since: int | None = None,
        mark: int = 0,
    ) -> PollRows:
        """From each row's vote and ``2 * idx + chosen``, in any order."""
        if np.any(vote[1:] < vote[:-1]):  # (a range of rowids comes in order)
            order = np.argsort(vote, kind="stable")
            vote, choice = vote[order], choice[order]
        return cls(vote.copy(), choice >> 1, (choice & 1) != 0, seq, in_force, since, mark)

    @property
    def votes(self) -> int:
        """How many votes the rows hold."""
        vote = self.vote
        return int(np.count_nonzero(vote[1:] != vote[:-1])) + 1 if vote.size else 0

    def merged(self, changed: PollRows) -> PollRows:
        """These rows with ``changed``'s votes (those put in force since) in place of
        theirs, or added; with ``changed``'s seq and count. ``changed`` itself when it
        holds every vote (a reader may read them all rather than many new ones)."""
        if changed.since is None:
            return changed
        if not self.vote.size or (changed.vote.size and changed.vote[0] > self.vote[-1]):
            return PollRows(  # votes all new, numbered after these (SQLite's rowids)
                np.concatenate([self.vote, changed.vote]),
                np.concatenate([self.product_idx, changed.product_idx]),
                np.concatenate([self.chosen, changed.chosen]),
                changed.seq,
                changed.in_force,
                mark=changed.mark,
            )
        stale = np.isin(self.vote, changed.vote)
        vote = np.concatenate([self.vote[~stale], changed.vote])
        order = np.argsort(vote, kind="stable")  # (mostly in order already: new votes last)
        idx = np.concatenate([self.product_idx[~stale], changed.product_idx])
        chosen = np.concatenate([self.chosen[~stale], changed.chosen])
        return PollRows(
            vote[order], idx[order], chosen[order], changed.seq, changed.in_force, mark=changed.mark
        )


@dataclass(frozen=True)
class CommentRows:
    """Comments in force of some channels, as columns: each one's product idx, channel
    and score (in 1/SENTIMENT_SCALE): the input of service/app/comment_channels.py."""

    product_idx: npt.NDArray[np.int64]
    channel: npt.NDArray[np.object_]
    score: npt.NDArray[np.int64]

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[Any]]) -> CommentRows:
        """From rows of (product idx, channel, score)."""
        channel = np.empty(len(rows), dtype=object)
        channel[:] = [r[1] for r in rows]
        return cls(
            np.array([r[0] for r in rows], dtype=np.int64),
            channel,
            np.array([r[2] for r in rows], dtype=np.int64),
        )

    def subset(self, wanted: npt.NDArray[np.bool_]) -> CommentRows:
        return CommentRows(self.product_idx[wanted], self.channel[wanted], self.score[wanted])


# A write job: events, a user to forget, or catalogue entries; and what each gives back.
Job = Sequence[Event] | Erasure | CatalogueUpsert
JobResult = WriteResults | ErasureResult | CatalogueResult


# One weights_history row, in the column order of EXPORT_TABLES["weights_history"].
WeightsRow = tuple[int, int, str, str, str, str, str, int | None, str, str]


@dataclass(frozen=True)
class VoteLogRows:
    """Every rating and like in force with its voter: what vote weights are computed
    from (service/app/vote_weights.py). One element per vote; a like's value is +1 or -1
    (a withdrawn like, value 0, is not a vote)."""

    product_idx: npt.NDArray[np.int64]
    user_id: npt.NDArray[np.object_]  # str
    kind: npt.NDArray[np.int8]  # VOTE_RATING or VOTE_LIKE
    value: npt.NDArray[np.int64]  # stars, or +1/-1
    occurred_at_us: npt.NDArray[np.int64]
    # A verified purchase (the shop's verified_purchase): counts in full in a burst. None
    # when built: none is.
    verified: npt.NDArray[np.bool_] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.verified is None:
            object.__setattr__(self, "verified", np.zeros(self.product_idx.size, np.bool_))

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[Any]]) -> VoteLogRows:
        """From rows of (product idx, user id, kind code, value, occurred_at_us, and
        verified as 0 or 1: 0 if left out)."""
        n = len(rows)
        users = np.empty(n, dtype=object)
        users[:] = [row[1] for row in rows]
        numbers = np.array(
            [(r[0], r[2], r[3], r[4], r[5] if len(r) > 5 else 0) for r in rows], np.int64
        ).reshape(-1, 5)
        return cls(
            numbers[:, 0].copy(),
            users,
            numbers[:, 1].astype(np.int8),
            numbers[:, 2].copy(),
            numbers[:, 3].copy(),
            numbers[:, 4] != 0,
        )

    def where(self, keep: npt.NDArray[np.bool_]) -> VoteLogRows:
        """The rows where ``keep`` holds."""
        return VoteLogRows(
            self.product_idx[keep], self.user_id[keep], self.kind[keep], self.value[keep],
            self.occurred_at_us[keep], self.verified[keep],
        )  # fmt: skip


@dataclass(frozen=True)
class BurstDecision:
    """An admin's decision on a burst of votes (issue 23), kept as an audit record: the
    burst as it was listed (its product and the times of its first and last vote),
    confirmed (its votes count in full) or dismissed (they stay damped), by whom, why
    and when."""

    product_id: str
    start_us: int
    end_us: int
    confirmed: bool
    actor: str
    reason: str
    decided_at_us: int


@dataclass(frozen=True)
class AppliedGroup:
    """What one committed transaction did."""

    results: list[JobResult]  # per job: one WriteResult per event, or the job's result
    products: list[ProductRow]  # final state of every product touched
    seq: int  # the last sequence number after the commit
    votes: Sequence[VoteChange] = field(default_factory=list)  # every vote replaced, in order
    seq_before: int = 0  # the last sequence number before this transaction


class Store(Protocol):
    """What the application, the writer thread and the tools need of a database."""

    location: str  # for messages: the file, or the URL without its password
    # (sequence number before, after) of the transaction apply() is committing now or
    # committed last, (0, 0) when none or after one that failed: its rows may be visible
    # to other readers before apply() returns, and before the writer has applied them to
    # the catalogue (the change feed need not read them back: Application._own_commit).
    committing: tuple[int, int]

    def apply(self, jobs: Sequence[Job], now_us: int | None = None) -> AppliedGroup: ...
    def probe(self, min_free_bytes: int = 0) -> None: ...
    def last_seq(self) -> int: ...
    def load_products(self, after_seq: int = 0) -> ProductTable: ...
    def load_votes(
        self, products: Sequence[int] | None = None, shares_only: bool = False
    ) -> VoteTable: ...
    def load_poll_rows(self, after_seq: int | None = None, mark: int = 0) -> PollRows: ...
    def load_comment_rows(
        self, channels: Collection[str], products: Sequence[int] | None = None
    ) -> CommentRows: ...
    def snapshot_problem(
        self, seq: int, idx: npt.NDArray[np.int64], product_ids: Sequence[str]
    ) -> str: ...
    def count_events(self) -> int: ...
    def aggregate_mismatches(self) -> list[str]: ...
    def load_weights_history(self) -> list[WeightsRow]: ...
    def save_weights_entry(self, row: WeightsRow) -> None: ...
    def load_vote_log(self) -> VoteLogRows: ...
    def load_burst_decisions(self) -> list[BurstDecision]: ...
    def save_burst_decision(self, decision: BurstDecision) -> None: ...
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
    def load_votes(
        self, products: Sequence[int] | None = None, shares_only: bool = False
    ) -> VoteTable: ...
    def load_vote_log(self) -> VoteLogRows: ...
    def load_burst_decisions(self) -> list[BurstDecision]: ...
    def load_poll_rows(self, after_seq: int | None = None, mark: int = 0) -> PollRows:
        """Every poll vote in force, a row per product shown (PollRows); or, after
        ``after_seq``, only those put in force by later events (a vote replaced since keeps
        its vote number), with the count of votes in force: what an erasure or an import
        took away shows in the count only. ``mark``: that of the read at ``after_seq``."""

    def load_comment_rows(
        self, channels: Collection[str], products: Sequence[int] | None = None
    ) -> CommentRows:
        """The comments in force from these channels (of these product idx values)."""

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


class SnapshotRecords(Protocol):
    """An embedded store's record of the catalogue snapshot written at a clean shutdown
    (service/app/snapshot.py): its sequence number and digest."""

    def record_snapshot(self, seq: int, digest: int) -> None: ...
    def recorded_snapshot(self) -> tuple[int, int] | None: ...


# Opens the database, checked, running ``meanwhile(store)`` (reads only) while the check
# does; returns the store and why writes are refused ("" if they are not).
StoreOpener = Callable[[Callable[[Store], None] | None], tuple[Store, str]]
