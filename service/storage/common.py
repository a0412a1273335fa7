"""What the SQLite and PostgreSQL stores share beside the tables' description
(tables.py): plain SQL both run, the check that ends an import, the hash an erased
event leaves, the order in which a group's jobs are applied, and a burst decision's
values."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reviewrank.service.app.store import BurstDecision, Job, JobResult
from reviewrank.service.domain.errors import StoreError
from reviewrank.service.domain.values import (
    CatalogueEntry,
    CatalogueResult,
    CatalogueUpsert,
    Erasure,
    ErasureResult,
    Event,
    EventBatch,
    ProductRow,
    WriteResults,
)
from reviewrank.service.storage.tables import TABLES, vote_columns

# Products whose stored aggregates differ from a recount of the votes, and votes of
# unknown products (none, ever). Plain SQL that SQLite and PostgreSQL both run, once
# {shown} is each backend's rows (product_id) of every product a poll vote showed
# (SHOWN_SQLITE, SHOWN_POSTGRES: the JSON array read as rows).
_RECOUNT = """
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
    FROM likes GROUP BY product_id),
sh AS (SELECT product_id, count(*) AS n FROM shares GROUP BY product_id),
c AS (
    SELECT product_id, count(*) AS n, sum(score) AS s, sum(score * score) AS q
    FROM comments GROUP BY product_id),
ps AS (SELECT product_id, count(*) AS n FROM ({shown}) AS shown GROUP BY product_id),
pw AS (SELECT chosen AS product_id, count(*) AS n FROM poll_votes GROUP BY chosen)
SELECT p.product_id FROM products p
LEFT JOIN r ON r.product_id = p.product_id
LEFT JOIN l ON l.product_id = p.product_id
LEFT JOIN sh ON sh.product_id = p.product_id
LEFT JOIN c ON c.product_id = p.product_id
LEFT JOIN ps ON ps.product_id = p.product_id
LEFT JOIN pw ON pw.product_id = p.product_id
WHERE p.rating_count != coalesce(r.n, 0) OR p.star_sum != coalesce(r.s, 0)
   OR p.s1 != coalesce(r.s1, 0) OR p.s2 != coalesce(r.s2, 0)
   OR p.s3 != coalesce(r.s3, 0) OR p.s4 != coalesce(r.s4, 0)
   OR p.s5 != coalesce(r.s5, 0)
   OR p.likes != coalesce(l.likes, 0) OR p.dislikes != coalesce(l.dislikes, 0)
   OR p.shares != coalesce(sh.n, 0)
   OR p.comments != coalesce(c.n, 0) OR p.sentiment_sum != coalesce(c.s, 0)
   OR p.sentiment_squares != coalesce(c.q, 0)
   OR p.polls_shown != coalesce(ps.n, 0) OR p.polls_won != coalesce(pw.n, 0)
