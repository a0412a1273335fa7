"""RankingService over a real server: order, cold start, ties, explanations, Top, stats."""

from __future__ import annotations

import pytest

from reviewrank.ranking.scores import bayesian_average, wilson_lower_bound
from reviewrank.service.app import ranker as ranker_module
from reviewrank.v1 import feedback_pb2, ranking_pb2
from tests.conftest import Client
from tests.helpers import batch, candidates, explaining, like, rating


def seed(
    client: Client,
    product: str,
    stars: list[int],
    likes: int = 0,
    dislikes: int = 0,
    category: str = "",
) -> None:
    events: list[object] = [
        rating(product, f"{product}-r{i}", s, category=category) for i, s in enumerate(stars)
    ]
    events += [like(product, f"{product}-l{i}") for i in range(likes)]
    events += [like(product, f"{product}-d{i}", feedback_pb2.DISLIKE) for i in range(dislikes)]
    for start in range(0, len(events), 1000):
        client.feedback.SubmitBatch(batch(*events[start : start + 1000]))


def rank_ids(client: Client, *items: str | tuple[str, float], profile: str = "") -> list[str]:
    request = ranking_pb2.RankRequest(candidates=candidates(*items), profile=profile)
    return [r.product_id for r in client.ranking.Rank(request).results]


def test_one_five_star_review_does_not_beat_many_reviews_averaging_4_7(client: Client) -> None:
    seed(client, "single", [5])
    seed(client, "proven", [5] * 350 + [4] * 150)  # mean 4.7 over 500 reviews
    seed(client, "filler", [3] * 50)  # a catalogue mean below 4.7

    assert ["proven", "single"] == rank_ids(client, "single", "proven", profile="reviews_only")


def test_well_reviewed_products_rise_above_poorly_reviewed_ones(client: Client) -> None:
    seed(client, "poor", [1, 2, 2, 1, 3] * 10, likes=5, dislikes=40)
    seed(client, "good", [5, 4, 5, 5, 4] * 10, likes=40, dislikes=3)

    assert ["good", "poor"] == rank_ids(client, "poor", "good")


def test_unknown_products_rank_on_the_prior(client: Client) -> None:
    seed(client, "poor", [1] * 30, dislikes=30)
    seed(client, "good", [5] * 30, likes=30)

    assert ["good", "new", "poor"] == rank_ids(
        client, "poor", "new", "good", profile="reviews_only"
    )


def test_ties_keep_the_order_the_search_sent(client: Client) -> None:
    assert ["c", "a", "b"] == rank_ids(client, "c", "a", "b")


def test_ties_between_known_products_keep_the_search_order(client: Client) -> None:
    for product in ("x", "y", "z"):
        seed(client, product, [4, 4])

    assert ["z", "x", "y"] == rank_ids(client, "z", "x", "y")


def test_more_relevant_wins_between_equally_reviewed_products(client: Client) -> None:
    assert ["b", "a"] == rank_ids(client, ("a", 1.0), ("b", 2.0))


def test_limit_returns_only_the_best(client: Client) -> None:
    seed(client, "a", [5] * 20)
    seed(client, "b", [1] * 20)
    request = ranking_pb2.RankRequest(candidates=candidates("b", "c", "a"), limit=1)

    response = client.ranking.Rank(request)

    assert ["a"] == [r.product_id for r in response.results]


def test_rank_reports_the_weights_version_and_profile(client: Client) -> None:
    response = client.ranking.Rank(ranking_pb2.RankRequest(candidates=candidates("a")))

    assert (1, "default") == (response.weights_version, response.profile)


def test_explanation_gives_every_input_and_component(client: Client) -> None:
    seed(client, "a", [5, 4, 4], likes=3, dislikes=1)
    seed(client, "b", [1, 2])
    request = ranking_pb2.RankRequest(candidates=candidates(("a", 10.0), ("b", 0.0)), explain=True)

    [first, _second] = explaining(client).Rank(request).results
    e = first.explanation

    # C at the profile's m = 10: the product means weighted by 1/(1/m + 1/n).
    weight_a, weight_b = 1 / (1 / 10 + 1 / 3), 1 / (1 / 10 + 1 / 2)
    prior_mean = (weight_a * 13 / 3 + weight_b * 3 / 2) / (weight_a + weight_b)
    assert ("a", 3, 13 / 3, True) == (first.product_id, e.rating_count, e.stars_mean, e.known)
    assert (prior_mean, 10.0, "catalogue/marginal") == (
        pytest.approx(e.prior_mean),
        e.prior_strength,
        e.prior_source,
    )
    assert float(bayesian_average(13, 3, prior_mean, 10)) == pytest.approx(e.bayesian_average)
    assert (3, 1) == (e.likes, e.dislikes)
    assert float(wilson_lower_bound(3, 4, 0.95)) == pytest.approx(e.wilson_lower_bound)
    assert (10.0, 1.0) == (e.relevance, e.relevance_normalized)
    assert ["bayesian_average", "wilson", "relevance"] == [c.component for c in e.contributions]
    assert first.score == pytest.approx(sum(c.contribution for c in e.contributions))
    for c in e.contributions:
        assert c.weight * c.normalized == pytest.approx(c.contribution)
    assert 1.0 == pytest.approx(sum(c.weight for c in e.contributions))


