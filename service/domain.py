"""Domain values passed between the servicers, the application and the store."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Outcome(enum.IntEnum):
    APPLIED = 1
    DUPLICATE = 2
    SUPERSEDED = 3


class LikeValue(enum.IntEnum):
    """What a like event sets the user's vote to (stored as this integer)."""

    DISLIKE = -1
    CLEAR = 0
    LIKE = 1


@dataclass(frozen=True, slots=True)
class RatingEvent:
    event_id: str
    product_id: str
    user_id: str
    stars: int
    occurred_at_us: int
    category: str = ""


@dataclass(frozen=True, slots=True)
class LikeEvent:
    event_id: str
    product_id: str
    user_id: str
    value: LikeValue
    occurred_at_us: int


Event = RatingEvent | LikeEvent


@dataclass(frozen=True, slots=True)
class WriteResult:
    outcome: Outcome
    seq: int  # 0 for DUPLICATE


@dataclass(frozen=True, slots=True)
class ProductRow:
    """A product's aggregates as committed; what the in-memory catalogue mirrors."""

    idx: int
    product_id: str
    category: str
    rating_count: int
    star_sum: int
    histogram: tuple[int, int, int, int, int]
    likes: int
    dislikes: int
    seq: int


@dataclass(frozen=True, slots=True)
class VoteChange:
    """One user's vote on a product replaced (or removed): what time-decayed sums need."""

    product_idx: int
    kind: str  # "rating" (value = stars) or "like" (value = 1, -1, or 0 for cleared)
    old_value: int | None  # None: the user had no vote of this kind
    old_time_us: int
    new_value: int | None  # None: the vote was removed
    new_time_us: int


@dataclass(frozen=True, slots=True)
class Erasure:
    """Forget a user: remove every vote and erase the user's events from the event log."""

    user_id: str


@dataclass(frozen=True, slots=True)
class ErasureResult:
    ratings_removed: int
    likes_removed: int  # likes and dislikes (a cleared vote is removed but not counted)
    events_erased: int
    seq: int  # 0 when there was nothing to erase
