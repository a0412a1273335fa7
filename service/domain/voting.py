"""What a group of events does to the votes and aggregates: decided here, stored elsewhere.

Pure: the stores look up which event ids are known and which votes are in force,
call :func:`plan_events`, and write what it returns in their own SQL. So the
rules (DUPLICATE, newer wins by ``(occurred_at, event_id)``, SUPERSEDED, a
CLEAR that keeps its place in time, aggregates moved by deltas) are written once
for every backend.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, compress, repeat
from operator import add
from typing import Any, overload

from reviewrank.service.domain.values import (
    COMMENT,
    LIKE,
    POLL_VOTE,
    RATING,
    SHARE,
    ErasureResult,
    Event,
    EventBatch,
    Outcome,
    ProductRow,
    VoteChange,
    WriteResults,
)

# A vote in force: (value, occurred_at_us, event_id, verified); value is stars, 1/-1/0 for
# likes, verified their verified purchase flag (0 or 1); 1 for a share, whose vote holds
# its channel instead: (1, occurred_at_us, event_id, channel), a comment's score, its vote
# holding (score, occurred_at_us, event_id, channel, language, analyzer), a poll vote's
# (chosen product, occurred_at_us, event_id, channel, shown: the products' ids as a JSON
# array).
Vote = tuple[Any, ...]
VoteKey = tuple[str, str]  # (product_id, user_id); a poll vote's (poll_id, user_id)
# A poll vote as the poll strengths need it: (products shown, product chosen).
Ballot = tuple[tuple[str, ...], str]

# A vote replaced or removed: (product_id, kind, old value or None, old time, new value or
# None when removed, new time, old channel, new channel: a share's or comment's, else ""); with the
# product's idx, a VoteChange (decayed sums).
Change = tuple[str, str, int | None, int, int | None, int, str, str, str]

# Positions in a product's delta: rating_count, star_sum, s1..s5, likes, dislikes, shares,
# comments, sentiment_sum, sentiment_squares, polls_shown, polls_won.
DELTA_SIZE = 15
LIKES, DISLIKES, SHARES, COMMENTS, SENTIMENT_SUM, SENTIMENT_SQUARES = 7, 8, 9, 10, 11, 12
# The poll counts come last: a delta's entries before POLLS_SHOWN are every other count
# (_deltas_in_event_order and the SQLite writer's poll-count rows rely on it).
POLLS_SHOWN, POLLS_WON = DELTA_SIZE - 2, DELTA_SIZE - 1
# Rows as columns, one list per column: events rows are (event_id, seq, kind, product_id,
# user_id, value, occurred_at_us, outcome, recorded_at_us, channel), vote rows
# (product_id, user_id, value, occurred_at_us, event_id), a rating's and a like's with
# its verified flag after, a share's with its channel after, a comment's with its channel,
# language and analyzer, a poll vote's (poll_id, user_id, chosen, occurred_at_us,
# event_id, channel, shown). Columns bind in bulk with no tuple per row.
Columns = list[list[Any]]
EVENT_COLUMNS, VOTE_COLUMNS, SHARE_COLUMNS, COMMENT_COLUMNS, POLL_COLUMNS = 10, 6, 6, 8, 7
# A "first seen" time later than any listing time: the product's listing time stays
# (an erasure moves aggregates only).
KEEP_LISTING_TIME = 2**62


def _no_rows(width: int) -> Columns:
    return [[] for _ in range(width)]


@dataclass
class Plan:
    """The writes a group of events needs, in the order they were decided."""

    results: WriteResults = field(default_factory=lambda: WriteResults([], []))
    events: Columns = field(default_factory=lambda: _no_rows(EVENT_COLUMNS))  # each recorded
    ratings: Columns = field(default_factory=lambda: _no_rows(VOTE_COLUMNS))  # final votes
    likes: Columns = field(default_factory=lambda: _no_rows(VOTE_COLUMNS))
    shares: Columns = field(default_factory=lambda: _no_rows(SHARE_COLUMNS))
    comments: Columns = field(default_factory=lambda: _no_rows(COMMENT_COLUMNS))
    poll_votes: Columns = field(default_factory=lambda: _no_rows(POLL_COLUMNS))
    deltas: dict[str, list[int]] = field(default_factory=dict)  # product -> DELTA_SIZE ints
    categories: dict[str, str] = field(default_factory=dict)  # first non-empty category
    product_seq: dict[str, int] = field(default_factory=dict)  # sequence of the last change
    changes: Iterable[Change] = ()  # every vote replaced, in order (but poll votes)
    seq: int = 0  # the last sequence number taken

    def product_updates(self) -> list[tuple[str, str, list[int], int, int]]:
        """(product_id, category or "", delta, seq, first seen) per product changed, first
        changed first. First seen: the earliest time (µs) of the product's events recorded
        here, no later than when they were recorded; a product's ``listed_at_us`` is the
        earliest such time (the exposure of its share rate, ranking.shares)."""
        first = self.first_seen()
        recorded = min(self.events[8], default=0)  # (a product a poll only showed)
        return [
            (p, self.categories.get(p, ""), delta, self.product_seq[p], first.get(p, recorded))
            for p, delta in self.deltas.items()
        ]

    def first_seen(self) -> dict[str, int]:
        """Each product's earliest event time in the plan (µs), capped at its recording."""
        products, times, recorded = self.events[3], self.events[6], self.events[8]
        if not products:
            return {}
        first: dict[str, int] = dict.fromkeys(products, min(recorded))
        for product, time in zip(products, times, strict=True):
            if time < first[product]:  # noqa: PLR1730 (min() made it 2.3x slower: 170 µs)
                first[product] = time
        return first


