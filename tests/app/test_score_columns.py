"""Rank's kept quality scores (service/app/score_columns.py) give exactly the scores and the
order of scoring the candidates directly, however the catalogue changes in between."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reviewrank.ranking.blend import (
    TIES_EXPECTED_FROM,
    Evidence,
    Prior,
    blend,
    quality,
    rank_order,
    with_relevance,
)
from reviewrank.service.app.catalogue import CHANGE_LOG_LENGTH, Catalogue
from reviewrank.service.app.rank_query import RankQuery
from reviewrank.service.app.ranker import Ranker
from reviewrank.service.app.weights import WeightsRegistry, WeightsState, parse_toml
from reviewrank.service.domain.values import ProductRow

PROFILES = """
default_profile = "default"

[profiles.default]
weights = { bayesian_average = 0.6, wilson = 0.25, relevance = 0.15 }
prior = { mean = "auto", strength = "auto" }

[profiles.per_category]
weights = { bayesian_average = 0.5, wilson = 0.2, relevance = 0.3 }
prior = { mean = "auto", strength = "auto", per_category = true, min_category_products = 2 }

[profiles.fixed]
weights = { star_lower_bound = 0.4, beta_mean = 0.2, beta_lower_bound = 0.2, relevance = 0.2 }
prior = { mean = 3.5, strength = 5 }

[profiles.no_relevance]
weights = { bayesian_average = 0.7, wilson = 0.3 }
prior = { mean = 4, strength = 10 }
"""
PROFILE_NAMES = ["default", "per_category", "fixed", "no_relevance"]
CATEGORIES = ["", "dresses", "tops", "knits"]


def _ranker() -> tuple[Catalogue, Ranker]:
    registry = WeightsRegistry()
    registry.install(WeightsState(1, parse_toml(PROFILES), PROFILES, "inline", datetime.now(UTC)))
    catalogue = Catalogue()
    return catalogue, Ranker(catalogue, registry)


class _Writes:
    """Writes product rows into a catalogue the way the writer does after a commit."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.idx: dict[str, int] = {}
        self.seq = 0

    def write(self, product: int, histogram: list[int], likes: int, dislikes: int) -> None:
        product_id = f"p{product}"
        idx = self.idx.setdefault(product_id, len(self.idx) + 1)
        self.seq += 1
        row = ProductRow(
            idx=idx,
            product_id=product_id,
            category=CATEGORIES[product % len(CATEGORIES)],
            rating_count=sum(histogram),
            star_sum=sum(k * n for k, n in zip(range(1, 6), histogram, strict=True)),
            histogram=(histogram[0], histogram[1], histogram[2], histogram[3], histogram[4]),
            likes=likes,
            dislikes=dislikes,
            seq=self.seq,
        )
        self.catalogue.apply([row], self.seq)


def _rank(
    ranker: Ranker, ids: list[str], relevance: list[float], limit: int, profile: str, explain: bool
) -> tuple[list[str], list[float]]:
    """The ids best first and their scores."""
    query = RankQuery(ids, np.array(relevance, dtype=np.float64), limit, profile, explain)
    result = ranker.rank(query)
    return result.product_ids(query), result.scores.tolist()


def _direct(
    ranker: Ranker, profile: str, ids: list[str], relevance: list[float]
) -> tuple[list[str], list[float]]:
    """The order and scores of scoring the candidates directly (no kept scores)."""
    return _rank(ranker, ids, relevance, 0, profile, explain=True)


