"""SQLite reads: the sequence number, the products, the votes and the vote log in bulk
(shared with SQLiteFollower), the snapshot check, counts and the recount."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

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
    LOAD_VOTES,
    RECOUNT_MISMATCHES_SQLITE,
    VOTE_LOG,
)
from reviewrank.service.storage.sqlite.connection import CHUNK_ROWS, SQLiteBase, translated_errors
from reviewrank.service.storage.tables import PRODUCT_COLUMNS


class SQLiteReads(SQLiteBase):
    """The reads of SQLiteStore."""

    def last_seq(self) -> int:
        with translated_errors("reading the sequence number"):
            return read_last_seq(self.conn)

    def load_products(self, after_seq: int = 0) -> ProductTable:
        """Every product row changed after ``after_seq`` (all of them for 0), in one read."""
        with translated_errors("reading the products"):
            return read_products(self.conn, after_seq)

    def load_votes(
        self, products: Sequence[int] | None = None, shares_only: bool = False
    ) -> VoteTable:
        """Every vote in force with its product's idx (cleared likes excluded);
        only those of the given product idx values when ``products`` is given."""
        with translated_errors("reading the votes"):
            return read_votes(self.conn, products, shares_only)

    def load_vote_log(self) -> VoteLogRows:
        """Every rating and like in force with its voter (cleared likes excluded)."""
        with translated_errors("reading the vote log"):
            return read_vote_log(self.conn)

    def load_poll_rows(self, after_seq: int | None = None, mark: int = 0) -> PollRows:
        """Every poll vote in force, a row per product shown, or those put in force after
        ``after_seq`` (PollRows)."""
        with translated_errors("reading the poll votes"):
            return read_poll_rows(self.conn, after_seq, mark)

    def load_comment_rows(
        self, channels: Collection[str], products: Sequence[int] | None = None
    ) -> CommentRows:
        """The comments in force from these channels (of these product idx values)."""
        with translated_errors("reading the comments"):
            return read_comment_rows(self.conn, channels, products)

    def snapshot_problem(
        self, seq: int, idx: npt.NDArray[np.int64], product_ids: Sequence[str]
    ) -> str:
        """Why a catalogue snapshot taken at ``seq`` does not fit this database ("" if it
        does): the database must be at or past ``seq`` and hold the same products."""
        last = self.last_seq()
        if last < seq:
            return f"the database is at sequence {last}, before the snapshot's {seq}"
        top = int(idx.max()) if idx.size else 0
        with translated_errors("checking the snapshot"):
            count = self.conn.execute("SELECT count(*) FROM products WHERE idx <= ?", (top,))
            if count.fetchone()[0] != idx.size:
                return "the database holds other products"
            step = max(1, idx.size // 64)
            for i in range(0, idx.size, step):
                row = self.conn.execute(
                    "SELECT product_id FROM products WHERE idx = ?", (int(idx[i]),)
                ).fetchone()
                if row is None or row[0] != product_ids[i]:
                    return f"product {int(idx[i])} differs"
        return ""

    def count_events(self) -> int:
        with translated_errors("counting events"):
            return int(self.conn.execute("SELECT count(*) FROM events").fetchone()[0])

    def aggregate_mismatches(self) -> list[str]:
        """Products whose stored aggregates differ from a recount of the votes (should be none)."""
        with translated_errors("recounting"):
            recount = self.conn.execute(RECOUNT_MISMATCHES_SQLITE).fetchall()
        return sorted(r[0] for r in recount)


def read_last_seq(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0])


def read_products(conn: sqlite3.Connection, after_seq: int) -> ProductTable:
    conn.execute("BEGIN")
    try:
        seq = read_last_seq(conn)
        if not after_seq:
            return _every_product(conn, seq)
        # The rows changed since: found by the index on seq (ORDER BY idx with a filter on
        # seq would scan every row, even for a few: a million per poll of the change feed).
        rows = conn.execute(
            f"SELECT {PRODUCT_COLUMNS} FROM products WHERE seq > ?", (after_seq,)
        ).fetchall()
    finally:
        conn.execute("COMMIT")
    return ProductTable.from_rows(rows, seq)


# A page of products by idx: their numbers packed by SQLite as hexadecimal (one string,
# decoded at once by numpy), their ids and categories as JSON arrays. Row by row, a
# million products took 3.7 s and 450 MB of Python objects at start-up; this way ~1 s.
_PAGE = f"""
SELECT count(*), max(idx),
    group_concat(printf('{"%016x" * len(PRODUCT_NUMBERS)}', {", ".join(PRODUCT_NUMBERS)}), ''),
    json_group_array(product_id), json_group_array(category)
