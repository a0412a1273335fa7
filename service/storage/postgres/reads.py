"""PostgreSQL reads: the sequence number, the products (in packed pages), the votes and
the vote log (packed) in bulk (shared with PostgresFollower), the snapshot check, counts
and the recount."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from reviewrank.service.app.store import (
    PRODUCT_NUMBERS,
    CommentRows,
    PollRows,
    ProductTable,
    VoteLogRows,
    VoteTable,
)
from reviewrank.service.storage.common import (
    LOAD_COMMENT_CHANNELS,
    LOAD_SHARES,
    LOAD_VOTE_LOG,
    LOAD_VOTES,
    RECOUNT_MISMATCHES_POSTGRES,
)
from reviewrank.service.storage.postgres.connection import PostgresBase


class PostgresReads(PostgresBase):
    """The reads of PostgresStore."""

    # -- reads ------------------------------------------------------------------------------

    def last_seq(self) -> int:
        return self._run("reading the sequence number", read_last_seq)

    def load_products(self, after_seq: int = 0) -> ProductTable:
        return self._run("reading the products", lambda conn: read_products(conn, after_seq))

    def load_votes(
        self, products: Sequence[int] | None = None, shares_only: bool = False
    ) -> VoteTable:
        return self._run("reading the votes", lambda conn: read_votes(conn, products, shares_only))

    def load_vote_log(self) -> VoteLogRows:
        """Every rating and like in force with its voter (cleared likes excluded)."""
        return self._run("reading the vote log", read_vote_log)

    def load_poll_rows(self, after_seq: int | None = None, mark: int = 0) -> PollRows:
        """Every poll vote in force, a row per product shown, or those put in force after
        ``after_seq`` (PollRows). No ``mark``: a vote's number is its key's hash."""
        return self._run("reading the poll votes", lambda conn: read_poll_rows(conn, after_seq))

    def load_comment_rows(
        self, channels: Collection[str], products: Sequence[int] | None = None
    ) -> CommentRows:
        """The comments in force from these channels (of these product idx values)."""
        return self._run(
            "reading the comments", lambda conn: read_comment_rows(conn, channels, products)
        )

    def snapshot_problem(
        self, seq: int, idx: npt.NDArray[np.int64], product_ids: Sequence[str]
    ) -> str:
        """Why a catalogue snapshot taken at ``seq`` does not fit this database ("" if it does)."""
        last = self.last_seq()
        if last < seq:
            return f"the database is at sequence {last}, before the snapshot's {seq}"
        top = int(idx.max()) if idx.size else 0
        step = max(1, idx.size // 64)
        sample = [int(i) for i in idx[::step]]
        expected = dict(zip(sample, product_ids[::step], strict=True))

        def work(conn: psycopg.Connection[Any]) -> str:
            count = conn.execute("SELECT count(*) FROM products WHERE idx <= %s", (top,)).fetchone()
            if count is None or count[0] != idx.size:
                return "the database holds other products"
            rows = conn.execute(
                "SELECT idx, product_id FROM products WHERE idx = ANY(%s)", (sample,)
            )
            found = dict(rows.fetchall())
            for i in sample:
                if found.get(i) != expected[i]:
                    return f"product {i} differs"
            return ""

        return self._run("checking the snapshot", work)

    def count_events(self) -> int:
        def work(conn: psycopg.Connection[Any]) -> int:
            row = conn.execute("SELECT count(*) FROM events").fetchone()
            return int(row[0]) if row else 0

        return self._run("counting events", work)

    def aggregate_mismatches(self) -> list[str]:
        def work(conn: psycopg.Connection[Any]) -> list[str]:
            return sorted(r[0] for r in conn.execute(RECOUNT_MISMATCHES_POSTGRES))

        return self._run("recounting", work)


def read_last_seq(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
    assert row is not None
    return int(row[0])


# Bulk load, a page of rows per query: the numbers packed by the server into one bytea
# (int8send per value, 8 bytes big-endian each) that numpy reads as it is, and the ids
# and categories as two text arrays (decoded by psycopg's C loader). All three
# aggregates consume the same rows in one pass, so they line up; each row carries its
# idx. No Python object is made per row but the strings.
_LOAD_PAGE = f"""
SELECT count(*), max(idx),
    string_agg({" || ".join(f"int8send({c}::int8)" for c in PRODUCT_NUMBERS)}, ''::bytea),
    array_agg(product_id), array_agg(category)