def _first_categories(products: list[str], categories: list[str]) -> dict[str, str]:
    """Each product's first non-empty category (an event only fills one in)."""
    first: dict[str, str] = {}
    for product, category in zip(products, categories, strict=True):
        if category:
            first.setdefault(product, category)
    return first


def _columns(rows: Iterable[tuple[Any, ...]], width: int) -> Columns:
    columns = [list(column) for column in zip(*rows, strict=True)]
    return columns or _no_rows(width)


def vote_columns(votes: Mapping[VoteKey, Vote], width: int = VOTE_COLUMNS) -> Columns:
    """The columns of each vote's row (product_id, user_id, value, occurred_at_us, event_id,
    and a rating's or like's verified flag, a share's channel, a comment's channel,
    language and analyzer)."""
    return _columns(map(add, votes.keys(), votes.values()), width)  # key + vote


def _keys(batch: EventBatch) -> zip[VoteKey]:
    return zip(batch.product_ids, batch.user_ids, strict=True)


def _vote_columns(batch: EventBatch, kind: str = RATING) -> Columns:
    """Each event's vote row, as columns (each key once in the batch)."""
    columns: Columns = [
        batch.product_ids, batch.user_ids, batch.values, batch.occurred_at_us, batch.event_ids
    ]  # fmt: skip
    if kind == SHARE:
        columns.append(batch.channels)
    elif kind == COMMENT:
        columns += [batch.channels, batch.languages, batch.analyzers]
    else:  # a rating or a like
        columns.append(batch.verified)
    return columns


def keys_of(events: Iterable[Event], kind: str) -> set[VoteKey]:
    """The (product, user) keys of the events of one kind."""
    batch = EventBatch.of(events)
    return set(compress(_keys(batch), [k == kind for k in batch.kinds]))


def rating_keys(events: Iterable[Event]) -> set[VoteKey]:
    return keys_of(events, RATING)


def like_keys(events: Iterable[Event]) -> set[VoteKey]:
    return keys_of(events, LIKE)


def share_keys(events: Iterable[Event]) -> set[VoteKey]:
    return keys_of(events, SHARE)


