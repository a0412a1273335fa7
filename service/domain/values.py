"""Domain values passed between the servicers, the application and the store."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, compress
from operator import attrgetter
from typing import Any, NamedTuple, overload


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
    verified: bool = False  # a verified purchase: counts in full in a burst (issue 23)


@dataclass(frozen=True, slots=True)
class LikeEvent:
    event_id: str
    product_id: str
    user_id: str
    value: LikeValue
    occurred_at_us: int
    verified: bool = False  # a verified purchase, as RatingEvent's


@dataclass(frozen=True, slots=True)
class ShareEvent:
    event_id: str
    product_id: str
    user_id: str
    occurred_at_us: int
    channel: str = ""


# A comment's sentiment score is kept as an integer in 1/SENTIMENT_SCALE: -SCALE to SCALE
# (VADER's compound score has four decimals).
SENTIMENT_SCALE = 10_000


@dataclass(frozen=True, slots=True)
class CommentEvent:
    """A comment, its text already scored (the text is not kept)."""

    event_id: str
    product_id: str
    user_id: str
    score: int  # sentiment in 1/SENTIMENT_SCALE, -SENTIMENT_SCALE to SENTIMENT_SCALE
    occurred_at_us: int
    channel: str = ""
    language: str = ""  # the text's language tag ("" : not said, with a sender's score)
    analyzer: str = ""  # what scored it, e.g. "vader-3.3.2"; "sender" for a sent score


@dataclass(frozen=True, slots=True)
class PollVoteEvent:
    """A vote in a poll: the products it showed (2 to 10 distinct ids) and the one the
    user chose. A user has one vote per poll."""

    event_id: str
    poll_id: str
    user_id: str
    shown: tuple[str, ...]
    chosen: str  # one of shown
    occurred_at_us: int
    channel: str = ""

    @property
    def product_id(self) -> str:
        """The product chosen: the one the event log names."""
        return self.chosen


Event = RatingEvent | LikeEvent | ShareEvent | CommentEvent | PollVoteEvent

# The kinds of event, as the event log's ``kind`` column holds them.
RATING, LIKE, SHARE, COMMENT, POLL_VOTE = "rating", "like", "share", "comment", "poll_vote"


class EventBatch(Sequence[Event]):
    """Events as columns, in order: what validation produces and the stores read in bulk.

    Also a sequence of RatingEvent, LikeEvent, ShareEvent, CommentEvent and
    PollVoteEvent, each built when asked for. ``kinds`` holds each event's kind (RATING,
    LIKE, SHARE, COMMENT, POLL_VOTE); ``values`` the stars of a rating, the LikeValue of a
    like, 1 for a share, a comment's score, the number of products a poll vote's poll
    showed; ``product_ids`` a poll vote's product chosen; ``categories`` is "" but for
    ratings, ``channels`` "" but for shares, comments and poll votes, ``languages`` and
    ``analyzers`` "" but for comments, ``poll_ids`` "" and ``shown`` () but for poll votes,
    ``verified`` 1 for a rating or like of a verified purchase, else 0 (as stored).
    """

    __slots__ = (
        "analyzers",
        "categories",
        "channels",
        "event_ids",
        "kinds",
        "languages",
        "occurred_at_us",
        "poll_ids",
        "product_ids",
        "shown",
        "user_ids",
        "values",
        "verified",
    )

    def __init__(
        self,
        event_ids: list[str],
        product_ids: list[str],
        user_ids: list[str],
        values: list[int],
        occurred_at_us: list[int],
        categories: list[str],
        kinds: list[str],
        channels: list[str] | None = None,
        languages: list[str] | None = None,
        analyzers: list[str] | None = None,
        poll_ids: list[str] | None = None,
        shown: list[tuple[str, ...]] | None = None,
        verified: list[int] | None = None,
    ) -> None:
        self.event_ids = event_ids
        self.product_ids = product_ids
        self.user_ids = user_ids
        self.values = values
        self.occurred_at_us = occurred_at_us
        self.categories = categories
        self.kinds = kinds
        self.channels = [""] * len(event_ids) if channels is None else channels
        self.languages = [""] * len(event_ids) if languages is None else languages
        self.analyzers = [""] * len(event_ids) if analyzers is None else analyzers
        self.poll_ids = [""] * len(event_ids) if poll_ids is None else poll_ids
        self.shown: list[tuple[str, ...]] = [()] * len(event_ids) if shown is None else shown
        self.verified = [0] * len(event_ids) if verified is None else verified

    def columns(self) -> tuple[list[str], list[str], list[str], list[int], list[int], list[str]]:
        """event_ids, product_ids, user_ids, values, occurred_at_us, categories."""
        return (
            self.event_ids,
            self.product_ids,
            self.user_ids,
            self.values,
            self.occurred_at_us,
            self.categories,
        )

    def __len__(self) -> int:
        return len(self.event_ids)

    @overload
    def __getitem__(self, index: int) -> Event: ...
    @overload
    def __getitem__(self, index: slice) -> EventBatch: ...
    def __getitem__(self, index: int | slice) -> Event | EventBatch:
        if isinstance(index, slice):
            return self._each_column(lambda column: column[index])
        event_id, product_id, user_id = (
            self.event_ids[index],
            self.product_ids[index],
            self.user_ids[index],
        )
        value, occurred, kind = self.values[index], self.occurred_at_us[index], self.kinds[index]
        if kind == RATING:
            return RatingEvent(
                event_id, product_id, user_id, value, occurred, self.categories[index],
                bool(self.verified[index]),
            )  # fmt: skip
        if kind == SHARE:
            return ShareEvent(event_id, product_id, user_id, occurred, self.channels[index])
        if kind == COMMENT:
            return CommentEvent(
                event_id,
                product_id,
                user_id,
                value,
                occurred,
                self.channels[index],
                self.languages[index],
                self.analyzers[index],
            )
        if kind == POLL_VOTE:
            return PollVoteEvent(
                event_id,
                self.poll_ids[index],
                user_id,
                self.shown[index],
                product_id,
                occurred,
                self.channels[index],
            )
        return LikeEvent(
            event_id, product_id, user_id, LikeValue(value), occurred, bool(self.verified[index])
        )

    def __iter__(self) -> Iterator[Event]:
        return map(self.__getitem__, range(len(self.event_ids)))

    def without_categories(self) -> EventBatch:
        """The same events, none naming a category."""
        columns = {name: getattr(self, name) for name in _COLUMNS}
        columns["categories"] = [""] * len(self.event_ids)
        return EventBatch(**columns)

    def select(self, kind: str) -> EventBatch:
        """The events of one kind only, in order: this batch itself if all are of that
        kind (its columns then shared: read them, do not change them)."""
        count = self.kinds.count(kind)
        if count == len(self.kinds):
            return self
        if not count:
            return self._each_column(lambda column: [])
        keep = [k == kind for k in self.kinds]
        return self._each_column(lambda column: list(compress(column, keep)))

    def _each_column(self, take: Callable[[list[Any]], list[Any]]) -> EventBatch:
        return EventBatch(**{name: take(getattr(self, name)) for name in _COLUMNS})

    @classmethod
    def of(cls, events: Iterable[Event]) -> EventBatch:
        """The events as a batch (the same object if they are one already)."""
        if isinstance(events, EventBatch):
            return events
        batch = cls([], [], [], [], [], [], [], [], [], [], [], [], [])
        for event in events:
            batch.event_ids.append(event.event_id)
            batch.product_ids.append(event.product_id)
            batch.user_ids.append(event.user_id)
            batch.occurred_at_us.append(event.occurred_at_us)
            language = analyzer = poll_id = ""
            shown: tuple[str, ...] = ()
            verified = 0
            if isinstance(event, RatingEvent):
                verified = int(event.verified)
                batch.values.append(event.stars)
                batch.categories.append(event.category)
                batch.kinds.append(RATING)
                batch.channels.append("")
            elif isinstance(event, ShareEvent):
                batch.values.append(1)
                batch.categories.append("")
                batch.kinds.append(SHARE)
                batch.channels.append(event.channel)
            elif isinstance(event, CommentEvent):
                batch.values.append(event.score)
                batch.categories.append("")
                batch.kinds.append(COMMENT)
                batch.channels.append(event.channel)
                language, analyzer = event.language, event.analyzer
            elif isinstance(event, PollVoteEvent):
                batch.values.append(len(event.shown))
                batch.categories.append("")
                batch.kinds.append(POLL_VOTE)
                batch.channels.append(event.channel)
                poll_id, shown = event.poll_id, event.shown
            else:
                verified = int(event.verified)
                batch.values.append(int(event.value))
                batch.categories.append("")
                batch.kinds.append(LIKE)
                batch.channels.append("")
            batch.verified.append(verified)
            batch.languages.append(language)
            batch.analyzers.append(analyzer)
            batch.poll_ids.append(poll_id)
            batch.shown.append(shown)
        return batch

    @classmethod
    def concat(cls, parts: Sequence[Iterable[Event]]) -> EventBatch:
        """Several sequences of events as one batch, in order."""
        if len(parts) == 1:
            return cls.of(parts[0])
        batches = [cls.of(part) for part in parts]
        return cls(
            **{name: list(chain.from_iterable(map(attrgetter(name), batches))) for name in _COLUMNS}
        )


_COLUMNS = EventBatch.__slots__


@dataclass(frozen=True, slots=True)
class WriteResult:
    outcome: Outcome
    seq: int  # 0 for DUPLICATE


class WriteResults(Sequence[WriteResult]):
    """The results of a sequence of events, as columns (a WriteResult built when asked for)."""

    __slots__ = ("outcomes", "seqs")

    def __init__(self, outcomes: list[Outcome], seqs: list[int]) -> None:
        self.outcomes = outcomes
        self.seqs = seqs  # 0 for DUPLICATE

    def __len__(self) -> int:
        return len(self.outcomes)

    @overload
    def __getitem__(self, index: int) -> WriteResult: ...
    @overload
    def __getitem__(self, index: slice) -> WriteResults: ...
    def __getitem__(self, index: int | slice) -> WriteResult | WriteResults:
        if isinstance(index, slice):
            return WriteResults(self.outcomes[index], self.seqs[index])
        return WriteResult(self.outcomes[index], self.seqs[index])

    def __iter__(self) -> Iterator[WriteResult]:
        return map(WriteResult, self.outcomes, self.seqs)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, WriteResults):
            return self.outcomes == other.outcomes and self.seqs == other.seqs
        if isinstance(other, Sequence):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"WriteResults({list(self)!r})"


class ProductRow(NamedTuple):  # (made per product and vote written: a tuple is quicker)
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
    active: bool = True  # False: the shop's catalogue delisted it (Top leaves it out)
    owned: bool = False  # the shop's catalogue defines it: events never set its category
    more_categories: str = ""  # the catalogue's other categories, joined by MORE_SEPARATOR
    display: str = ""  # the catalogue's display fields, as a JSON object ("" for none)
    shares: int = 0  # users who shared it
    listed_at_us: int = 0  # when first seen: its earliest event, or the shop's listing
    comments: int = 0  # users whose comment on it is in force
    sentiment_sum: int = 0  # their scores' sum, in 1/SENTIMENT_SCALE
    sentiment_squares: int = 0  # the sum of their squares, in 1/SENTIMENT_SCALE²
    polls_shown: int = 0  # poll votes in force whose poll showed it
    polls_won: int = 0  # those that chose it


class VoteChange(NamedTuple):  # (made per product and vote written: a tuple is quicker)
    """One user's vote on a product replaced (or removed): what time-decayed sums need."""

    product_idx: int
    kind: str  # RATING (value = stars), LIKE (1, -1, or 0 for cleared), SHARE (1), COMMENT
    old_value: int | None  # None: the user had no vote of this kind
    old_time_us: int
    new_value: int | None  # None: the vote was removed
    new_time_us: int
    old_channel: str = ""  # a share's or comment's channel (channel weights), else ""
    new_channel: str = ""
    user_id: str = ""  # whose vote (the manipulation defences' weight of it)


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
    shares_removed: int = 0
    comments_removed: int = 0
    poll_votes_removed: int = 0