writes_strategy = st.lists(
    st.tuples(
        st.integers(0, 30),
        st.lists(st.integers(0, 40), min_size=5, max_size=5),
        st.integers(0, 50),
        st.integers(0, 50),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(
    rounds=st.lists(writes_strategy, min_size=1, max_size=4),
    profile=st.sampled_from(PROFILE_NAMES),
    relevance=st.lists(st.floats(-1e6, 1e6), min_size=35, max_size=35),
    limit=st.integers(0, 40),
)
def test_kept_scores_rank_exactly_as_direct_scoring_after_every_round_of_writes(
    rounds: list, profile: str, relevance: list[float], limit: int
) -> None:
    catalogue, ranker = _ranker()
    writes = _Writes(catalogue)
    ids = [f"p{i}" for i in range(35)]  # p31..p34 are never written: unknown products
    for round_ in rounds:
        for product, histogram, likes, dislikes in round_:
            writes.write(product, histogram, likes, dislikes)

        ranked = _rank(ranker, ids, relevance, limit, profile, explain=False)

        expected_ids, expected_scores = _direct(ranker, profile, ids, relevance)
        assert expected_ids[: limit or None] == ranked[0]
        assert expected_scores[: limit or None] == ranked[1]


def test_a_reader_that_fell_behind_the_change_log_still_sees_every_write() -> None:
    catalogue, ranker = _ranker()
    writes = _Writes(catalogue)
    ids = [f"p{i}" for i in range(10)]
    relevance = [float(i) for i in range(10)]
    _rank(ranker, ids, relevance, 0, "fixed", explain=False)  # the column is built
    for n in range(CHANGE_LOG_LENGTH + 5):  # more writes than the log remembers
        writes.write(n % 10, [0, 0, 0, 0, n % 7], n % 3, 0)

    ranked = _rank(ranker, ids, relevance, 0, "fixed", explain=False)

    assert _direct(ranker, "fixed", ids, relevance)[1] == ranked[1]


def test_changed_rows_are_those_written_since_the_generation_asked() -> None:
    catalogue, _ = _ranker()
    writes = _Writes(catalogue)
    writes.write(1, [1, 0, 0, 0, 0], 0, 0)
    since = catalogue.generation
    writes.write(2, [0, 1, 0, 0, 0], 0, 0)
    writes.write(3, [0, 0, 1, 0, 0], 0, 0)
    writes.write(2, [0, 2, 0, 0, 0], 0, 0)

    rows = catalogue.changed_rows(since)

    assert rows is not None
    assert [writes.idx["p2"], writes.idx["p3"]] == rows.idx.tolist()
    assert [2, 1] == rows.evidence.rating_count.tolist()
    assert catalogue.generation == rows.generation


def test_changed_rows_are_unknown_once_the_log_no_longer_reaches_back() -> None:
    catalogue, _ = _ranker()
    writes = _Writes(catalogue)
    since = catalogue.generation
    for n in range(CHANGE_LOG_LENGTH + 1):
        writes.write(n, [0, 0, 0, 0, 1], 0, 0)

    assert catalogue.changed_rows(since) is None


@settings(max_examples=100, deadline=None)
@given(
    counts=st.lists(
        st.tuples(st.integers(0, 500), st.integers(0, 500), st.integers(0, 500)),
        min_size=1,
        max_size=30,
    ),
    relevance_seed=st.integers(0, 2**32 - 1),
    weights=st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0.01, 1)),
)
def test_quality_plus_relevance_equals_blend_bit_for_bit(
    counts: list[tuple[int, int, int]], relevance_seed: int, weights: tuple[float, float, float]
) -> None:
    rating_count = np.array([c[0] for c in counts])
    histogram = np.zeros((len(counts), 5), dtype=np.int64)
    histogram[:, 3] = rating_count
    evidence = Evidence(
        rating_count=rating_count,
        star_sum=4 * rating_count,
        likes=np.array([c[1] for c in counts]),
        dislikes=np.array([c[2] for c in counts]),
        histogram=histogram,
    )
    document = (
        'default_profile = "p"\n'
        "[profiles.p]\n"
        f"weights = {{ bayesian_average = {weights[0]!r}, wilson = {weights[1]!r},"
        f" relevance = {weights[2]!r} }}\n"
        "prior = { mean = 3, strength = 7 }\n"
    )
    profile = parse_toml(document).profiles["p"]
    prior = Prior(3.0, 7.0, "fixed")
    relevance = np.random.default_rng(relevance_seed).normal(size=len(counts))

    kept = quality(evidence, profile, prior)

    expected = blend(evidence, profile, prior, relevance).score
    assert (
        expected.tolist() == with_relevance(kept.score, kept.relevance_weight, relevance).tolist()
    )


@settings(max_examples=200, deadline=None)
@given(
    items=st.lists(
        st.tuples(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), st.integers(0, 3)), max_size=60
    )
)
def test_rank_order_breaks_score_ties_by_evidence_then_position(
    items: list[tuple[float, int]],
) -> None:
    score = np.array([s for s, _ in items], dtype=np.float64)
    amount = np.array([a for _, a in items], dtype=np.int64)

    order = rank_order(score, amount)

    expected = sorted(range(len(items)), key=lambda i: (-items[i][0], -items[i][1], i))
    assert expected == order.tolist()


@pytest.mark.parametrize("distinct", [5, 10**9])  # many ties, or (almost) none
def test_rank_order_of_a_whole_catalogue_breaks_ties_the_same_way(distinct: int) -> None:
    rng = np.random.default_rng(distinct)
    size = TIES_EXPECTED_FROM + 2_000
    score = rng.integers(0, distinct, size) / 7.0
    amount = rng.integers(0, 4, size)

    order = rank_order(score, amount)

    items = list(zip(score.tolist(), amount.tolist(), strict=True))
    expected = sorted(range(size), key=lambda i: (-items[i][0], -items[i][1], i))
    assert expected == order.tolist()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e9, 1e9), max_size=60, unique=True))
def test_rank_order_without_ties_is_by_score_alone(scores: list[float]) -> None:
    order = rank_order(np.array(scores, dtype=np.float64), np.zeros(len(scores)))

    assert sorted(range(len(scores)), key=lambda i: -scores[i]) == order.tolist()