def comment_keys(events: Iterable[Event]) -> set[VoteKey]:
    return keys_of(events, COMMENT)


def poll_vote_keys(events: Iterable[Event]) -> set[VoteKey]:
    """The (poll_id, user_id) keys of the poll votes."""
    batch = EventBatch.of(events)
    return {
        (poll, user)
        for poll, user, kind in zip(batch.poll_ids, batch.user_ids, batch.kinds, strict=True)
        if kind == POLL_VOTE
    }


def shown_text(shown: Sequence[str]) -> str:
    """The products a poll showed as the vote table keeps them: a JSON array of ids.
    Ids are printable, so only a quote or a backslash needs escaping: without one the
    array is joined as it is (json.dumps took 9 ms of a 55 ms batch of 1,000 votes)."""
    for product in shown:
        if '"' in product or "\\" in product:
            return json.dumps(list(shown), ensure_ascii=False, separators=(",", ":"))
    return '["' + '","'.join(shown) + '"]'


def shown_texts(lists: Sequence[Sequence[str]]) -> list[str]:
    """shown_text of each list, joined in bulk when no id needs escaping."""
    every = "".join(chain.from_iterable(lists))
    if '"' in every or "\\" in every:
        return list(map(shown_text, lists))
    return ['["' + joined + '"]' for joined in map('","'.join, lists)]


def shown_of(text: str) -> tuple[str, ...]:
    """shown_text's inverse."""
    return tuple(json.loads(text))


def plan_events(
    events: Sequence[Event],
    known: set[str],
    ratings: dict[VoteKey, Vote],
    likes: dict[VoteKey, Vote],
    seq: int,
    recorded_at_us: int,
    shares: dict[VoteKey, Vote] | None = None,
    comments: dict[VoteKey, Vote] | None = None,
    poll_votes: dict[VoteKey, Vote] | None = None,
) -> Plan:
    """Decides every event in order. ``known`` holds the event ids already recorded (or
    erased), ``ratings``/``likes``/``shares``/``comments``/``poll_votes`` the votes in
    force for the events' keys (all may be changed). Each recorded event takes the next
    sequence number after ``seq``.

    The common case, every event new and the first vote on its key, is decided in bulk
    (plan_new_votes); any other batch one event at a time (plan_one_by_one)."""
    batch = EventBatch.of(events)
    shares = {} if shares is None else shares
    comments = {} if comments is None else comments
    poll_votes = {} if poll_votes is None else poll_votes
    if not (known or ratings or likes or shares or comments or poll_votes) and all_distinct(batch):
        return plan_new_votes(batch, seq, recorded_at_us)
    return plan_one_by_one(
        batch, known, ratings, likes, seq, recorded_at_us, shares, comments, poll_votes
    )


def all_distinct(batch: EventBatch) -> bool:
    """No event id twice in the batch, and no key (kind, product, user) twice, a poll
    vote's key being its poll's: what plan_new_votes needs, beside ids and votes the store
    does not hold yet."""
    n = len(batch)
    keys = batch.product_ids
    if POLL_VOTE in batch.kinds:
        keys = [
            poll if kind == POLL_VOTE else product
            for product, poll, kind in zip(keys, batch.poll_ids, batch.kinds, strict=True)
        ]
    return (
        len(set(batch.event_ids)) == n
        and len(set(zip(keys, batch.user_ids, batch.kinds, strict=True))) == n
    )


def of_keys(votes: Columns, keys: Collection[VoteKey]) -> Columns:
    """The vote rows (as columns) whose key (product_id, user_id) is one of ``keys``."""
    keep = [key in keys for key in zip(votes[0], votes[1], strict=True)]
    return [list(compress(column, keep)) for column in votes]