# Joins a product's other categories in one column (categories are printable: never in one).
MORE_SEPARATOR = "\n"


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """What a shop says of one product: its category ("" for none) with the other
    categories it is listed in, and whether it is listed at all. None: keep what the
    product has (a new product: no category, listed); ``more_categories`` go with
    ``category``. Feedback events never change the categories of a product the
    catalogue holds."""

    product_id: str
    category: str | None = None
    active: bool | None = None
    more_categories: tuple[str, ...] = ()
    display: str | None = None  # the display fields as display_text makes them

    @property
    def more_text(self) -> str:
        """The other categories as one column's value."""
        return MORE_SEPARATOR.join(self.more_categories)


def display_text(fields: dict[str, str]) -> str:
    """Display fields as one column's value: a JSON object, keys in order ("" for none)."""
    return (
        json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if fields
        else ""
    )


def display_fields(text: str) -> dict[str, str]:
    """A column's value of display fields as the fields (display_text's inverse)."""
    fields: dict[str, str] = json.loads(text) if text else {}
    return fields


@dataclass(frozen=True, slots=True)
class CatalogueUpsert:
    """Set some products as the shop's catalogue says (a write job, like an Erasure)."""

    entries: tuple[CatalogueEntry, ...]


@dataclass(frozen=True, slots=True)
class CatalogueResult:
    created: int  # products not known before
    updated: int  # products whose categories, listing or display changed, or that became
    # the shop's
    unchanged: int
    seq: int  # 0 when nothing changed