UNION
SELECT product_id FROM ratings WHERE product_id NOT IN (SELECT product_id FROM products)
UNION
SELECT product_id FROM likes WHERE product_id NOT IN (SELECT product_id FROM products)
UNION
SELECT product_id FROM shares WHERE product_id NOT IN (SELECT product_id FROM products)
UNION
SELECT product_id FROM comments WHERE product_id NOT IN (SELECT product_id FROM products)
UNION
SELECT product_id FROM ({shown}) AS shown
WHERE product_id NOT IN (SELECT product_id FROM products)
"""
SHOWN_SQLITE = "SELECT j.value AS product_id FROM poll_votes, json_each(poll_votes.shown) AS j"
SHOWN_POSTGRES = (
    "SELECT j AS product_id FROM poll_votes, json_array_elements_text(poll_votes.shown::json) AS j"
)
RECOUNT_MISMATCHES_SQLITE = _RECOUNT.format(shown=SHOWN_SQLITE)
RECOUNT_MISMATCHES_POSTGRES = _RECOUNT.format(shown=SHOWN_POSTGRES)


def fill_listing_times(now_us: int) -> tuple[str, str]:
    """Statements giving products of unknown listing time (0: restored from an export of
    version 1 or 2) their earliest event's time, else ``now_us``. Plain SQL that SQLite
    and PostgreSQL both run (migration m008 keeps its own text)."""
    return (
        "UPDATE products SET listed_at_us = e.first"
        " FROM (SELECT product_id, min(occurred_at_us) AS first FROM events GROUP BY product_id)"
        " AS e WHERE e.product_id = products.product_id AND products.listed_at_us = 0",
        f"UPDATE products SET listed_at_us = {int(now_us)} WHERE listed_at_us = 0",
    )


# Every rating and like in force with its product's idx (cleared likes excluded), kinds
# as VoteTable codes them (1 rating, 0 like); then every share with its channel: the rows
# of a VoteTable. {where} and {also} narrow them to some products.
LOAD_VOTES = """
SELECT p.idx, 1, r.stars, r.occurred_at_us
FROM ratings r JOIN products p ON p.product_id = r.product_id {where}
UNION ALL
SELECT p.idx, 0, l.value, l.occurred_at_us
FROM likes l JOIN products p ON p.product_id = l.product_id
WHERE l.value <> 0 {also}
"""
# The comments in force from some channels, with their product's idx: the rows of a
# CommentRows. {channels} and {where} stand for placeholders of the channels and of some
# products.
LOAD_COMMENT_CHANNELS = """
SELECT p.idx, c.channel, c.score
FROM comments c JOIN products p ON p.product_id = c.product_id
WHERE c.channel IN ({channels}) {where}
"""
LOAD_SHARES = """
SELECT p.idx, s.occurred_at_us, s.channel
FROM shares s JOIN products p ON p.product_id = s.product_id {where}
"""
# Every rating and like in force with its voter (cleared likes excluded), a statement per
# vote table: the columns of a VoteLogRows (idx, user_id, kind as LOAD_VOTES codes it,
# value, occurred_at_us, verified), the vote as v. {where} is a condition on v ("true": every vote;
# SQLite reads a page of rowids at a time).
VOTE_LOG: dict[str, str] = {
    "ratings": """
SELECT p.idx AS idx, v.user_id AS user_id, 1 AS kind, v.stars AS value,
       v.occurred_at_us AS occurred_at_us, v.verified AS verified
FROM ratings v JOIN products p ON p.product_id = v.product_id
WHERE {where}
""",
    "likes": """
SELECT p.idx AS idx, v.user_id AS user_id, 0 AS kind, v.value AS value,
       v.occurred_at_us AS occurred_at_us, v.verified AS verified
FROM likes v JOIN products p ON p.product_id = v.product_id
WHERE v.value <> 0 AND {where}
""",
}
# The whole vote log in one statement.
LOAD_VOTE_LOG = "UNION ALL".join(rows.format(where="true") for rows in VOTE_LOG.values())
# The columns of a burst_decisions row but its id (the database numbers the rows), in
# BurstDecision's order.
BURST_DECISION_COLUMNS = TABLES["burst_decisions"][1:]


def burst_decision(values: Sequence[Any]) -> BurstDecision:
    """A BurstDecision from the values of BURST_DECISION_COLUMNS (confirmed as 0 or 1)."""
    product_id, start_us, end_us, confirmed, actor, reason, decided_at_us = values
    return BurstDecision(
        product_id, int(start_us), int(end_us), bool(confirmed), actor, reason, int(decided_at_us)
    )


def burst_decision_values(decision: BurstDecision) -> tuple[Any, ...]:
    """A BurstDecision's values in the order of BURST_DECISION_COLUMNS (burst_decision's
    inverse): the flag as 0 or 1, as the stores keep flags."""
    return (
        decision.product_id, decision.start_us, decision.end_us, int(decision.confirmed),
        decision.actor, decision.reason, decision.decided_at_us,
    )  # fmt: skip


def upsert_vote(table: str) -> str:
    """The ON CONFLICT clause by which a vote replaces the one in force on its key (newer
    wins was decided before): every column but the key's takes the new row's value."""
    key, rest = vote_columns(table)[:2], vote_columns(table)[2:]
    updates = ", ".join(f"{c} = excluded.{c}" for c in rest)
    return f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"


def check_recount(mismatches: Sequence[Any]) -> None:
    """Refuses an import (StoreError, not a fault) whose aggregates differ from a recount:
    ``mismatches`` are the rows RECOUNT_MISMATCHES_* found."""
    if mismatches:
        raise StoreError(
            f"imported aggregates differ from a recount for {len(mismatches)} products",
            fault=False,
        )


def event_hash(event_id: str) -> bytes:
    """What the event log keeps of an erased event: a one-way hash of its id."""
    return hashlib.sha256(event_id.encode("utf-8")).digest()


def product_row(values: Sequence[Any]) -> ProductRow:
    """A ProductRow from the columns of tables.PRODUCT_COLUMNS."""
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
        active=bool(values[13]),
        owned=bool(values[14]),
        more_categories=values[15],
        display=values[16],
        shares=values[17],
        listed_at_us=values[18],
        comments=values[19],
        sentiment_sum=values[20],
        sentiment_squares=values[21],
        polls_shown=values[22],
        polls_won=values[23],
    )


def catalogue_values(row: ProductRow) -> tuple[Any, ...]:
    """What a catalogue change sets of a product's row, then its idx: the parameters of
    each store's UPDATE (category, active, more_categories, display, seq; owned = 1)."""
    return (row.category, int(row.active), row.more_categories, row.display, row.seq, row.idx)