def plan_new_votes(batch: EventBatch, seq: int, recorded_at_us: int) -> Plan:
    """The plan of events that are all new, each the first vote on its key: every one is
    APPLIED. Decided in bulk; plan_one_by_one decides the same one event at a time."""
    ids, products, users, values, times, _ = batch.columns()
    n = len(ids)
    seqs = list(range(seq + 1, seq + n + 1))
    kinds = batch.kinds
    every_rating = kinds.count(RATING) == n
    rated = batch if every_rating else batch.select(RATING)
    liked = None if every_rating else batch.select(LIKE)
    shared = None if every_rating else batch.select(SHARE)
    commented = None if every_rating else batch.select(COMMENT)
    polled = None if every_rating or POLL_VOTE not in kinds else batch.select(POLL_VOTE)
    outcome, recorded = [Outcome.APPLIED.name] * n, [recorded_at_us] * n
    changes: Iterable[Change] = zip(
        products,
        kinds,
        repeat(None, n),
        repeat(0, n),
        values,
        times,
        repeat("", n),
        batch.channels,
        users,
        strict=True,
    )  # (made tuples only if read: time-decayed sums)
    if polled is None:
        deltas = {product: [0] * DELTA_SIZE for product in dict.fromkeys(products)}
        product_seq = dict(zip(products, seqs, strict=True))
        poll_votes = _no_rows(POLL_COLUMNS)
    else:  # (poll votes are not time-decayed)
        changes = compress(changes, [kind != POLL_VOTE for kind in kinds])
        deltas, product_seq = _deltas_in_event_order(batch, seqs)
        poll_votes = [
            polled.poll_ids, polled.user_ids, polled.product_ids, polled.occurred_at_us,
            polled.event_ids, polled.channels, shown_texts(polled.shown),
        ]  # fmt: skip
    plan = Plan(
        results=WriteResults([Outcome.APPLIED] * n, seqs),
        events=[
            ids,
            seqs,
            kinds,
            products,
            users,
            values,
            times,
            outcome,
            recorded,
            batch.channels,
        ],
        ratings=_vote_columns(rated),
        likes=_no_rows(VOTE_COLUMNS) if liked is None else _vote_columns(liked),
        shares=_no_rows(SHARE_COLUMNS) if shared is None else _vote_columns(shared, SHARE),
        comments=(
            _no_rows(COMMENT_COLUMNS) if commented is None else _vote_columns(commented, COMMENT)
        ),
        poll_votes=poll_votes,
        deltas=deltas,
        categories=_first_categories(rated.product_ids, rated.categories),
        product_seq=product_seq,
        changes=changes,
        seq=seq + n,
    )
    for (product, stars), count in Counter(_keyed_values(rated)).items():
        delta = deltas[product]
        delta[0] += count
        delta[1] += stars * count
        delta[1 + stars] += count
    if liked is not None:
        for (product, value), count in Counter(_keyed_values(liked)).items():
            if value:
                deltas[product][LIKES if value == 1 else DISLIKES] += count
    if shared is not None:
        for product, count in Counter(shared.product_ids).items():
            deltas[product][SHARES] += count
    if commented is not None:
        for product, score in _keyed_values(commented):
            delta = deltas[product]
            delta[COMMENTS] += 1
            delta[SENTIMENT_SUM] += score
            delta[SENTIMENT_SQUARES] += score * score
    return plan


def _deltas_in_event_order(
    batch: EventBatch, seqs: list[int]
) -> tuple[dict[str, list[int]], dict[str, int]]:
    """The products' deltas and sequence numbers of a bulk plan holding poll votes, made
    in event order as plan_one_by_one makes them: a vote touches every product it showed,
    so new products are numbered in that order. The poll votes' counts are moved here;
    the other kinds' start at 0 (plan_new_votes adds them)."""
    kinds, chosen = batch.kinds, batch.product_ids
    if kinds.count(POLL_VOTE) == len(kinds):
        touched, won = batch.shown, Counter(chosen)
    else:  # an event of another kind touches its own product
        touched = [
            shown if kind == POLL_VOTE else (product,)
            for product, kind, shown in zip(chosen, kinds, batch.shown, strict=True)
        ]
        won = Counter(compress(chosen, [kind == POLL_VOTE for kind in kinds]))
    shown_counts = Counter(chain.from_iterable(batch.shown))
    # Each product in the order first touched, with the last event's seq that touched it.
    in_order = chain.from_iterable(touched)
    seq_of_each = chain.from_iterable(map(repeat, seqs, map(len, touched)))
    product_seq = dict(zip(in_order, seq_of_each, strict=True))
    zeros = [0] * POLLS_SHOWN  # (the poll counts come last)
    shown_of, won_of = shown_counts.get, won.get
    deltas = {p: [*zeros, shown_of(p, 0), won_of(p, 0)] for p in product_seq}
    return deltas, product_seq


