"""Top's whole-catalogue order (service/app/ranker.py): how fresh it is kept, and what taking
the catalogue's snapshot for it costs the garbage collector."""

from __future__ import annotations

import gc
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reviewrank.service.app import priors as priors_module
from reviewrank.service.app import ranker as ranker_module
from reviewrank.service.app.catalogue import CHANGE_LOG_LENGTH, Catalogue
from reviewrank.service.app.category_codes import MORE_SEPARATOR
from reviewrank.service.app.priors import kept_seconds
from reviewrank.service.app.ranker import TOP_REFRESH_SECONDS, Ranker
from reviewrank.service.app.weights import WeightsRegistry, WeightsState, parse_toml
from reviewrank.service.domain.errors import NotFound
from reviewrank.service.domain.values import ProductRow
from tests.helpers import product_row

PROFILES = """
[profiles.default]
weights = { bayesian_average = 0.7, wilson = 0.3 }
prior = { mean = 3, strength = 5 }
"""


def _seeded(products: int = 5) -> tuple[Catalogue, Ranker]:
    registry = WeightsRegistry()
    registry.install(WeightsState(1, parse_toml(PROFILES), PROFILES, "inline", datetime.now(UTC)))
    catalogue = Catalogue()
    catalogue.apply([product_row(i, 3, 10, i) for i in range(1, products + 1)], products)
    return catalogue, Ranker(catalogue, registry)


def _top(ranker: Ranker, min_seq: int = 0) -> list[str]:
    return list(ranker.top("", 10, "", "default", False, min_seq=min_seq).product_ids)