def product_values(row: ProductRow) -> tuple[Any, ...]:
    """A ProductRow's values in the order of tables.PRODUCT_COLUMNS (product_row's inverse)."""
    return (
        row.idx, row.product_id, row.category, row.rating_count, row.star_sum, *row.histogram,
        row.likes, row.dislikes, row.seq, int(row.active), int(row.owned), row.more_categories,
        row.display, row.shares, row.listed_at_us, row.comments, row.sentiment_sum,
        row.sentiment_squares, row.polls_shown, row.polls_won,
    )  # fmt: skip


def apply_jobs(
    jobs: Sequence[Job],
    seq: int,
    apply_events: Callable[[EventBatch, int], tuple[WriteResults, int]],
    erase: Callable[[str, int], ErasureResult],
    upsert: Callable[[Sequence[CatalogueEntry], int], CatalogueResult],
) -> tuple[list[JobResult], int]:
    """Runs a group's jobs in order inside a store's transaction: consecutive event jobs in
    one bulk ``apply_events(events, seq)``, each erasure by ``erase(user_id, next seq)``,
    each catalogue upsert by ``upsert(entries, next seq)``. Returns one result per job and
    the last sequence number taken."""
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
        elif isinstance(job, CatalogueUpsert):
            flush()
            upserted = upsert(job.entries, seq + 1)
            seq = max(seq, upserted.seq)
            results.append(upserted)
        else:
            pending.append(job)
    flush()
    return results, seq


def catalogue_changes(
    entries: Sequence[CatalogueEntry],
    current: Mapping[str, ProductRow],
    first_idx: int,
    seq: int,
    now_us: int,
) -> tuple[list[ProductRow], list[ProductRow], int]:
    """The rows the entries make: of the products not known yet (idx numbered on from
    ``first_idx``, no feedback, listed at ``now_us``), of the known ones they change
    (categories, listing, display, or the shop taking the product over), and how many
    change nothing. What an entry leaves unset, the product keeps; a changed row takes
    ``seq``. ``current``: the known products' rows."""
    created: list[ProductRow] = []
    updated: list[ProductRow] = []
    for entry in entries:
        held = current.get(entry.product_id)
        if held is None:
            held = ProductRow(first_idx + len(created), entry.product_id, "", 0, 0,
                              (0, 0, 0, 0, 0), 0, 0, seq, listed_at_us=now_us)  # fmt: skip
            created.append(_resolved(entry, held, seq))
            continue
        row = _resolved(entry, held, seq)
        if row._replace(seq=held.seq) != held:
            updated.append(row)
    return created, updated, len(entries) - len(created) - len(updated)


def _resolved(entry: CatalogueEntry, held: ProductRow, seq: int) -> ProductRow:
    """The product's row once the entry is applied (the shop's from then on)."""
    if entry.category is None:
        category, more = held.category, held.more_categories
    else:
        category, more = entry.category, entry.more_text
    return held._replace(
        category=category,
        active=held.active if entry.active is None else entry.active,
        owned=True,
        more_categories=more,
        display=held.display if entry.display is None else entry.display,
        seq=seq,
    )