def _keyed_values(batch: EventBatch) -> zip[tuple[str, int]]:
    return zip(batch.product_ids, batch.values, strict=True)


def plan_one_by_one(
    batch: EventBatch,
    known: set[str],
    ratings: dict[VoteKey, Vote],
    likes: dict[VoteKey, Vote],
    seq: int,
    recorded_at_us: int,
    shares: dict[VoteKey, Vote] | None = None,
    comments: dict[VoteKey, Vote] | None = None,
    poll_votes: dict[VoteKey, Vote] | None = None,
) -> Plan:
    """Decides each event in order: DUPLICATE if its id is known (or seen earlier in the
    batch), else it takes a sequence number and is APPLIED if newer than the vote in
    force on its key, by (occurred_at, event_id), SUPERSEDED if not."""
    plan = Plan(seq=seq)
    outcomes: list[Outcome] = []
    seqs: list[int] = []
    rows: list[tuple[str, int, str, str, str, int, int, str, int, str]] = []
    in_force_of = {
        RATING: ratings,
        LIKE: likes,
        SHARE: {} if shares is None else shares,
        COMMENT: {} if comments is None else comments,
        POLL_VOTE: {} if poll_votes is None else poll_votes,
    }
    final_of: dict[str, dict[VoteKey, Vote]] = {
        RATING: {}, LIKE: {}, SHARE: {}, COMMENT: {}, POLL_VOTE: {}
    }  # fmt: skip
    changes: list[Change] = []
    deltas, categories, product_seq = plan.deltas, plan.categories, plan.product_seq
    applied, superseded, duplicate = Outcome.APPLIED, Outcome.SUPERSEDED, Outcome.DUPLICATE
    columns = (
        *batch.columns(), batch.kinds, batch.channels, batch.languages, batch.analyzers,
        batch.poll_ids, batch.shown, batch.verified,
    )  # fmt: skip
    for (
        event_id, product, user, value, occurred, category, kind, channel, language, analyzer,
        poll, shown, verified,
    ) in zip(*columns, strict=True):  # fmt: skip
        if event_id in known:
            outcomes.append(duplicate)
            seqs.append(0)
            continue
        known.add(event_id)
        seq += 1
        in_force, final = in_force_of[kind], final_of[kind]
        key = (poll, user) if kind == POLL_VOTE else (product, user)
        current = in_force.get(key)
        newer = current is None or (current[1], current[2]) < (occurred, event_id)
        outcome = applied if newer else superseded
        rows.append(
            (event_id, seq, kind, product, user, value, occurred, outcome.name, recorded_at_us,
             channel)
        )  # fmt: skip
        outcomes.append(outcome)
        seqs.append(seq)
        if not newer:
            continue
        if kind == POLL_VOTE:
            vote: Vote = (product, occurred, event_id, channel, shown_text(shown))
            in_force[key] = final[key] = vote
            old_ballot = None if current is None else (shown_of(current[4]), current[0])
            _move_polls(deltas, product_seq, old_ballot, -1, seq)
            _move_polls(deltas, product_seq, (shown, product), 1, seq)
            continue
        if kind == SHARE:
            vote = (value, occurred, event_id, channel)
        elif kind == COMMENT:
            vote = (value, occurred, event_id, channel, language, analyzer)
        else:  # a rating or like: its verified flag replaces the older vote's
            vote = (value, occurred, event_id, verified)
        in_force[key] = final[key] = vote
        delta = deltas.get(product)
        if delta is None:
            delta = deltas[product] = [0] * DELTA_SIZE
        old_channel = ""
        if current is None:
            old, old_time = None, 0
        else:
            old, old_time = current[0], current[1]
            if kind in (SHARE, COMMENT):
                old_channel = current[3]
        if kind == RATING:
            if category:  # the first in the group: an event only fills in a category
                categories.setdefault(product, category)
            delta[1] += value
            delta[1 + value] += 1
            if old is None:
                delta[0] += 1
            else:
                delta[1] -= old
                delta[1 + old] -= 1
        elif kind == LIKE:
            delta[LIKES] += (value == 1) - (old == 1)
            delta[DISLIKES] += (value == -1) - (old == -1)
        elif kind == SHARE:  # a share counts once per user
            delta[SHARES] += old is None
        else:  # a comment: the newer one's score replaces the older's
            delta[SENTIMENT_SUM] += value
            delta[SENTIMENT_SQUARES] += value * value
            if old is None:
                delta[COMMENTS] += 1
            else:
                delta[SENTIMENT_SUM] -= old
                delta[SENTIMENT_SQUARES] -= old * old
        product_seq[product] = seq
        changes.append((product, kind, old, old_time, value, occurred, old_channel, channel, user))
    plan.results = WriteResults(outcomes, seqs)
    plan.events = _columns(rows, EVENT_COLUMNS)
    plan.ratings = vote_columns(final_of[RATING])
    plan.likes = vote_columns(final_of[LIKE])
    plan.shares = vote_columns(final_of[SHARE], SHARE_COLUMNS)
    plan.comments = vote_columns(final_of[COMMENT], COMMENT_COLUMNS)
    plan.poll_votes = vote_columns(final_of[POLL_VOTE], POLL_COLUMNS)
    plan.changes = changes
    plan.seq = seq
    return plan