@pytest.fixture
def expensive(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every order counts as expensive (as on a large catalogue), kept a minute, the rows
    changed since merged into its pages as they are written."""
    monkeypatch.setattr(ranker_module, "CHEAP_TOP_SECONDS", 0.0)
    monkeypatch.setattr(ranker_module, "TOP_REFRESH_SECONDS", 60.0)
    monkeypatch.setattr(ranker_module, "TOP_FRESH_SECONDS", 0.0)


def test_a_cheap_order_reflects_a_write_at_once() -> None:
    catalogue, ranker = _seeded()
    assert "p6" not in _top(ranker)

    catalogue.apply([product_row(6, 5, 50, 6)], 6)

    assert "p6" == _top(ranker)[0]


@pytest.mark.usefixtures("expensive")
def test_a_write_is_merged_into_the_pages_of_an_expensive_order_without_recomputing_it() -> None:
    catalogue, ranker = _seeded()
    _top(ranker)
    kept = ranker._top_cache[(1, "default", 0)]

    catalogue.apply([product_row(6, 5, 50, 6)], 6)

    assert "p6" == _top(ranker)[0]
    assert kept is ranker._top_cache[(1, "default", 0)]


@pytest.mark.usefixtures("expensive")
def test_top_with_min_seq_reflects_that_write_when_the_order_is_kept() -> None:
    catalogue, ranker = _seeded()
    _top(ranker)

    catalogue.apply([product_row(6, 5, 50, 6)], 6)

    assert "p6" == _top(ranker, min_seq=6)[0]


@pytest.mark.usefixtures("expensive")
def test_changed_rows_merged_are_brought_up_to_date_at_most_so_often_unless_min_seq_asks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ranker_module, "TOP_FRESH_SECONDS", 3600.0)
    catalogue, ranker = _seeded()
    _top(ranker)
    catalogue.apply([product_row(6, 4, 50, 6)], 6)
    _top(ranker)  # the changed rows, as of now

    catalogue.apply([product_row(7, 5, 50, 7)], 7)

    assert ("p6", "p7") == (_top(ranker)[0], _top(ranker, min_seq=7)[0])


@pytest.mark.usefixtures("expensive")
def test_many_changed_rows_have_the_order_recomputed_off_the_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ranker_module, "MOST_CHANGED_ROWS", 0)
    catalogue, ranker = _seeded()
    _top(ranker)
    catalogue.apply([product_row(6, 5, 50, 6)], 6)

    _top(ranker)
    assert ranker._refresher.wait_idle(10)

    assert catalogue.generation == ranker._top_cache[(1, "default", 0)].generation


def _lose_the_change_log(catalogue: Catalogue) -> None:
    """Writes enough times that the change log no longer reaches back to the order."""
    seq = catalogue.seq
    for _ in range(CHANGE_LOG_LENGTH + 1):
        seq += 1
        catalogue.apply([product_row(5, 3, 10 + seq, seq)], seq)


def test_an_expensive_order_being_recomputed_is_served_as_it_was_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ranker_module, "CHEAP_TOP_SECONDS", 0.0)
    # Stale after any write.
    monkeypatch.setattr(ranker_module, "TOP_REFRESH_SECONDS", 0.0)
    monkeypatch.setattr(priors_module, "COST_SHARE", 1e12)
    catalogue, ranker = _seeded()
    before = _top(ranker)
    _lose_the_change_log(catalogue)  # no changed rows to merge: the order is recomputed
    catalogue.apply([product_row(6, 5, 50, catalogue.seq + 1)], catalogue.seq + 1)
    answers: list[list[str]] = []

    with ranker._top_lock:  # another thread is recomputing the order
        caller = threading.Thread(target=lambda: answers.append(_top(ranker)))
        caller.start()
        caller.join(10)
        waited = caller.is_alive()
    caller.join(10)

    assert (False, [before]) == (waited, answers)
    assert "p6" == _top(ranker)[0]  # the next caller recomputes it


def test_a_caller_needing_a_newer_order_waits_for_the_recompute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ranker_module, "CHEAP_TOP_SECONDS", 0.0)
    catalogue, ranker = _seeded()
    _top(ranker)
    _lose_the_change_log(catalogue)
    seq = catalogue.seq + 1
    catalogue.apply([product_row(6, 5, 50, seq)], seq)
    answers: list[list[str]] = []

    with ranker._top_lock:
        caller = threading.Thread(target=lambda: answers.append(_top(ranker, min_seq=seq)))
        caller.start()
        caller.join(0.5)
        waited = caller.is_alive()
    caller.join(10)

    assert (True, "p6") == (waited, answers[0][0])


def test_recomputing_an_expensive_order_takes_at_most_a_tenth_of_a_core() -> None:
    assert TOP_REFRESH_SECONDS == kept_seconds(0.01, TOP_REFRESH_SECONDS)
    assert 5.0 == pytest.approx(kept_seconds(0.5, TOP_REFRESH_SECONDS))


def test_a_snapshot_reads_the_catalogues_ids_byproduct_row() -> None:
    catalogue, _ = _seeded(products=5)

    ids = catalogue.snapshot().product_ids

    assert (5, ["p1", "p2", "p3", "p4", "p5"]) == (len(ids), list(ids))
    assert ("p5", ["p2", "p4"], ["p3", "p1"]) == (ids[-1], ids[1:4:2], ids.take([2, 0]))
    with pytest.raises(IndexError):
        ids[5]


@pytest.mark.parametrize("products", [0, 1, 4, 9])
def test_a_snapshot_read_in_parts_holds_what_one_read_at_once_does(products: int) -> None:
    catalogue, _ = _seeded(products=products)
    pauses: list[int] = []

    parts = catalogue.snapshot_in_parts(4, lambda: pauses.append(1))
    whole = catalogue.snapshot()

    names = ("rating_count", "star_sum", "likes", "dislikes", "histogram")
    assert [getattr(whole.evidence, n).tolist() for n in names] == [
        getattr(parts.evidence, n).tolist() for n in names
    ]
    assert (whole.category_code.tolist(), whole.active.tolist(), list(whole.product_ids)) == (
        parts.category_code.tolist(),
        parts.active.tolist(),
        list(parts.product_ids),
    )
    assert max(0, -(-products // 4) - 1) == len(pauses)  # between parts, not before or after


def test_a_snapshot_of_a_large_catalogue_copies_no_list_of_its_ids() -> None:
    # A copy would be a container of 50,000 references in the collector's youngest
    # generation, walked at every collection it survives.
    catalogue, _ = _seeded(products=50_000)
    gc.collect()

    snapshot = catalogue.snapshot()

    young = gc.get_objects(generation=0)
    largest = max((len(o) for o in young if isinstance(o, list | tuple | dict)), default=0)
    assert largest < 1_000
    assert 50_000 == len(snapshot.product_ids)


CATEGORIES = ("dresses", "knits", "tops")
rows_written = st.lists(
    st.tuples(
        st.integers(1, 30),  # product (idx)
        st.tuples(*[st.integers(0, 4)] * 5),  # its star histogram
        st.integers(0, 3),  # likes
        st.integers(0, 3),  # dislikes
        st.sampled_from(CATEGORIES),
        st.booleans(),  # listed
        st.sampled_from(("", "knits", "dresses\\x1ftops")),  # its other categories
    ),
    max_size=12,
)


def _row(written: tuple[Any, ...], seq: int) -> ProductRow:
    idx, histogram, likes, dislikes, category, active, more = written
    stars = sum(s * c for s, c in zip(range(1, 6), histogram, strict=True))
    return ProductRow(
        idx=idx, product_id=f"p{idx}", category=category,
        rating_count=sum(histogram), star_sum=stars,
        histogram=histogram, likes=likes, dislikes=dislikes, seq=seq, active=active,
        more_categories=more.replace("\\x1f", MORE_SEPARATOR),
    )  # fmt: skip


def _pages(ranker: Ranker, category: str, limit: int) -> list[tuple[str, float]]:
    """Every page of Top, ``limit`` at a time, as (product, score)."""
    got: list[tuple[str, float]] = []
    token = ""
    while True:
        try:
            page = ranker.top(category, limit, token, "default", False)
        except NotFound:
            return got
        if not page.product_ids:  # (a token to an empty page: wrong, and would loop)
            return [*got, ("an empty page", 0.0)]
        got += zip(page.product_ids, page.scores.tolist(), strict=True)
        token = page.next_page_token
        if not token:
            return got


@given(rows_written, rows_written, st.integers(1, 7))
@settings(max_examples=150, deadline=None)
def test_pages_with_changed_rows_merged_in_equal_those_of_an_order_computed_afresh(
    before: list[tuple[Any, ...]], after: list[tuple[Any, ...]], limit: int
) -> None:
    catalogue, ranker = _seeded(30)
    for seq, written in enumerate(before, start=31):
        catalogue.apply([_row(written, seq)], seq)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ranker_module, "CHEAP_TOP_SECONDS", 0.0)  # kept: as if expensive
        patch.setattr(ranker_module, "TOP_REFRESH_SECONDS", 60.0)
        patch.setattr(ranker_module, "TOP_FRESH_SECONDS", 0.0)
        _pages(ranker, "", limit)  # the order kept
        for seq, written in enumerate(after, start=100):
            catalogue.apply([_row(written, seq)], seq)
        merged = {c: _pages(ranker, c, limit) for c in ("", *CATEGORIES)}
    fresh = Ranker(catalogue, ranker._weights)

    assert {c: _pages(fresh, c, limit) for c in ("", *CATEGORIES)} == merged


@pytest.mark.usefixtures("expensive")
def test_the_changed_rows_of_an_order_no_longer_kept_are_dropped() -> None:
    catalogue, ranker = _seeded()
    _top(ranker)
    catalogue.apply([product_row(6, 5, 50, 6)], 6)
    _top(ranker)  # changed rows kept for version 1's order
    ranker._weights.install(
        WeightsState(2, parse_toml(PROFILES), PROFILES, "inline", datetime.now(UTC))
    )
    ranker._top_cache.clear()  # (as when more profiles' orders are kept than room)

    _top(ranker)
    catalogue.apply([product_row(7, 5, 50, 7)], 7)
    _top(ranker)

    assert [(2, "default", 0)] == list(ranker._changed)
