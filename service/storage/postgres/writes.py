"""PostgreSQL writes: apply() as set-based statements over ``unnest`` arrays (a fixed
number per transaction) and, for large groups, binary COPY; serialised on ``meta.seq``;
and erasure."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import psycopg

from reviewrank.service.app.store import AppliedGroup, Job
from reviewrank.service.domain.values import (
    CatalogueEntry,
    CatalogueResult,
    ErasureResult,
    EventBatch,
    ProductRow,
    WriteResults,
)
from reviewrank.service.domain.voting import (
    KEEP_LISTING_TIME,
    VoteChanges,
    comment_keys,
    erasure_deltas,
    erasure_result,
    like_keys,
    plan_events,
    poll_vote_keys,
    rating_keys,
    share_keys,
)
from reviewrank.service.storage.common import (
    apply_jobs,
    catalogue_changes,
    catalogue_values,
    event_hash,
    product_row,
    product_values,
    upsert_vote,
)
from reviewrank.service.storage.postgres.connection import CHANNEL, PostgresBase
from reviewrank.service.storage.tables import (
    EVENT_COLUMNS,
    PRODUCT_COLUMNS,
    TABLES,
    VOTE_TABLES,
    vote_columns,
)

# Adds the deltas of several products in one statement; returns the rows as they are now.
# An event's category only fills in a product that has none and is not the shop's; its
# time moves the product's listing time back if earlier.
_PRODUCT_UPDATE = f"""
UPDATE products AS p SET
    category = CASE WHEN d.category <> '' AND p.category = '' AND p.owned = 0
                    THEN d.category ELSE p.category END,
    rating_count = p.rating_count + d.n, star_sum = p.star_sum + d.s,
    s1 = p.s1 + d.s1, s2 = p.s2 + d.s2, s3 = p.s3 + d.s3, s4 = p.s4 + d.s4, s5 = p.s5 + d.s5,
    likes = p.likes + d.likes, dislikes = p.dislikes + d.dislikes, shares = p.shares + d.shares,
    comments = p.comments + d.comments, sentiment_sum = p.sentiment_sum + d.sentiment,
    sentiment_squares = p.sentiment_squares + d.squares,
    polls_shown = p.polls_shown + d.polls_shown, polls_won = p.polls_won + d.polls_won,
    seq = d.seq, listed_at_us = least(p.listed_at_us, d.listed)
FROM unnest(%b::text[], %b::text[], %b::int[], %b::int[], %b::int[], %b::int[], %b::int[],
            %b::int[], %b::int[], %b::int[], %b::int[], %b::int[], %b::int[], %b::bigint[],
            %b::bigint[], %b::int[], %b::int[], %b::bigint[], %b::bigint[])
    AS d(product_id, category, n, s, s1, s2, s3, s4, s5, likes, dislikes, shares, comments,
         sentiment, squares, polls_shown, polls_won, seq, listed)
WHERE p.product_id = d.product_id
RETURNING {", ".join(f"p.{c}" for c in TABLES["products"])}
"""
_PRODUCT_ROWS = f"SELECT {PRODUCT_COLUMNS} FROM products WHERE product_id = ANY(%s)"
_INSERT_PRODUCT = (
    f"INSERT INTO products ({PRODUCT_COLUMNS})"
    f" VALUES ({', '.join(['%s'] * len(TABLES['products']))})"
)
_SET_CATALOGUE = """
UPDATE products SET category = %s, active = %s, owned = 1, more_categories = %s, display = %s,
    seq = %s
WHERE idx = %s
"""
_INSERT_EVENTS = f"""
INSERT INTO events ({EVENT_COLUMNS})
SELECT * FROM unnest(%b::text[], %b::bigint[], %b::text[], %b::text[], %b::text[], %b::int[],
                     %b::bigint[], %b::text[], %b::bigint[], %b::text[])
