"""SQLite writes: apply() and its two write strategies (a batch written as new first,
_write_new_votes, or decided after looking ids and votes up), the product rows kept
between groups, and erasure.

One write transaction applies a group of events: each event is checked
against the event log (DUPLICATE), then against the user's current vote on the
product (newer wins by ``(occurred_at, event_id)``; an older one is
SUPERSEDED), and the product's aggregates are updated in the same transaction,
so they always equal a recount of the votes. Every recorded event takes the
next sequence number; a product row carries the sequence number of its last
change, which makes ``products`` a change feed ordered by ``seq``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Collection, Sequence
from typing import Any

from reviewrank.service.app.store import AppliedGroup, Job
from reviewrank.service.domain.errors import StoreError
from reviewrank.service.domain.values import (
    ErasureResult,
    EventBatch,
    Outcome,
    ProductRow,
    WriteResults,
)
from reviewrank.service.domain.voting import (
    COMMENTS,
    POLLS_SHOWN,
    POLLS_WON,
    SENTIMENT_SQUARES,
    SENTIMENT_SUM,
    SHARES,
    Plan,
    Vote,
    VoteChanges,
    VoteKey,
    all_distinct,
    comment_keys,
    erasure_deltas,
    erasure_result,
    like_keys,
    of_keys,
    plan_events,
    plan_new_votes,
    plan_one_by_one,
    poll_vote_keys,
    rating_keys,
    share_keys,
)
from reviewrank.service.storage.common import (
    apply_jobs,
    event_hash,
    product_row,
    upsert_vote,
)
from reviewrank.service.storage.sqlite.bulk import write_columns, write_rows
from reviewrank.service.storage.sqlite.catalogue import SQLiteCatalogue
from reviewrank.service.storage.sqlite.connection import (
    CHUNK_ROWS,
    NEW_PRODUCTS,
    is_storage_fault,
    largest_idx,
    rollback_quietly,
    translated_errors,
)
from reviewrank.service.storage.tables import EVENT_COLUMNS, PRODUCT_COLUMNS, vote_columns

# An erasure's deltas are applied by UPDATE (not by an upsert's VALUES row, whose CHECKs
# would see them); events write each product's new values (_SET_PRODUCTS, NEW_PRODUCTS).
_UPDATE_PRODUCT = f"""
UPDATE products SET
    category = CASE WHEN ?1 != '' THEN ?1 ELSE category END,
    rating_count = rating_count + ?2, star_sum = star_sum + ?3,
    s1 = s1 + ?4, s2 = s2 + ?5, s3 = s3 + ?6, s4 = s4 + ?7, s5 = s5 + ?8,
    likes = likes + ?9, dislikes = dislikes + ?10, shares = shares + ?11,
    comments = comments + ?12, sentiment_sum = sentiment_sum + ?13,
    sentiment_squares = sentiment_squares + ?14, polls_shown = polls_shown + ?15,
    polls_won = polls_won + ?16, seq = ?17
WHERE product_id = ?18
RETURNING {PRODUCT_COLUMNS}
"""
# Row templates of service/storage/sqlite/bulk.py: {values} stands for a list of rows.
_SET_PRODUCTS = """
UPDATE products SET category = d.column2, rating_count = d.column3, star_sum = d.column4,
    s1 = d.column5, s2 = d.column6, s3 = d.column7, s4 = d.column8, s5 = d.column9,
    likes = d.column10, dislikes = d.column11, shares = d.column12, seq = d.column13,
    listed_at_us = d.column14, comments = d.column15, sentiment_sum = d.column16,
    sentiment_squares = d.column17, polls_shown = d.column18, polls_won = d.column19
FROM (VALUES {values}) AS d WHERE products.idx = d.column1
"""
_SET_PRODUCT = """
UPDATE products SET category = ?2, rating_count = ?3, star_sum = ?4,
    s1 = ?5, s2 = ?6, s3 = ?7, s4 = ?8, s5 = ?9, likes = ?10, dislikes = ?11, shares = ?12,
    seq = ?13, listed_at_us = ?14, comments = ?15, sentiment_sum = ?16, sentiment_squares = ?17,
    polls_shown = ?18, polls_won = ?19
