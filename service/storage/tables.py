"""The tables both stores hold, described once: each table's columns, in the order the
statements, the export and ProductRow use them. The stores build their column lists
from here; what differs between SQLite and PostgreSQL (types, placeholders, the bulk
forms of a statement) stays with each backend.

The migrations (sqlite/schema.py, postgres/schema.py) keep their own CREATE TABLE text:
a migration is history, and creates what it created when it was written, whatever the
tables become later. tests/storage/test_schema_migration.py checks that the tables the
migrations of either backend make have exactly the columns described here.
"""

from __future__ import annotations

# Each vote table, and the column holding the vote's value (a share's is 1, a comment's
# its sentiment score in 1/10,000, a poll vote's the product chosen).
VOTES: dict[str, str] = {
    "ratings": "stars",
    "likes": "value",
    "shares": "value",
    "comments": "score",
    "poll_votes": "chosen",
}
# What a vote is one per, with the user: the product, but for a poll vote the poll.
VOTE_KEYS: dict[str, str] = {"poll_votes": "poll_id"}
VOTE_TABLES = tuple(VOTES)
# The vote tables time-decayed sums are made of (service/app/decayed.py).
DECAYED_VOTE_TABLES = ("ratings", "likes", "shares")
# What a vote table keeps after the columns every vote has.
_MORE_COLUMNS: dict[str, tuple[str, ...]] = {
    "ratings": ("verified",),
    "likes": ("verified",),
    "shares": ("channel",),
    "comments": ("channel", "language", "analyzer"),
    "poll_votes": ("channel", "shown"),
}


def vote_columns(table: str) -> tuple[str, ...]:
    """The columns of a vote table (one of VOTES); a rating and a like also keep whether
    it is a verified purchase (0 or 1: issue 23), a share its channel, a
    comment its channel, language and analyzer (never its text), a poll vote its channel
    and the products shown (a JSON array of ids)."""
    key = VOTE_KEYS.get(table, "product_id")
    columns = (key, "user_id", VOTES[table], "occurred_at_us", "event_id")
    return (*columns, *_MORE_COLUMNS.get(table, ()))


# Every table but the migrations' own, with its columns.
TABLES: dict[str, tuple[str, ...]] = {
    "products": (
        "idx",
        "product_id",
        "category",
        "rating_count",
        "star_sum",
        "s1",
        "s2",
        "s3",
        "s4",
        "s5",
        "likes",
        "dislikes",
        "seq",
        "active",
        "owned",
        "more_categories",
        "display",
        "shares",
        "listed_at_us",
        "comments",
        "sentiment_sum",
        "sentiment_squares",
        "polls_shown",
        "polls_won",
    ),
    **{table: vote_columns(table) for table in VOTE_TABLES},
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
        "channel",
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
    # An admin's decision on a burst of votes (BurstDecision), numbered in the order made.
    "burst_decisions": (
        "id",
        "product_id",
        "start_us",
        "end_us",
        "confirmed",
        "actor",
        "reason",
        "decided_at_us",
    ),
    "meta": ("key", "value"),
}

# The columns of a product row, in the order ProductRow and the export use.
PRODUCT_COLUMNS = ", ".join(TABLES["products"])
# The columns of the event log, in the order of voting.py's Plan.events.
EVENT_COLUMNS = ", ".join(TABLES["events"])

# Tables an export carries, with their columns, in an order that restores cleanly.
EXPORT_TABLES: dict[str, tuple[str, ...]] = {
    table: TABLES[table]
    for table in (
        "products",
        "ratings",
        "likes",
        "shares",
        "comments",
        "poll_votes",
        "events",
        "erased_events",
        "weights_history",
        "burst_decisions",
    )
}