"""
# The group's last sequence number, and the followers told (one round trip).
_SET_SEQ_AND_NOTIFY = """
WITH moved AS (UPDATE meta SET value = %s WHERE key = 'seq' RETURNING value)
SELECT pg_notify(%s, value::text) FROM moved
"""
# From this many rows a group's events and new votes are copied in (COPY: about twice as
# fast per row as INSERT from unnest, but a round trip more, which small groups feel).
COPY_FROM = 64
# Rows of a table copied in, in binary, with the types of its columns.
_COPY = {
    table: f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)"
    for table, columns in (
        ("events", EVENT_COLUMNS),
        *((t, ", ".join(vote_columns(t))) for t in VOTE_TABLES),
    )
}
# The type of a vote's value (stars, a like's 1/-1/0, a share's 1, a comment's score), but
# a poll vote's: the product chosen.
_VALUE_TYPE = {"poll_votes": "text"}
# The columns a vote table keeps after event_id that are not text: a rating's or like's
# verified purchase flag.
_MORE_TYPE = {"verified": "int4"}


def _more_types(table: str) -> list[str]:
    return [_MORE_TYPE.get(column, "text") for column in vote_columns(table)[5:]]


_COPY_TYPES = {
    "events": ["text", "int8", "text", "text", "text", "int4", "int8", "text", "int8", "text"],
    # product_id (a poll vote's poll_id), user_id, the vote's value, occurred_at_us,
    # event_id, then a rating's or like's verified flag, or text columns (a share's
    # channel; a comment's channel, language and analyzer; a poll vote's channel and
    # products shown)
    **{
        t: ["text", "text", _VALUE_TYPE.get(t, "int4"), "int8", "text", *_more_types(t)]
        for t in VOTE_TABLES
    },
}
# Per vote table: its rows inserted, or the votes in force replaced (newer wins was
# decided before), and the votes in force on some keys.
_UPSERT_VOTES = {
    table: f"""
INSERT INTO {table} ({", ".join(vote_columns(table))})
SELECT * FROM unnest(%b::text[], %b::text[], %b::{_VALUE_TYPE.get(table, "int4")}[],
    %b::bigint[], %b::text[]{"".join(f", %b::{t}[]" for t in _more_types(table))})
{upsert_vote(table)}
"""
    for table in VOTE_TABLES
}
_CURRENT_VOTES = {
    table: f"""
