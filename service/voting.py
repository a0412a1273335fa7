"""What a group of events does to the votes and aggregates: decided here, stored elsewhere.

Pure: the stores look up which event ids are known and which votes are in force,
call :func:`plan_events`, and write what it returns in their own SQL. So the
rules (DUPLICATE, newer wins by ``(occurred_at, event_id)``, SUPERSEDED, a
CLEAR that keeps its place in time, aggregates moved by deltas) are written once
for every backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from service.domain import (
    ErasureResult,
    Event,
    Outcome,
    ProductRow,
    RatingEvent,
    VoteChange,
    WriteResult,
)

# A vote in force: (value, occurred_at_us, event_id); value is stars, or 1/-1/0 for likes.
Vote = tuple[int, int, str]
VoteKey = tuple[str, str]  # (product_id, user_id)

# A vote replaced or removed: (product_id, kind, old value or None, old time, new value or
# None when removed, new time); with the product's idx, a VoteChange (decayed sums).
Change = tuple[str, str, int | None, int, int | None, int]

# Positions in a product's delta: rating_count, star_sum, s1..s5, likes, dislikes.
DELTA_SIZE = 9
LIKES, DISLIKES = 7, 8


@dataclass
class Plan:
    """The writes a group of events needs, in the order they were decided."""

    results: list[WriteResult] = field(default_factory=list)
    # (event_id, seq, kind, product_id, user_id, value, occurred_at_us, outcome, recorded_at_us)
    event_rows: list[tuple[str, int, str, str, str, int, int, str, int]] = field(
        default_factory=list
    )
    ratings: dict[VoteKey, Vote] = field(default_factory=dict)  # final state of each vote
    likes: dict[VoteKey, Vote] = field(default_factory=dict)
    deltas: dict[str, list[int]] = field(default_factory=dict)  # product -> DELTA_SIZE ints
    categories: dict[str, str] = field(default_factory=dict)  # latest non-empty category
    product_seq: dict[str, int] = field(default_factory=dict)  # sequence of the last change
    changes: list[Change] = field(default_factory=list)  # every vote replaced, in order
    seq: int = 0  # the last sequence number taken

    def product_updates(self) -> list[tuple[str, str, list[int], int]]:
        """(product_id, category or "", delta, seq) per product changed, first changed first."""
        return [
            (p, self.categories.get(p, ""), delta, self.product_seq[p])
            for p, delta in self.deltas.items()
        ]


def rating_keys(events: Iterable[Event]) -> set[VoteKey]:
    return {(e.product_id, e.user_id) for e in events if isinstance(e, RatingEvent)}


def like_keys(events: Iterable[Event]) -> set[VoteKey]:
    return {(e.product_id, e.user_id) for e in events if not isinstance(e, RatingEvent)}


def plan_events(
    events: Sequence[Event],
    known: set[str],
    ratings: dict[VoteKey, Vote],
    likes: dict[VoteKey, Vote],
    seq: int,
    recorded_at_us: int,
) -> Plan:
    """Decides every event in order. ``known`` holds the event ids already recorded (or
    erased), ``ratings``/``likes`` the votes in force for the events' keys; all three are
    updated as the events are decided. Each recorded event takes the next sequence number
    after ``seq``."""
    plan = Plan(seq=seq)
    for event in events:
        if event.event_id in known:
            plan.results.append(WriteResult(Outcome.DUPLICATE, 0))
            continue
        known.add(event.event_id)
        seq += 1
        is_rating = isinstance(event, RatingEvent)
        if isinstance(event, RatingEvent):
            kind, value, in_force, final = "rating", event.stars, ratings, plan.ratings
        else:
            kind, value, in_force, final = "like", int(event.value), likes, plan.likes
        key = (event.product_id, event.user_id)
        current = in_force.get(key)
        newer = current is None or (current[1], current[2]) < (
            event.occurred_at_us,
            event.event_id,
        )
        outcome = Outcome.APPLIED if newer else Outcome.SUPERSEDED
        plan.event_rows.append(
            (
                event.event_id,
                seq,
                kind,
                event.product_id,
                event.user_id,
                value,
                event.occurred_at_us,
                outcome.name,
                recorded_at_us,
            )
        )
        plan.results.append(WriteResult(outcome, seq))
        if not newer:
            continue
        in_force[key] = final[key] = (value, event.occurred_at_us, event.event_id)
        old = None if current is None else current[0]
        product = event.product_id
        delta = plan.deltas.get(product)
        if delta is None:
            delta = plan.deltas[product] = [0] * DELTA_SIZE
        if is_rating:
            assert isinstance(event, RatingEvent)
            if event.category:
                plan.categories[product] = event.category
            delta[1] += value
            delta[1 + value] += 1
            if old is None:
                delta[0] += 1
            else:
                delta[1] -= old
                delta[1 + old] -= 1
        else:
            delta[LIKES] += (value == 1) - (old == 1)
            delta[DISLIKES] += (value == -1) - (old == -1)
        plan.product_seq[product] = seq
        old_time = 0 if current is None else current[1]
        plan.changes.append((product, kind, old, old_time, value, event.occurred_at_us))
    plan.seq = seq
    return plan


def erasure_deltas(
    ratings: Sequence[tuple[str, int, int]], likes: Sequence[tuple[str, int, int]]
) -> tuple[dict[str, list[int]], list[Change]]:
    """What removing votes does: per product the (negative) delta, and the change of each
    vote removed. Votes are (product_id, value, occurred_at_us)."""
    deltas: dict[str, list[int]] = {}
    removed: list[Change] = []
    for product_id, stars, occurred in ratings:
        delta = deltas.setdefault(product_id, [0] * DELTA_SIZE)
        delta[0] -= 1
        delta[1] -= stars
        delta[1 + stars] -= 1
        removed.append((product_id, "rating", stars, occurred, None, 0))
    for product_id, value, occurred in likes:
        delta = deltas.setdefault(product_id, [0] * DELTA_SIZE)
        delta[LIKES] -= value == 1
        delta[DISLIKES] -= value == -1
        removed.append((product_id, "like", value, occurred, None, 0))
    return deltas, removed


def erasure_result(
    ratings: Sequence[tuple[str, int, int]],
    likes: Sequence[tuple[str, int, int]],
    events_erased: int,
    seq: int,
) -> ErasureResult:
    """What an erasure reports: a cleared like is removed but not counted."""
    return ErasureResult(
        ratings_removed=len(ratings),
        likes_removed=sum(1 for row in likes if row[1] != 0),
        events_erased=events_erased,
        seq=seq,
    )


def vote_changes(changes: Iterable[Change], products: Mapping[str, ProductRow]) -> list[VoteChange]:
    """The changes with each product's idx, from the product rows as written."""
    return [
        VoteChange(products[product].idx, kind, old, old_time, new, new_time)
        for product, kind, old, old_time, new, new_time in changes
    ]
