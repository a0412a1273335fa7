"""service/domain/voting.py: the bulk plan of new votes decides exactly what the one-by-one plan
decides (the store tests check the one-by-one plan against a model)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from reviewrank.service.domain.values import (
    Event,
    EventBatch,
    LikeEvent,
    LikeValue,
    PollVoteEvent,
    RatingEvent,
)
from reviewrank.service.domain.voting import (
    Plan,
    of_keys,
    plan_events,
    plan_new_votes,
    plan_one_by_one,
    shown_of,
    shown_text,
    shown_texts,
)


@st.composite
def new_votes(draw: st.DrawFn, kinds: str = "rlp") -> EventBatch:
    """Events with distinct ids, each the only one on its key (kind, product, user; a poll
    vote's poll), of these ``kinds`` (r: ratings, l: likes, p: poll votes)."""
    size = draw(st.integers(1, 60))
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(kinds), st.sampled_from("abcde"), st.integers(0, 30)),
            min_size=size,
            max_size=size,
            unique=True,
        )
    )
    events: list[Event] = []
    for i, (kind, product, user) in enumerate(keys):
        at = draw(st.integers(0, 50))
        if kind == "p":  # a vote in poll `product`
            shown = draw(st.lists(st.sampled_from("abcdefg"), min_size=2, max_size=4, unique=True))
            chosen = draw(st.sampled_from(shown))
            events.append(
                PollVoteEvent(f"e{i}", f"q{product}", f"u{user}", tuple(shown), chosen, at)
            )
        elif kind == "r":
            category = draw(st.sampled_from(["", "Dresses", "Tops"]))
            stars = draw(st.integers(1, 5))
            verified = draw(st.booleans())
            events.append(RatingEvent(f"e{i}", product, f"u{user}", stars, at, category, verified))
        else:
            value = draw(st.sampled_from(list(LikeValue)))
            verified = draw(st.booleans())
            events.append(LikeEvent(f"e{i}", product, f"u{user}", value, at, verified))
    return EventBatch.of(events)


def _fields(plan: Plan) -> tuple[object, ...]:
    return (
        list(plan.results),
        plan.events,
        plan.ratings,
        plan.likes,
        plan.poll_votes,
        list(plan.deltas.items()),  # in order: new products are numbered in this order
        plan.categories,
        plan.product_seq,
        list(plan.changes),
        plan.seq,
    )


@settings(max_examples=300, deadline=None)
@given(batch=new_votes(), seq=st.integers(0, 10**12))
def test_new_votes_are_planned_in_bulk_as_one_by_one(batch: EventBatch, seq: int) -> None:
    bulk = plan_new_votes(batch, seq, 99)
    each = plan_one_by_one(batch, set(), {}, {}, seq, 99)

    assert _fields(each) == _fields(bulk)


@settings(max_examples=100, deadline=None)
@given(batch=new_votes("p"), seq=st.integers(0, 10**12))
def test_new_poll_votes_alone_are_planned_in_bulk_as_one_by_one(
    batch: EventBatch, seq: int
) -> None:
    bulk = plan_new_votes(batch, seq, 99)
    each = plan_one_by_one(batch, set(), {}, {}, seq, 99)

    assert _fields(each) == _fields(bulk)


def test_a_known_id_or_a_vote_in_force_is_decided_one_by_one() -> None:
    batch = EventBatch.of([RatingEvent("a", "p", "u", 4, 10), RatingEvent("b", "p", "v", 2, 10)])

    known = plan_events(batch, {"a"}, {}, {}, 0, 1)
    newer = plan_events(batch, set(), {("p", "u"): (5, 20, "z")}, {}, 0, 1)

    assert [
        (o.name, s) for o, s in zip(known.results.outcomes, known.results.seqs, strict=True)
    ] == [
        ("DUPLICATE", 0),
        ("APPLIED", 1),
    ]
    assert ["SUPERSEDED", "APPLIED"] == [o.name for o in newer.results.outcomes]
    assert {"p": [1, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]} == newer.deltas


vote_rows = st.lists(
    st.tuples(
        st.sampled_from("abcd"),
        st.sampled_from(["u1", "u2", "u3"]),
        st.integers(1, 5),
        st.integers(0, 9),
        st.text("xyz", min_size=1, max_size=3),
    ),
    max_size=30,
)


def _as_columns(rows: list[tuple[str, str, int, int, str]]) -> list[list[object]]:
    return [list(column) for column in zip(*rows, strict=True)] or [[] for _ in range(5)]


@given(rows=vote_rows, keys=st.sets(st.tuples(st.sampled_from("abcd"), st.sampled_from(["u1"]))))
def test_votes_of_keys_keep_only_those_keys_rows_in_order(
    rows: list[tuple[str, str, int, int, str]], keys: set[tuple[str, str]]
) -> None:
    kept = of_keys(_as_columns(rows), keys)

    assert _as_columns([row for row in rows if row[:2] in keys]) == kept


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1),
        min_size=2,
        max_size=10,
    )
)
def test_a_polls_products_shown_are_kept_as_the_json_array_of_their_ids(ids: list[str]) -> None:
    text = shown_text(ids)

    assert ids == json.loads(text)
    assert tuple(ids) == shown_of(text)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(["a", 'b"', "c\\", "d", "é"]), min_size=2, max_size=4),
        max_size=5,
    )
)
def test_polls_products_shown_are_kept_in_bulk_as_one_by_one(lists: list[list[str]]) -> None:
    assert [shown_text(ids) for ids in lists] == shown_texts(lists)