SELECT {", ".join(f"v.{c}" for c in vote_columns(table))}
FROM unnest(%b::text[], %b::text[]) AS k(key, user_id)
JOIN {table} AS v ON v.{vote_columns(table)[0]} = k.key AND v.user_id = k.user_id
"""
    for table in VOTE_TABLES
}


def _next_idx(cur: psycopg.Cursor[Any]) -> int:
    """The idx a new product takes: numbered on from the largest, with no gaps (writers
    are serialised)."""
    top = cur.execute("SELECT coalesce(max(idx), 0) FROM products").fetchone()
    assert top is not None
    return int(top[0]) + 1


def _copy_rows(
    cur: psycopg.Cursor[Any], statement: str, types: list[str], rows: Iterable[Sequence[Any]]
) -> None:
    with cur.copy(statement) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows to one list per column (the arguments of unnest)."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]


class PostgresWrites(PostgresBase):
    """The events' and erasures' writes (part of PostgresStore)."""

    # -- writes -----------------------------------------------------------------------------

    def apply(self, jobs: Sequence[Job], now_us: int | None = None) -> AppliedGroup:
        """Applies every job (events, or an erasure) in one transaction, in order, and
        commits before returning (again after a retryable failure)."""
        recorded_at = now_us if now_us is not None else time.time_ns() // 1000
        try:
            return self._run("write failed", lambda conn: self._apply(conn, jobs, recorded_at))
        except BaseException:
            self.committing = (0, 0)  # (on success kept: see Store.committing)
            raise

    def _apply(
        self,
        conn: psycopg.Connection[Any],
        jobs: Sequence[Job],
        recorded_at: int,
    ) -> AppliedGroup:
        touched: dict[str, ProductRow] = {}
        votes = VoteChanges()
        with conn.transaction():
            cur = conn.cursor()
            row = cur.execute("SELECT value FROM meta WHERE key = 'seq' FOR UPDATE").fetchone()
            assert row is not None
            seq = seq_before = int(row[0])
            results, seq = apply_jobs(
                jobs,
                seq,
                lambda events, at: self._apply_events(cur, events, at, recorded_at, touched, votes),
                lambda user, at: self._erase(cur, user, at, recorded_at, touched, votes),
                lambda entries, at: self._upsert_catalogue(cur, entries, at, touched, recorded_at),
            )
            if seq != seq_before:
                cur.execute(_SET_SEQ_AND_NOTIFY, (seq, CHANNEL))
            self.committing = (seq_before, seq)  # committed as the block ends
        return AppliedGroup(
            results=results,
            products=list(touched.values()),
            seq=seq,
            votes=votes,
            seq_before=seq_before,
        )

    def _known_event_ids(self, cur: psycopg.Cursor[Any], event_ids: list[str]) -> set[str]:
        unique = list(dict.fromkeys(event_ids))
        rows = cur.execute("SELECT event_id FROM events WHERE event_id = ANY(%s)", (unique,))
        known = {r[0] for r in rows}
        erased_any = cur.execute("SELECT EXISTS (SELECT 1 FROM erased_events)").fetchone()
        if erased_any is not None and erased_any[0]:
            hashes = {event_hash(e): e for e in unique if e not in known}
            rows = cur.execute(
                "SELECT event_hash FROM erased_events WHERE event_hash = ANY(%s)", (list(hashes),)
            )
            known.update(hashes[bytes(r[0])] for r in rows)
        return known

    def _current_votes(
        self, cur: psycopg.Cursor[Any], table: str, keys: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[Any, ...]]:
        """(product_id, user_id) -> (value, occurred_at_us, event_id, and what else the
        table keeps) of the votes in force; a poll vote's by (poll_id, user_id)."""
        if not keys:
            return {}
        products, users = _columns(list(keys), 2)
        rows = cur.execute(_CURRENT_VOTES[table], (products, users))
        return {(row[0], row[1]): row[2:] for row in rows}

    def _apply_events(
        self,
        cur: psycopg.Cursor[Any],
        events: EventBatch,
        seq: int,
        recorded_at: int,
        touched: dict[str, ProductRow],
        votes: VoteChanges,
    ) -> tuple[WriteResults, int]:
        ratings = self._current_votes(cur, "ratings", rating_keys(events))
        likes = self._current_votes(cur, "likes", like_keys(events))
        shares = self._current_votes(cur, "shares", share_keys(events))
        comments = self._current_votes(cur, "comments", comment_keys(events))
        poll_votes = self._current_votes(cur, "poll_votes", poll_vote_keys(events))
        # The keys with a vote in force before the group (planning adds the group's own).
        in_force = {
            "ratings": set(ratings),
            "likes": set(likes),
            "shares": set(shares),
            "comments": set(comments),
            "poll_votes": set(poll_votes),
        }
        plan = plan_events(
            events,
            self._known_event_ids(cur, events.event_ids),
            ratings,
            likes,
            seq,
            recorded_at,
            shares,
            comments,
            poll_votes,
        )
        if len(plan.events[0]) >= COPY_FROM:
            _copy_rows(cur, _COPY["events"], _COPY_TYPES["events"], zip(*plan.events, strict=True))
        elif plan.events[0]:
            cur.execute(_INSERT_EVENTS, plan.events)
        for table, final in (
            ("ratings", plan.ratings), ("likes", plan.likes), ("shares", plan.shares),
            ("comments", plan.comments), ("poll_votes", plan.poll_votes),
        ):  # fmt: skip
            if final[0]:
                self._write_votes(cur, table, final, in_force[table])
        if plan.deltas:
            self._write_products(cur, plan.product_updates(), touched)
            votes.add(plan.changes, touched)
        return plan.results, plan.seq

    def _write_votes(
        self,
        cur: psycopg.Cursor[Any],
        table: str,
        final: Sequence[list[Any]],
        in_force: Collection[tuple[str, str]],
    ) -> None:
        """The final votes of the group: copied in where no vote is in force on the key (no
        other writer can add one meanwhile: writers are serialised on ``meta.seq``), the
        others replaced. Small groups: one upsert of them all."""
        if len(final[0]) < COPY_FROM:
            cur.execute(_UPSERT_VOTES[table], final)
            return
        rows = list(zip(*final, strict=True))
        new = [row for row in rows if (row[0], row[1]) not in in_force]
        if new:
            _copy_rows(cur, _COPY[table], _COPY_TYPES[table], new)
        if len(new) < len(rows):
            replaced = [row for row in rows if (row[0], row[1]) in in_force]
            cur.execute(_UPSERT_VOTES[table], _columns(replaced, len(final)))

    def _write_products(
        self,
        cur: psycopg.Cursor[Any],
        updates: list[tuple[str, str, list[int], int, int]],
        touched: dict[str, ProductRow],
    ) -> None:
        """Creates the products not yet known (idx numbered on from the largest, with no
        gaps: writers are serialised) and adds the deltas; keeps the rows as they are now."""
        ids = [p for p, _, _, _, _ in updates]
        existing = {
            r[0]
            for r in cur.execute(
                "SELECT product_id FROM products WHERE product_id = ANY(%s)", (ids,)
            )
        }
        new = [(p, c, s, t) for p, c, _, s, t in updates if p not in existing]
        if new:
            first = _next_idx(cur)
            cur.execute(
                "INSERT INTO products (idx, product_id, category, seq, listed_at_us)"
                " SELECT * FROM unnest(%b::int[], %b::text[], %b::text[], %b::bigint[],"
                " %b::bigint[])",
                (list(range(first, first + len(new))), *_columns(new, 4)),
            )
        rows = [(p, c, *d, s, t) for p, c, d, s, t in updates]
        for row in cur.execute(_PRODUCT_UPDATE, _columns(rows, 19)):
            touched[row[1]] = product_row(row)

    def _upsert_catalogue(
        self,
        cur: psycopg.Cursor[Any],
        entries: Sequence[CatalogueEntry],
        seq: int,
        touched: dict[str, ProductRow],
        now_us: int,
    ) -> CatalogueResult:
        """As SQLiteStore._upsert_catalogue: the shop's category and listing."""
        ids = [entry.product_id for entry in entries]
        current = {row[1]: product_row(row) for row in cur.execute(_PRODUCT_ROWS, (ids,))}
        created, updated, unchanged = catalogue_changes(
            entries, current, _next_idx(cur), seq, now_us
        )
        if not (created or updated):
            return CatalogueResult(0, 0, unchanged, 0)
        if created:
            cur.executemany(_INSERT_PRODUCT, [product_values(row) for row in created])
        if updated:
            cur.executemany(
                _SET_CATALOGUE,
                [catalogue_values(row) for row in updated],
            )
        touched.update((row.product_id, row) for row in (*created, *updated))
        return CatalogueResult(len(created), len(updated), unchanged, seq)

    def _erase(
        self,
        cur: psycopg.Cursor[Any],
        user_id: str,
        seq: int,
        erased_at: int,
        touched: dict[str, ProductRow],
        votes: VoteChanges,
    ) -> ErasureResult:
        """As SQLiteStore._erase: removes the user's votes and events, keeps event-id hashes."""
        ratings = cur.execute(
            "DELETE FROM ratings WHERE user_id = %s RETURNING product_id, stars, occurred_at_us",
            (user_id,),
        ).fetchall()
        likes = cur.execute(
            "DELETE FROM likes WHERE user_id = %s RETURNING product_id, value, occurred_at_us",
            (user_id,),
        ).fetchall()
        shares = cur.execute(
            "DELETE FROM shares WHERE user_id = %s"
            " RETURNING product_id, value, occurred_at_us, channel",
            (user_id,),
        ).fetchall()
        comments = cur.execute(
            "DELETE FROM comments WHERE user_id = %s"
            " RETURNING product_id, score, occurred_at_us, channel",
            (user_id,),
        ).fetchall()
        poll_votes = cur.execute(
            "DELETE FROM poll_votes WHERE user_id = %s RETURNING chosen, shown", (user_id,)
        ).fetchall()
        event_ids = [
            r[0]
            for r in cur.execute(
                "DELETE FROM events WHERE user_id = %s RETURNING event_id", (user_id,)
            )
        ]
        if not (ratings or likes or shares or comments or poll_votes or event_ids):
            return ErasureResult(0, 0, 0, 0)
        if event_ids:
            cur.execute(
                "INSERT INTO erased_events (event_hash, erased_at_us)"
                " SELECT h, %s FROM unnest(%b::bytea[]) AS h ON CONFLICT DO NOTHING",
                (erased_at, [event_hash(e) for e in event_ids]),
            )
        deltas, removed = erasure_deltas(ratings, likes, shares, comments, poll_votes, user_id)
        if deltas:
            kept = KEEP_LISTING_TIME
            self._write_products(cur, [(p, "", d, seq, kept) for p, d in deltas.items()], touched)
        votes.add(removed, touched)
        return erasure_result(ratings, likes, len(event_ids), seq, shares, comments, poll_votes)