def _move_polls(
    deltas: dict[str, list[int]],
    product_seq: dict[str, int],
    ballot: Ballot | None,
    sign: int,
    seq: int,
) -> None:
    """Adds (sign 1) or takes back (-1) a poll vote's counts: each product shown, and the
    one chosen."""
    if ballot is None:
        return
    shown, chosen = ballot
    for product in shown:
        delta = deltas.get(product)
        if delta is None:
            delta = deltas[product] = [0] * DELTA_SIZE
        delta[POLLS_SHOWN] += sign
        product_seq[product] = seq
    deltas[chosen][POLLS_WON] += sign


def erasure_deltas(
    ratings: Sequence[tuple[str, int, int]],
    likes: Sequence[tuple[str, int, int]],
    shares: Sequence[tuple[str, int, int, str]] = (),
    comments: Sequence[tuple[str, int, int, str]] = (),
    poll_votes: Sequence[tuple[str, str]] = (),
    user_id: str = "",
) -> tuple[dict[str, list[int]], list[Change]]:
    """What removing votes does: per product the (negative) delta, and the change of each
    vote removed but poll votes. Votes are (product_id, value, occurred_at_us), a share's
    and a comment's with its channel after; poll votes (chosen, shown as shown_text);
    ``user_id`` whose they are."""
    deltas: dict[str, list[int]] = {}
    removed: list[Change] = []
    for product_id, stars, occurred in ratings:
        delta = deltas.setdefault(product_id, [0] * DELTA_SIZE)
        delta[0] -= 1
        delta[1] -= stars
        delta[1 + stars] -= 1
        removed.append((product_id, RATING, stars, occurred, None, 0, "", "", user_id))
    for product_id, value, occurred in likes:
        delta = deltas.setdefault(product_id, [0] * DELTA_SIZE)
        delta[LIKES] -= value == 1
        delta[DISLIKES] -= value == -1
        removed.append((product_id, LIKE, value, occurred, None, 0, "", "", user_id))
    for product_id, value, occurred, channel in shares:
        deltas.setdefault(product_id, [0] * DELTA_SIZE)[SHARES] -= 1
        removed.append((product_id, SHARE, value, occurred, None, 0, channel, "", user_id))
    for product_id, score, occurred, channel in comments:
        delta = deltas.setdefault(product_id, [0] * DELTA_SIZE)
        delta[COMMENTS] -= 1
        delta[SENTIMENT_SUM] -= score
        delta[SENTIMENT_SQUARES] -= score * score
        removed.append((product_id, COMMENT, score, occurred, None, 0, channel, "", user_id))
    for chosen, shown in poll_votes:
        _move_polls(deltas, {}, (shown_of(shown), chosen), -1, 0)
    return deltas, removed