FROM (SELECT * FROM products WHERE idx > ? ORDER BY idx LIMIT ?)
"""
_PAGE_ROWS = 100_000


def _every_product(conn: sqlite3.Connection, seq: int) -> ProductTable:
    """Every product row, a page at a time (in the caller's read transaction)."""
    rows = int(conn.execute("SELECT count(*) FROM products").fetchone()[0])
    numbers = np.empty((rows, len(PRODUCT_NUMBERS)), dtype=np.int64)
    product_ids: list[str] = []
    categories: list[str] = []
    names: dict[str, str] = {}  # one string per category, not one per product
    done = last = 0
    while done < rows:
        count, top, packed, ids, cats = conn.execute(_PAGE, (last, _PAGE_ROWS)).fetchone()
        if not count:
            break
        page = np.frombuffer(bytes.fromhex(packed), dtype=">i8")
        numbers[done : done + count] = page.reshape(count, len(PRODUCT_NUMBERS))
        product_ids += json.loads(ids)
        categories += [names.setdefault(c, c) for c in json.loads(cats)]
        done += count
        last = top
    more: dict[int, str] = {}
    display: dict[int, str] = {}
    for idx, others, shown in conn.execute(
        "SELECT idx, more_categories, display FROM products"
        " WHERE more_categories <> '' OR display <> ''"
    ):
        if others:
            more[idx] = others
        if shown:
            display[idx] = shown
    return ProductTable.from_numbers(numbers[:done], product_ids, categories, seq, more, display)


def read_votes(
    conn: sqlite3.Connection, products: Sequence[int] | None, shares_only: bool = False
) -> VoteTable:
    """The votes in force (of these products); only the shares if ``shares_only``."""
    if products is None:
        rows = [] if shares_only else conn.execute(LOAD_VOTES.format(where="", also="")).fetchall()
        shares = conn.execute(LOAD_SHARES.format(where="")).fetchall()
    else:
        rows, shares = [], []
        wanted = list(products)
        for start in range(0, len(wanted), CHUNK_ROWS):
            chunk = wanted[start : start + CHUNK_ROWS]
            marks = ",".join("?" * len(chunk))
            where = f"WHERE p.idx IN ({marks})"
            sql = LOAD_VOTES.format(where=where, also=f"AND p.idx IN ({marks})")
            if not shares_only:
                rows += conn.execute(sql, (*chunk, *chunk)).fetchall()
            shares += conn.execute(LOAD_SHARES.format(where=where), chunk).fetchall()
    return VoteTable.from_rows(rows, shares)


# A page of a vote table's part of the vote log (VOTE_LOG's rows of a range of rowids):
# its numbers as lists of decimals SQLite writes out, a list a column, and the user ids
# as a JSON array, all consumed in one pass (so they line up). SQLite does the join and
# the writing without Python's lock: a million votes read in about 1 s, three quarters
# of it without the lock, against 1.7 s row by row (as LOAD_VOTES is read) and 1.4 s
# packed as hexadecimal (_PAGE's way).
_VOTE_LOG_PAGE = """
SELECT count(*), max(kind), group_concat(idx, ','), group_concat(value, ','),
    group_concat(occurred_at_us, ','), group_concat(verified, ','), json_group_array(user_id)
FROM ({rows})
"""
_VOTE_LOG_PAGES = {
    table: _VOTE_LOG_PAGE.format(rows=rows.format(where="v.rowid > ? AND v.rowid <= ?"))
    for table, rows in VOTE_LOG.items()
}
_VOTE_LOG_PAGE_ROWS = 100_000  # rowids a query


def read_vote_log(conn: sqlite3.Connection) -> VoteLogRows:
    """Every rating and like in force with its voter, a page of rowids of a vote table at
    a time, in one read transaction."""
    pages: list[tuple[npt.NDArray[Any], ...]] = []  # idx, kind, value, occurred_at_us, verified
    users: list[str] = []
    conn.execute("BEGIN")
    try:
        for table, page in _VOTE_LOG_PAGES.items():
            top = int(conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {table}").fetchone()[0])
            for low in range(0, top, _VOTE_LOG_PAGE_ROWS):
                count, kind, idx, value, at, verified, ids = conn.execute(
                    page, (low, low + _VOTE_LOG_PAGE_ROWS)
                ).fetchone()
                if count:
                    kinds = np.full(count, kind, dtype=np.int8)
                    flags = _decimals(verified) != 0
                    pages.append((_decimals(idx), kinds, _decimals(value), _decimals(at), flags))
                    users += json.loads(ids)
    finally:
        conn.execute("COMMIT")
    if not pages:
        return VoteLogRows.from_rows([])
    user_id = np.empty(len(users), dtype=object)
    user_id[:] = users
    idx, kind, value, at, flags = (np.concatenate(column) for column in zip(*pages, strict=True))
    return VoteLogRows(idx, user_id, kind, value, at, flags)


def _decimals(text: str) -> npt.NDArray[np.int64]:
    """The numbers of a comma-separated list of decimals."""
    return np.fromstring(text, dtype=np.int64, sep=",")


# Poll votes, a row per product shown, as two lists of numbers SQLite writes out: each
# row's vote and 2 * idx + chosen. The ids are joined to products' idx in SQLite, which
# does not hold Python's lock meanwhile (json.loads of 100,000 votes held it for 0.5 s);
# two lists of decimals cost 1.7 µs a vote, against 2.4 as hexadecimal triples. A vote's
# number is its rowid, which an upsert keeps.
_POLL_ROWS_WHERE = """
SELECT group_concat(v.rowid, ','), group_concat(2 * p.idx + (j.value = v.chosen), ',')
FROM poll_votes AS v, json_each(v.shown) AS j JOIN products AS p ON p.product_id = j.value
WHERE {where}
"""
_POLL_ROWS = _POLL_ROWS_WHERE.format(where="v.rowid > ? AND v.rowid <= ?")  # a range of rowids
_POLL_PAGE = 50_000  # votes a query (more changes than this, not all new rows: every vote)
# The votes in force that events after a sequence number (?1) put in force, reached by
# the cheapest of three ways.
# 1. The rows after the largest rowid then (the read's mark), when as many as the votes
# applied since: each was then a first vote on its key (a new row takes a rowid above
# every other; a replaced one keeps its own).
_APPLIED_POLL_EVENTS = (
    "SELECT count(*) FROM events WHERE seq > ? AND kind = 'poll_vote' AND outcome = 'APPLIED'"
)
_ROWS_AFTER = "SELECT count(*) FROM poll_votes WHERE rowid > ?"
_POLL_ROWS_AFTER = _POLL_ROWS_WHERE.format(where="v.rowid > ?")
# Else those whose event is one of the poll-vote events since:
_NEW_POLL_EVENTS = "SELECT event_id FROM events WHERE seq > ?1 AND kind = 'poll_vote'"
# 2. through the votes of each user who voted since, once per user (the only index that
# leads there), unless their votes are many (_VOTERS_SHARE of those in force);
_VOTERS = "SELECT user_id FROM events WHERE seq > ?1 AND kind = 'poll_vote'"
_VOTERS_POLL_CHANGES = _POLL_ROWS_WHERE.format(
    where=f"v.user_id IN ({_VOTERS}) AND v.event_id IN ({_NEW_POLL_EVENTS})"
)
_VOTERS_VOTES = f"SELECT count(*) FROM poll_votes WHERE user_id IN ({_VOTERS})"  # (the index's)
_VOTERS_SHARE = 0.05
# 3. or by one pass over every vote, the new events' ids in a transient index: when a
# user id votes in many polls (a bot, or "guest" for every anonymous visitor), a row
# reached by the index costs up to ten times a row of the pass (its pages read out of
# order: a user of 45 % of 120,000 votes, 84 ms against 18). An index on event_id cost
# each write of 1,000 vote rows two thirds more CPU.
_EVERY_POLL_CHANGE = _POLL_ROWS_WHERE.format(where=f"v.event_id IN ({_NEW_POLL_EVENTS})")


def read_poll_rows(
    conn: sqlite3.Connection, after_seq: int | None = None, mark: int = 0
) -> PollRows:
    """Every poll vote in force, a row per product shown, a page of votes at a time; or
    those put in force after ``after_seq`` (Store.load_poll_rows; ``mark``: the largest
    rowid then), in one query, unless more than a page of them replaced votes (then
    every vote). One read transaction."""
    conn.execute("BEGIN")
    try:
        seq = read_last_seq(conn)
        in_force = int(conn.execute("SELECT count(*) FROM poll_votes").fetchone()[0])
        top = int(conn.execute("SELECT coalesce(max(rowid), 0) FROM poll_votes").fetchone()[0])
        if after_seq is not None:
            changed = _poll_changes(conn, after_seq, mark, in_force)
            if changed is not None:
                return PollRows.from_columns(*changed, seq, in_force, after_seq, top)
        votes, choices = [], []
        for low in range(0, top, _POLL_PAGE):
            vote, choice = _numbers(conn.execute(_POLL_ROWS, (low, low + _POLL_PAGE)).fetchone())
            votes.append(vote)
            choices.append(choice)
    finally:
        conn.execute("COMMIT")
    return PollRows.from_columns(
        np.concatenate(votes or [_NONE]),
        np.concatenate(choices or [_NONE]),
        seq,
        in_force,
        mark=top,
    )


_NONE = np.zeros(0, dtype=np.int64)
Numbers = npt.NDArray[np.int64]


def _poll_changes(
    conn: sqlite3.Connection, after_seq: int, mark: int, in_force: int
) -> tuple[Numbers, Numbers] | None:
    """The rows of the votes events after ``after_seq`` put in force (None: more than a
    page, not all new rows after ``mark``)."""
    applied = int(conn.execute(_APPLIED_POLL_EVENTS, (after_seq,)).fetchone()[0])
    if not applied:
        return _NONE, _NONE
    if applied == int(conn.execute(_ROWS_AFTER, (mark,)).fetchone()[0]):
        return _numbers(conn.execute(_POLL_ROWS_AFTER, (mark,)).fetchone())
    if applied > _POLL_PAGE:
        return None
    voters_votes = int(conn.execute(_VOTERS_VOTES, (after_seq,)).fetchone()[0])
    way = _VOTERS_POLL_CHANGES if voters_votes <= _VOTERS_SHARE * in_force else _EVERY_POLL_CHANGE
    return _numbers(conn.execute(way, (after_seq,)).fetchone())


def _numbers(lists: tuple[str | None, str | None]) -> tuple[Numbers, Numbers]:
    """The two lists of numbers of a poll-row query (none: NULL)."""
    vote, choice = lists
    if not vote or not choice:
        return _NONE, _NONE
    return np.fromstring(vote, dtype=np.int64, sep=","), np.fromstring(
        choice, dtype=np.int64, sep=","
    )


def read_comment_rows(
    conn: sqlite3.Connection, channels: Collection[str], products: Sequence[int] | None
) -> CommentRows:
    """The comments in force from these channels (of these products)."""
    names = sorted(channels)
    if not names:
        return CommentRows.from_rows([])
    marks = ",".join("?" * len(names))
    if products is None:
        sql = LOAD_COMMENT_CHANNELS.format(channels=marks, where="")
        return CommentRows.from_rows(conn.execute(sql, names).fetchall())
    rows: list[tuple[int, str, int]] = []
    wanted = list(products)
    step = max(1, CHUNK_ROWS - len(names))
    for start in range(0, len(wanted), step):
        chunk = wanted[start : start + step]
        where = f"AND p.idx IN ({','.join('?' * len(chunk))})"
        sql = LOAD_COMMENT_CHANNELS.format(channels=marks, where=where)
        rows += conn.execute(sql, (*names, *chunk)).fetchall()
    return CommentRows.from_rows(rows)