WHERE idx = ?1
"""
# A row whose only change is its poll counts (and seq, listing time): a batch of poll
# votes moves some 3 products a vote (1,206 rows of the demo in 4.2-5.4 ms, against
# 6.5-8.0 by _SET_PRODUCTS).
_SET_POLL_COUNTS = """
UPDATE products SET seq = d.column2, listed_at_us = d.column3, polls_shown = d.column4,
    polls_won = d.column5
FROM (VALUES {values}) AS d WHERE products.idx = d.column1
"""
_SET_POLL_COUNT = """
UPDATE products SET seq = ?2, listed_at_us = ?3, polls_shown = ?4, polls_won = ?5
WHERE idx = ?1
"""
_INSERT_EVENTS = f"INSERT INTO events ({EVENT_COLUMNS}) VALUES {{values}}\n"
_INSERT_NEW_EVENTS = _INSERT_EVENTS + "ON CONFLICT (event_id) DO NOTHING"


def _insert_votes(table: str, on_conflict: str) -> str:
    """A bulk.py template that inserts rows of a vote table, then ``on_conflict``."""
    return f"INSERT INTO {table} ({', '.join(vote_columns(table))}) VALUES {{values}}\n" + (
        on_conflict
    )


_UPSERT_RATINGS = _insert_votes("ratings", upsert_vote("ratings"))
_UPSERT_LIKES = _insert_votes("likes", upsert_vote("likes"))
_UPSERT_SHARES = _insert_votes("shares", upsert_vote("shares"))
_UPSERT_COMMENTS = _insert_votes("comments", upsert_vote("comments"))
_UPSERT_POLL_VOTES = _insert_votes("poll_votes", upsert_vote("poll_votes"))
_INSERT_NEW_RATINGS = _insert_votes("ratings", "ON CONFLICT (product_id, user_id) DO NOTHING")
_INSERT_NEW_LIKES = _insert_votes("likes", "ON CONFLICT (product_id, user_id) DO NOTHING")
_INSERT_NEW_SHARES = _insert_votes("shares", "ON CONFLICT (product_id, user_id) DO NOTHING")
_INSERT_NEW_COMMENTS = _insert_votes("comments", "ON CONFLICT (product_id, user_id) DO NOTHING")
_INSERT_NEW_POLL_VOTES = _insert_votes("poll_votes", "ON CONFLICT (poll_id, user_id) DO NOTHING")
# Page cache of the writer's connection, in KiB (SQLite's default: 2 MB). Random event
# ids and users spread each group's writes over many pages, which then stay cached.
WRITE_CACHE_KIB = 64 * 1024
PRODUCT_ROW_CACHE = 65_536  # product rows kept between groups (SQLiteStore._rows)

_PURGE_WAIT_MS = 200  # how long the WAL purge after an erasure may wait for readers


class SQLiteWrites(SQLiteCatalogue):
    """The events' and erasures' writes (part of SQLiteStore)."""

    # Write a batch as all new first, undoing that if it is not (_write_new_votes); False:
    # always look ids and votes up first (the tests compare the two).
    insert_first = True

    def apply(self, jobs: Sequence[Job], now_us: int | None = None) -> AppliedGroup:
        """Applies every job (events, or an erasure) in one transaction, in order; commits
        before returning. On any error the whole transaction is rolled back and StoreError
        raised."""
        self._writable()
        recorded_at = now_us if now_us is not None else time.time_ns() // 1000
        conn = self.conn
        if not self._write_cache:  # sized now: the start-up's bulk reads do not fill it
            self._write_cache = True
            with translated_errors("sizing the page cache"):
                conn.execute(f"PRAGMA cache_size=-{WRITE_CACHE_KIB}")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA data_version").fetchone()[0]
                if version != self._data_version:  # another connection wrote meanwhile
                    self._rows.clear()
                seq = conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0]
                seq_before = seq
                touched: dict[str, ProductRow] = {}
                votes = VoteChanges()
                results, seq = apply_jobs(
                    jobs,
                    seq,
                    lambda events, at: self._apply_events(events, at, recorded_at, touched, votes),
                    lambda user, at: self._erase(user, at, recorded_at, touched, votes),
                    lambda entries, at: self._upsert_catalogue(entries, at, touched, recorded_at),
                )
                conn.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (seq,))
                # Kept after the commit (see Store.committing): the writer applies the
                # rows to the catalogue only later, once it has a turn.
                self.committing = (seq_before, seq)
                conn.execute("COMMIT")
            except BaseException:
                self.committing = (0, 0)
                self._forget_rows()
                rollback_quietly(conn)
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"write failed: {exc}", fault=is_storage_fault(exc)) from exc
        self._data_version = version
        if len(self._rows) + len(touched) > PRODUCT_ROW_CACHE:
            self._rows.clear()
        self._rows.update(touched)
        if any(isinstance(r, ErasureResult) and r.seq for r in results):
            self._purge_wal()
        return AppliedGroup(
            results=results,
            products=list(touched.values()),
            seq=seq,
            votes=votes,
            seq_before=seq_before,
        )

    def _known_event_ids(self, event_ids: Sequence[str]) -> set[str]:
        """Those of the ids already recorded, or recorded and then erased (by hash)."""
        conn = self.conn
        unique = list(dict.fromkeys(event_ids))
        known: set[str] = set()
        for start in range(0, len(unique), CHUNK_ROWS):
            chunk = unique[start : start + CHUNK_ROWS]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(f"SELECT event_id FROM events WHERE event_id IN ({marks})", chunk)
            known.update(row[0] for row in rows)
        known.update(self._erased_event_ids([e for e in unique if e not in known]))
        return known

    def _erased_event_ids(self, event_ids: Sequence[str]) -> set[str]:
        """Those of the ids recorded and then erased (kept by hash only)."""
        conn = self.conn
        known: set[str] = set()
        if not conn.execute("SELECT EXISTS (SELECT 1 FROM erased_events)").fetchone()[0]:
            return known
        hashes = {event_hash(e): e for e in event_ids}
        digests = list(hashes)
        for start in range(0, len(digests), CHUNK_ROWS):
            part = digests[start : start + CHUNK_ROWS]
            marks = ",".join("?" * len(part))
            rows = conn.execute(
                f"SELECT event_hash FROM erased_events WHERE event_hash IN ({marks})", part
            )
            known.update(hashes[row[0]] for row in rows)
        return known

    def _current_votes(
        self, table: str, keys: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[Any, ...]]:
        """(product_id, user_id) -> (value, occurred_at_us, event_id, and a share's
        channel, a comment's channel, language and analyzer) of the votes in force; a poll
        vote's by (poll_id, user_id)."""
        found: dict[tuple[str, str], tuple[Any, ...]] = {}
        pairs = list(keys)
        step = CHUNK_ROWS // 2
        names = vote_columns(table)
        columns = ", ".join(f"v.{c}" for c in names)
        for start in range(0, len(pairs), step):
            chunk = pairs[start : start + step]
            values = ",".join("(?, ?)" for _ in chunk)
            # A join on a VALUES list searches the primary key; `(a, b) IN (VALUES …)` scans.
            rows = self.conn.execute(
                f"SELECT {columns} FROM (VALUES {values}) AS k JOIN {table} AS v"
                f" ON v.{names[0]} = k.column1 AND v.user_id = k.column2",
                [part for pair in chunk for part in pair],
            )
            for row in rows:
                found[(row[0], row[1])] = row[2:]
        return found

    def _in_force(self, table: str, keys: Collection[tuple[str, str]]) -> dict[VoteKey, Vote]:
        """The votes in force on some keys (none looked up if none)."""
        return self._current_votes(table, keys) if keys else {}

    def _apply_events(
        self,
        events: EventBatch,
        seq: int,
        recorded_at: int,
        touched: dict[str, ProductRow],
        votes: VoteChanges,
    ) -> tuple[WriteResults, int]:
        """Applies events in order, reading and writing in bulk, many rows a statement.
        A batch of new ids is written as if every vote were the first on its key, then
        decided again where a vote was in force (_write_new_votes); any other batch is
        decided after one look-up of the ids and one of the votes in force
        (service/domain/voting.py decides). Then one read of the products and one write of
        their new states. Returns the results and the last sequence number."""
        conn = self.conn
        plan = self._write_new_votes(events, seq, recorded_at) if self.insert_first else None
        if plan is None:
            plan = plan_events(
                events,
                self._known_event_ids(events.event_ids),
                self._current_votes("ratings", rating_keys(events)),
                self._current_votes("likes", like_keys(events)),
                seq,
                recorded_at,
                self._in_force("shares", share_keys(events)),
                self._in_force("comments", comment_keys(events)),
                self._in_force("poll_votes", poll_vote_keys(events)),
            )
            write_columns(conn, _INSERT_EVENTS, plan.events)
            write_columns(conn, _UPSERT_RATINGS, plan.ratings)
            write_columns(conn, _UPSERT_LIKES, plan.likes)
            write_columns(conn, _UPSERT_SHARES, plan.shares)
            write_columns(conn, _UPSERT_COMMENTS, plan.comments)
            write_columns(conn, _UPSERT_POLL_VOTES, plan.poll_votes)
        if plan.deltas:
            self._write_products(plan.product_updates(), touched)
            votes.add(plan.changes, touched)
        return plan.results, plan.seq

    def _write_new_votes(self, events: EventBatch, seq: int, recorded_at: int) -> Plan | None:
        """Writes a batch of new events as if each were the first vote on its key, the
        inserts themselves finding what is not so (a row already there is skipped):
        this saves looking up ids and votes that, in the usual batch, are not there.
        Where a vote was in force, decides again (_replan). Returns the plan, or None,
        with nothing written, if the batch holds an id twice, a key twice, or an id
        recorded (or erased) before."""
        if not all_distinct(events) or self._erased_event_ids(events.event_ids):
            return None
        conn = self.conn
        plan = plan_new_votes(events, seq, recorded_at)
        written = conn.total_changes
        write_columns(conn, _INSERT_NEW_EVENTS, plan.events)
        if _rows_since(conn, written) != len(events):  # some id recorded before
            conn.execute("DELETE FROM events WHERE seq > ?", (seq,))
            return None
        written = conn.total_changes
        write_columns(conn, _INSERT_NEW_RATINGS, plan.ratings)
        write_columns(conn, _INSERT_NEW_LIKES, plan.likes)
        write_columns(conn, _INSERT_NEW_SHARES, plan.shares)
        write_columns(conn, _INSERT_NEW_COMMENTS, plan.comments)
        write_columns(conn, _INSERT_NEW_POLL_VOTES, plan.poll_votes)
        if _rows_since(conn, written) != len(events):  # some users had voted before
            return self._replan(events, seq, recorded_at)
        return plan

    def _replan(self, events: EventBatch, seq: int, recorded_at: int) -> Plan:
        """After _write_new_votes found votes in force on some keys: decides the batch
        against them (newer wins) and brings what it wrote in line: those events'
        outcomes and the votes that replace them. The events took the same sequence
        numbers as they would have (every id is new)."""
        conn = self.conn
        ids = set(events.event_ids)
        in_force: list[dict[VoteKey, Vote]] = []
        for table, keys in (
            ("ratings", rating_keys(events)),
            ("likes", like_keys(events)),
            ("shares", share_keys(events)),
            ("comments", comment_keys(events)),
            ("poll_votes", poll_vote_keys(events)),
        ):
            found = self._in_force(table, keys)
            # A vote holding an id of the batch was written just now: it was none before.
            in_force.append({key: vote for key, vote in found.items() if vote[2] not in ids})
        ratings, likes, shares, comments, poll_votes = in_force
        replaced = (set(ratings), set(likes), set(shares), set(comments), set(poll_votes))
        plan = plan_one_by_one(
            events, set(), ratings, likes, seq, recorded_at, shares, comments, poll_votes
        )
        superseded = Outcome.SUPERSEDED
        conn.executemany(
            "UPDATE events SET outcome = ? WHERE seq = ?",
            [
                (superseded.name, s)
                for o, s in zip(plan.results.outcomes, plan.results.seqs, strict=True)
                if o is superseded
            ],
        )
        write_columns(conn, _UPSERT_RATINGS, of_keys(plan.ratings, replaced[0]))
        write_columns(conn, _UPSERT_LIKES, of_keys(plan.likes, replaced[1]))
        write_columns(conn, _UPSERT_SHARES, of_keys(plan.shares, replaced[2]))
        write_columns(conn, _UPSERT_COMMENTS, of_keys(plan.comments, replaced[3]))
        write_columns(conn, _UPSERT_POLL_VOTES, of_keys(plan.poll_votes, replaced[4]))
        return plan

    def _write_products(
        self,
        updates: list[tuple[str, str, list[int], int, int]],
        touched: dict[str, ProductRow],
    ) -> None:
        """Adds each delta to its product's row, creating the products not yet known (idx
        numbered on from the largest, as SQLite would): one read of the rows, then one
        write of each new state by idx. An event's category only fills in a product that
        has none and that the shop's catalogue does not hold; its time moves the product's
        listing time back if earlier. Keeps the rows as written in ``touched``."""
        conn = self.conn
        current = self._product_rows((p for p, _, _, _, _ in updates), touched)
        changed: list[tuple[Any, ...]] = []
        polled: list[tuple[int, int, int, int, int]] = []  # rows _SET_POLL_COUNTS writes
        created: list[tuple[Any, ...]] = []
        top: int | None = None
        for product_id, category, delta, seq, first_us in updates:
            row = current[product_id]
            if row is None:
                if top is None:
                    top = largest_idx(conn)
                top += 1
                values = (top, product_id, category, *delta[:SHARES], seq, 1, 0, "", "",
                          *delta[SHARES:COMMENTS], first_us, *delta[COMMENTS:])  # fmt: skip
                # (delta[COMMENTS:]: comments, sentiment sums, polls shown and won)
                created.append(values)
                touched[product_id] = product_row(values)
                continue
            filled = row.category if row.category or row.owned else category
            listed = min(row.listed_at_us, first_us)
            if filled == row.category and not any(delta[:POLLS_SHOWN]):
                shown = row.polls_shown + delta[POLLS_SHOWN]
                won = row.polls_won + delta[POLLS_WON]
                polled.append((row.idx, seq, listed, shown, won))
                # (row[8] is seq, row[14] listed_at_us: _replace would take twice as long)
                touched[product_id] = ProductRow(
                    *row[:8], seq, *row[9:14], listed, *row[15:18], shown, won
                )
                continue
            count, stars, s1, s2, s3, s4, s5, likes, dislikes, shares = delta[:COMMENTS]
            h1, h2, h3, h4, h5 = row.histogram
            # The columns of _SET_PRODUCTS: idx, category, counts, seq, listed_at_us, the
            # comments' sums.
            comments = row.comments + delta[COMMENTS]
            sentiment = row.sentiment_sum + delta[SENTIMENT_SUM]
            squares = row.sentiment_squares + delta[SENTIMENT_SQUARES]
            shown = row.polls_shown + delta[POLLS_SHOWN]
            won = row.polls_won + delta[POLLS_WON]
            values = (
                row.idx, filled, row.rating_count + count,
                row.star_sum + stars, h1 + s1, h2 + s2, h3 + s3, h4 + s4, h5 + s5,
                row.likes + likes, row.dislikes + dislikes, row.shares + shares, seq, listed,
                comments, sentiment, squares, shown, won,
            )  # fmt: skip
            changed.append(values)
            touched[product_id] = ProductRow(
                values[0], product_id, values[1], values[2], values[3], values[4:9],
                values[9], values[10], seq, row.active, row.owned, row.more_categories, row.display,
                values[11], listed, comments, sentiment, squares, shown, won,
            )  # fmt: skip
        write_rows(conn, NEW_PRODUCTS, created)
        changed.sort()  # by idx: the rows one after the other in the table (and its pages)
        write_rows(conn, _SET_PRODUCTS, changed, _SET_PRODUCT)
        polled.sort()
        write_rows(conn, _SET_POLL_COUNTS, polled, _SET_POLL_COUNT)

    def _purge_wal(self) -> None:
        """After an erasure the WAL still holds older page images with the erased rows:
        fold it into the (securely overwritten) database file and empty it. The erasure
        is committed already, so a failure, or a reader holding an old snapshot past a
        short wait, only postpones that to a later checkpoint."""
        conn = self.conn
        with contextlib.suppress(sqlite3.Error):
            conn.execute(f"PRAGMA busy_timeout={_PURGE_WAIT_MS}")  # the writer must not stall
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")

    def _erase(
        self,
        user_id: str,
        seq: int,
        erased_at: int,
        touched: dict[str, ProductRow],
        votes: VoteChanges,
    ) -> ErasureResult:
        """Removes the user's votes, updates their products, and erases the user's events,
        keeping only a hash of each event id (de-duplication). Takes ``seq`` if anything
        was erased."""
        conn = self.conn
        ratings = conn.execute(
            "DELETE FROM ratings WHERE user_id = ? RETURNING product_id, stars, occurred_at_us",
            (user_id,),
        ).fetchall()
        likes = conn.execute(
            "DELETE FROM likes WHERE user_id = ? RETURNING product_id, value, occurred_at_us",
            (user_id,),
        ).fetchall()
        shares = conn.execute(
            "DELETE FROM shares WHERE user_id = ?"
            " RETURNING product_id, value, occurred_at_us, channel",
            (user_id,),
        ).fetchall()
        comments = conn.execute(
            "DELETE FROM comments WHERE user_id = ?"
            " RETURNING product_id, score, occurred_at_us, channel",
            (user_id,),
        ).fetchall()
        poll_votes = conn.execute(
            "DELETE FROM poll_votes WHERE user_id = ? RETURNING chosen, shown", (user_id,)
        ).fetchall()
        rows = conn.execute("SELECT event_id FROM events WHERE user_id = ?", (user_id,))
        event_ids = [row[0] for row in rows]
        if not (ratings or likes or shares or comments or poll_votes or event_ids):
            return ErasureResult(0, 0, 0, 0)
        conn.executemany(
            "INSERT OR IGNORE INTO erased_events (event_hash, erased_at_us) VALUES (?, ?)",
            [(event_hash(e), erased_at) for e in event_ids],
        )
        conn.execute("DELETE FROM events WHERE user_id = ?", (user_id,))
        deltas, removed = erasure_deltas(ratings, likes, shares, comments, poll_votes, user_id)
        for product_id, delta in deltas.items():
            row = conn.execute(_UPDATE_PRODUCT, ("", *delta, seq, product_id)).fetchone()
            touched[product_id] = product_row(row)
        votes.add(removed, touched)
        return erasure_result(ratings, likes, len(event_ids), seq, shares, comments, poll_votes)


def _rows_since(conn: sqlite3.Connection, total_changes: int) -> int:
    """Rows inserted, updated or deleted on the connection since its ``total_changes`` was
    the one given (a C int: it wraps around after 2**31 changes)."""
    return (conn.total_changes - total_changes) % 2**32
