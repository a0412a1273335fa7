"""Top's whole-catalogue order (service/app/ranker.py): how fresh it is kept, and what taking
the catalogue's snapshot for it costs the garbage collector."""

from __future__ import annotations

import gc
import threading
from datetime import UTC, datetime

import pytest

from reviewrank.service.app import priors as priors_module
from reviewrank.service.app import ranker as ranker_module
from reviewrank.service.app.catalogue import Catalogue
from reviewrank.service.app.priors import kept_seconds
from reviewrank.service.app.ranker import TOP_REFRESH_SECONDS, Ranker
from reviewrank.service.app.weights import WeightsRegistry, WeightsState, parse_toml
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
    """Every order counts as expensive (as on a large catalogue), kept a minute."""
    monkeypatch.setattr(ranker_module, "CHEAP_TOP_SECONDS", 0.0)
    monkeypatch.setattr(ranker_module, "TOP_REFRESH_SECONDS", 60.0)


def test_a_cheap_order_reflects_a_write_at_once() -> None:
    catalogue, ranker = _seeded()
    assert "p6" not in _top(ranker)

    catalogue.apply([product_row(6, 5, 50, 6)], 6)

    assert "p6" == _top(ranker)[0]


@pytest.mark.usefixtures("expensive")
def test_an_expensive_order_is_kept_for_a_while_after_a_write() -> None:
    catalogue, ranker = _seeded()
    before = _top(ranker)

    catalogue.apply([product_row(6, 5, 50, 6)], 6)

    assert before == _top(ranker)


@pytest.mark.usefixtures("expensive")
def test_top_with_min_seq_reflects_that_write_even_when_the_order_is_kept() -> None:
    catalogue, ranker = _seeded()
    _top(ranker)

    catalogue.apply([product_row(6, 5, 50, 6)], 6)

    assert "p6" == _top(ranker, min_seq=6)[0]
    assert "p6" == _top(ranker)[0]  # the order recomputed for it is kept


def test_an_expensive_order_being_recomputed_is_served_as_it_was_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ranker_module, "CHEAP_TOP_SECONDS", 0.0)
    # Stale after any write.
    monkeypatch.setattr(ranker_module, "TOP_REFRESH_SECONDS", 0.0)
    monkeypatch.setattr(priors_module, "COST_SHARE", 1e12)
    catalogue, ranker = _seeded()
    before = _top(ranker)
    catalogue.apply([product_row(6, 5, 50, 6)], 6)
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
    catalogue.apply([product_row(6, 5, 50, 6)], 6)
    answers: list[list[str]] = []

    with ranker._top_lock:
        caller = threading.Thread(target=lambda: answers.append(_top(ranker, min_seq=6)))
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