FROM (SELECT * FROM products WHERE seq > %s AND idx > %s ORDER BY idx LIMIT %s) AS page
"""
_PAGE_ROWS = 500_000  # far below PostgreSQL's 1 GB limit on one value


def read_products(conn: psycopg.Connection[Any], after_seq: int) -> ProductTable:
    """One snapshot: the sequence number and the rows changed after ``after_seq``
    (a 1,000,000-product catalogue in about a second)."""
    numbers: list[npt.NDArray[np.int64]] = []
    product_ids: list[str] = []
    categories: list[str] = []
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        seq = read_last_seq(conn)
        last_idx = 0
        with conn.cursor(binary=True) as cur:
            while True:
                row = cur.execute(_LOAD_PAGE, (after_seq, last_idx, _PAGE_ROWS)).fetchone()
                if row is None or not row[0]:
                    break
                count, last_idx, packed, ids, cats = row
                page = np.frombuffer(packed, dtype=">i8").reshape(count, len(PRODUCT_NUMBERS))
                numbers.append(page.astype(np.int64))
                product_ids += ids
                categories += cats
                if count < _PAGE_ROWS:
                    break
        more: dict[int, str] = {}
        display: dict[int, str] = {}
        for idx, others, shown in conn.execute(
            "SELECT idx, more_categories, display FROM products"
            " WHERE seq > %s AND (more_categories <> '' OR display <> '')",
            (after_seq,),
        ):
            if others:
                more[idx] = others
            if shown:
                display[idx] = shown
    table = np.concatenate(numbers) if numbers else np.zeros((0, len(PRODUCT_NUMBERS)), np.int64)
    order = np.argsort(table[:, 0], kind="stable")  # by idx, as the SQLite store returns them
    if not np.array_equal(order, np.arange(order.size)):
        table = table[order]
        product_ids = [product_ids[i] for i in order.tolist()]
        categories = [categories[i] for i in order.tolist()]
    return ProductTable.from_numbers(table, product_ids, categories, seq, more, display)


# The poll votes, a row per product shown, the ids joined to products' idx by the server
# and packed into one bytea of 8-byte big-endian triples (as _LOAD_PAGE). A vote's number
# is a 64-bit hash of its key, the same for as long as the key has a vote in force. With
# the sequence number and the count of votes in force: one statement, one snapshot.
_POLL_ROWS = """
SELECT (SELECT value FROM meta WHERE key = 'seq'), (SELECT count(*) FROM poll_votes),
    (SELECT string_agg(
        int8send({number}) || int8send(p.idx::int8) || int8send((j.value = v.chosen)::int::int8),
        ''::bytea
    )
    FROM {source}
    CROSS JOIN LATERAL json_array_elements_text(v.shown::json) AS j(value)
    JOIN products AS p ON p.product_id = j.value
    {where})