def test_results_have_no_explanation_unless_asked(client: Client) -> None:
    response = client.ranking.Rank(ranking_pb2.RankRequest(candidates=candidates("a")))

    assert not response.results[0].HasField("explanation")


def test_scores_lie_between_zero_and_one(client: Client) -> None:
    seed(client, "a", [5] * 100, likes=100)
    seed(client, "b", [1] * 100, dislikes=100)
    request = ranking_pb2.RankRequest(candidates=candidates(("a", 5.0), ("b", -3.0), "c"))

    scores = [r.score for r in client.ranking.Rank(request).results]

    assert all(0.0 <= s <= 1.0 for s in scores)


def test_top_of_a_category_lists_only_that_category_best_first(client: Client) -> None:
    seed(client, "d1", [3] * 10, category="Dresses")
    seed(client, "d2", [5] * 10, category="Dresses")
    seed(client, "k1", [5] * 40, category="Knits")

    response = client.ranking.Top(ranking_pb2.TopRequest(category="Dresses"))

    assert ["d2", "d1"] == [r.product_id for r in response.results]


def test_top_without_category_ranks_the_whole_catalogue(client: Client) -> None:
    seed(client, "d1", [3] * 10, category="Dresses")
    seed(client, "k1", [5] * 40, category="Knits")

    response = client.ranking.Top(ranking_pb2.TopRequest())

    assert ["k1", "d1"] == [r.product_id for r in response.results]


def test_top_pages_through_every_product_once(client: Client) -> None:
    for i in range(7):
        seed(client, f"p{i}", [1 + i % 5] * (i + 1), category="C")
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        response = client.ranking.Top(
            ranking_pb2.TopRequest(category="C", limit=3, page_token=token)
        )
        seen += [r.product_id for r in response.results]
        pages += 1
        token = response.next_page_token
        if not token:
            break

    assert (3, 7, 7) == (pages, len(seen), len(set(seen)))


def test_top_explanations_carry_no_relevance_component(client: Client) -> None:
    seed(client, "d1", [4, 5], likes=1, category="Dresses")

    response = explaining(client).Top(ranking_pb2.TopRequest(explain=True))

    components = [c.component for c in response.results[0].explanation.contributions]
    assert ["bayesian_average", "wilson"] == components


def test_stats_give_counts_histogram_and_scores(client: Client) -> None:
    seed(client, "a", [5, 5, 4, 1], likes=2, dislikes=1, category="Knits")

    [s] = client.ranking.GetProductStats(
        ranking_pb2.GetProductStatsRequest(product_ids=["a"])
    ).stats

    assert ("a", True, "Knits", 4) == (s.product_id, s.known, s.category, s.rating_count)
    assert [1, 0, 0, 1, 2] == list(s.stars_histogram)
    assert 3.75 == pytest.approx(s.stars_mean)
    assert float(bayesian_average(15, 4, 3.75, 10)) == pytest.approx(s.bayesian_average)
    assert (2, 1) == (s.likes, s.dislikes)
    assert float(wilson_lower_bound(2, 3, 0.95)) == pytest.approx(s.wilson_lower_bound)


def test_stats_of_an_unknown_product_are_the_prior(client: Client) -> None:
    seed(client, "a", [4, 2])

    [s] = client.ranking.GetProductStats(
        ranking_pb2.GetProductStatsRequest(product_ids=["zz"])
    ).stats

    assert (False, 0, [0, 0, 0, 0, 0]) == (s.known, s.rating_count, list(s.stars_histogram))
    assert (3.0, 3.0) == (pytest.approx(s.bayesian_average), pytest.approx(s.prior_mean))
    assert 0.0 == s.wilson_lower_bound


def test_stats_come_back_in_the_order_asked(client: Client) -> None:
    request = ranking_pb2.GetProductStatsRequest(product_ids=["c", "a", "b"])

    stats = client.ranking.GetProductStats(request).stats

    assert ["c", "a", "b"] == [s.product_id for s in stats]


def test_top_of_a_kept_order_includes_a_write_at_once(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every order counts as expensive and is kept a minute, as on a large catalogue: the
    # rows written since are merged into its pages.
    monkeypatch.setattr(ranker_module, "CHEAP_TOP_SECONDS", 0.0)
    monkeypatch.setattr(ranker_module, "TOP_REFRESH_SECONDS", 60.0)
    seed(client, "d1", [4] * 10)
    assert ["d1"] == [r.product_id for r in client.ranking.Top(ranking_pb2.TopRequest()).results]
    ack = client.feedback.SubmitBatch(batch(*[rating("d2", f"u{i}", 5) for i in range(30)]))

    kept = client.ranking.Top(ranking_pb2.TopRequest())
    fresh = client.ranking.Top(ranking_pb2.TopRequest(min_seq=ack.seq))

    assert ["d2", "d1"] == [r.product_id for r in kept.results]
    assert ["d2", "d1"] == [r.product_id for r in fresh.results]