def erasure_result(
    ratings: Sequence[tuple[str, int, int]],
    likes: Sequence[tuple[str, int, int]],
    events_erased: int,
    seq: int,
    shares: Sequence[tuple[str, int, int, str]] = (),
    comments: Sequence[tuple[str, int, int, str]] = (),
    poll_votes: Sequence[tuple[str, str]] = (),
) -> ErasureResult:
    """What an erasure reports: a cleared like is removed but not counted."""
    return ErasureResult(
        ratings_removed=len(ratings),
        likes_removed=sum(1 for row in likes if row[1] != 0),
        events_erased=events_erased,
        seq=seq,
        shares_removed=len(shares),
        comments_removed=len(comments),
        poll_votes_removed=len(poll_votes),
    )


def vote_changes(changes: Iterable[Change], products: Mapping[str, ProductRow]) -> list[VoteChange]:
    """The changes with each product's idx, from the product rows as written."""
    return [
        VoteChange(products[product].idx, kind, old, old_time, new, new_time, c_old, c_new, user)
        for product, kind, old, old_time, new, new_time, c_old, c_new, user in changes
    ]


class VoteChanges(Sequence[VoteChange]):
    """The vote changes of a transaction, made VoteChange objects only when read: only
    time-decayed sums read them, and building one per event costs when none does."""

    __slots__ = ("_items", "_parts")

    def __init__(self) -> None:
        self._parts: list[tuple[Iterable[Change], Mapping[str, ProductRow]]] = []
        self._items: list[VoteChange] = []

    def add(self, changes: Iterable[Change], products: Mapping[str, ProductRow]) -> None:
        """Changes whose products' rows are (or will be, before reading) in ``products``."""
        self._parts.append((changes, products))

    def replacements(self) -> list[VoteChange]:
        """The changes that replaced or removed a vote (old value set), made objects
        alone: what moves a damped vote's part (service/app/damped.py). A batch of new
        votes then builds none."""
        if not self._parts:
            return [change for change in self._items if change.old_value is not None]
        self._parts = [(list(changes), rows) for changes, rows in self._parts]
        replaced = [
            (list(changes_of), rows)
            for changes, rows in self._parts
            if (changes_of := [c for c in changes if c[2] is not None])
        ]
        found = [change for change in self._items if change.old_value is not None]
        for changes, rows in replaced:
            found += vote_changes(changes, rows)
        return found

    def _built(self) -> list[VoteChange]:
        for changes, rows in self._parts:
            self._items += vote_changes(changes, rows)
        self._parts.clear()
        return self._items

    def __len__(self) -> int:
        return len(self._built())

    @overload
    def __getitem__(self, index: int) -> VoteChange: ...
    @overload
    def __getitem__(self, index: slice) -> list[VoteChange]: ...
    def __getitem__(self, index: int | slice) -> VoteChange | list[VoteChange]:
        return self._built()[index]

    def __iter__(self) -> Iterator[VoteChange]:
        return iter(self._built())