"""
_KEY_HASH = "hashtextextended(v.poll_id || chr(31) || v.user_id, 0)"
_EVERY_POLL_VOTE = _POLL_ROWS.format(number=_KEY_HASH, source="poll_votes AS v", where="")
# Should two keys ever share a hash (about 3e-8 at a million votes), a full read numbers
# the votes one by one instead: right, though not mergeable with later reads (their
# count then disagrees, and PollFitter reads every vote again).
_EVERY_POLL_VOTE_NUMBERED = _POLL_ROWS.format(
    number="v.n",
    source="(SELECT row_number() OVER () AS n, chosen, shown FROM poll_votes) AS v",
    where="",
)
# The votes in force that events after a sequence number put in force (events_seq_brin
# finds the events: their log is written in seq order).
_POLL_CHANGES = _POLL_ROWS.format(
    number=_KEY_HASH,
    source="events AS e JOIN poll_votes AS v ON v.user_id = e.user_id AND v.event_id = e.event_id",
    where="WHERE e.seq > %s AND e.kind = 'poll_vote'",
)


def read_poll_rows(conn: psycopg.Connection[Any], after_seq: int | None = None) -> PollRows:
    """Every poll vote in force, a row per product shown; or those put in force after
    ``after_seq`` (Store.load_poll_rows)."""
    with conn.cursor(binary=True) as cur:
        if after_seq is None:
            rows = _poll_rows(cur.execute(_EVERY_POLL_VOTE).fetchone(), None)
            if rows.votes != rows.in_force:  # two keys of one hash (or a vote lost)
                rows = _poll_rows(cur.execute(_EVERY_POLL_VOTE_NUMBERED).fetchone(), None)
            return rows
        return _poll_rows(cur.execute(_POLL_CHANGES, (after_seq,)).fetchone(), after_seq)


def _poll_rows(row: Any, since: int | None) -> PollRows:
    assert row is not None
    seq, in_force, packed = row
    data = bytes(packed) if packed else b""
    return PollRows.from_packed(data, int(seq), int(in_force), since)


def read_comment_rows(
    conn: psycopg.Connection[Any], channels: Collection[str], products: Sequence[int] | None
) -> CommentRows:
    """The comments in force from these channels (of these products)."""
    names = sorted(channels)
    if not names:
        return CommentRows.from_rows([])
    if products is None:
        sql = LOAD_COMMENT_CHANNELS.format(channels="SELECT unnest(%s::text[])", where="")
        return CommentRows.from_rows(conn.execute(sql, (names,)).fetchall())
    sql = LOAD_COMMENT_CHANNELS.format(
        channels="SELECT unnest(%s::text[])", where="AND p.idx = ANY(%s)"
    )
    return CommentRows.from_rows(conn.execute(sql, (names, [int(p) for p in products])).fetchall())


def read_votes(
    conn: psycopg.Connection[Any], products: Sequence[int] | None, shares_only: bool = False
) -> VoteTable:
    """The votes in force (of these products); only the shares if ``shares_only``."""
    rows: list[Any] = []
    with conn.cursor(binary=True) as cur:
        if products is None:
            if not shares_only:
                rows = cur.execute(LOAD_VOTES.format(where="", also="")).fetchall()
            shares = cur.execute(LOAD_SHARES.format(where="")).fetchall()
        else:
            wanted = [int(p) for p in products]
            sql = LOAD_VOTES.format(where="WHERE p.idx = ANY(%s)", also="AND p.idx = ANY(%s)")
            if not shares_only:
                rows = cur.execute(sql, (wanted, wanted)).fetchall()
            sql = LOAD_SHARES.format(where="WHERE p.idx = ANY(%s)")
            shares = cur.execute(sql, (wanted,)).fetchall()
        return VoteTable.from_rows(rows, shares)


# The vote log in one statement (one snapshot): the numbers of each vote packed by the
# server into one bytea of 8-byte big-endian quadruples (as _LOAD_PAGE; the second is
# the kind times two plus the verified flag), the user ids as
# a text array, both aggregates over the same rows in one pass. 32 bytes a vote: a value
# holds up to 33 million votes (PostgreSQL's limit on one value is 1 GB).
_VOTE_LOG = f"""
SELECT count(*),
    string_agg(
        int8send(idx::int8) || int8send((kind * 2 + verified)::int8) || int8send(value::int8)
            || int8send(occurred_at_us::int8),
        ''::bytea
    ),
    array_agg(user_id)
FROM ({LOAD_VOTE_LOG}) AS v
"""


def read_vote_log(conn: psycopg.Connection[Any]) -> VoteLogRows:
    """Every rating and like in force with its voter (Store.load_vote_log)."""
    with conn.cursor(binary=True) as cur:
        row = cur.execute(_VOTE_LOG).fetchone()
    assert row is not None
    count, packed, users = row
    if not count:
        return VoteLogRows.from_rows([])
    table = np.frombuffer(packed, dtype=">i8").reshape(count, 4)
    user_id = np.empty(count, dtype=object)
    user_id[:] = users
    idx, value, at = (table[:, column].astype(np.int64) for column in (0, 2, 3))
    kind, verified = table[:, 1] >> 1, (table[:, 1] & 1) != 0
    return VoteLogRows(idx, user_id, kind.astype(np.int8), value, at, verified)
