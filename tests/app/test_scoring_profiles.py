"""Priors, alternative components and time decay, through a real server."""

from __future__ import annotations

import time

import numpy as np
import pytest

from reviewrank.ranking.beta import beta_lower_bound, beta_posterior_mean
from reviewrank.ranking.hierarchy import fit_hierarchical_prior
from reviewrank.ranking.marginal import fit_marginal_prior
from reviewrank.ranking.priors import fit_star_prior
from reviewrank.ranking.stars import dirichlet_star_bound, normalise_stars
from reviewrank.v1 import feedback_pb2, ranking_pb2
from tests.conftest import Client
from tests.helpers import batch, candidates, explaining, like, rating

DAY = 86400
# The star histograms of products a, b and c as seed_histogram seeds them.
HISTOGRAM = np.array([[0, 0, 1, 1, 3], [1, 2, 1, 0, 0], [0, 0, 1, 4, 1]])


def seed(
    client: Client, product: str, stars: list[int], category: str = "", at: int = 1_700_000_000
) -> None:
    events = [
        rating(product, f"{product}-u{i}", s, at=at, category=category) for i, s in enumerate(stars)
    ]
    client.feedback.SubmitBatch(batch(*events))


def seed_histogram(client: Client) -> None:
    """Products a, b and c with the star counts of HISTOGRAM."""
    seed(client, "a", [5, 5, 4, 5, 3])
    seed(client, "b", [2, 1, 3, 2])
    seed(client, "c", [4, 4, 5, 3, 4, 4])


def stats(client: Client, product: str, profile: str) -> ranking_pb2.ProductStats:
    request = ranking_pb2.GetProductStatsRequest(product_ids=[product], profile=profile)
    return client.ranking.GetProductStats(request).stats[0]


def explain(client: Client, profile: str, *products: str) -> list[ranking_pb2.RankedProduct]:
    request = ranking_pb2.RankRequest(
        candidates=candidates(*products), profile=profile, explain=True
    )
    return list(explaining(client).Rank(request).results)


def test_auto_prior_is_the_marginal_likelihood_fit_of_the_catalogue(client: Client) -> None:
    seed_histogram(client)
    expected = fit_marginal_prior(HISTOGRAM)

    s = stats(client, "a", "auto")

    assert (expected.mean, expected.strength, "auto/marginal") == (
        pytest.approx(s.prior_mean),
        pytest.approx(s.prior_strength),
        s.prior_source,
    )


def test_moments_estimator_gives_the_moment_fit_of_the_catalogue(client: Client) -> None:
    seed_histogram(client)
    expected = fit_star_prior(HISTOGRAM)

    s = stats(client, "a", "auto_moments")

    assert (expected.mean, expected.strength, "auto") == (
        pytest.approx(s.prior_mean),
        pytest.approx(s.prior_strength),
        s.prior_source,
    )


def test_auto_prior_is_refitted_as_feedback_arrives(client: Client) -> None:
    seed(client, "a", [5, 5, 4])
    seed(client, "b", [2, 1, 3])
    before = stats(client, "zz", "auto").prior_mean

    seed(client, "c", [1] * 30)

    assert stats(client, "zz", "auto").prior_mean < before


HIGH, LOW = [5, 5, 4, 5, 5, 4], [2, 1, 2, 3, 2, 1]


def seed_two_categories(client: Client) -> None:
    for i in range(4):
        seed(client, f"hi{i}", HIGH, category="High")
        seed(client, f"lo{i}", LOW, category="Low")


def test_per_category_priors_differ_between_categories(client: Client) -> None:
    seed_two_categories(client)

    high, low = stats(client, "hi0", "by_category"), stats(client, "lo0", "by_category")

    assert "auto/marginal/category" == high.prior_source
    assert high.prior_mean > low.prior_mean


def test_per_category_priors_are_the_hierarchical_fit_of_the_catalogue(client: Client) -> None:
    seed_two_categories(client)
    histogram = [np.bincount(HIGH, minlength=6)[1:]] * 4 + [np.bincount(LOW, minlength=6)[1:]] * 4
    expected = fit_hierarchical_prior(histogram, [0] * 4 + [1] * 4, 2)

    high, low = stats(client, "hi0", "by_category"), stats(client, "lo0", "by_category")

    assert (list(expected.means), list(expected.strengths)) == (
        [pytest.approx(high.prior_mean), pytest.approx(low.prior_mean)],
        [pytest.approx(high.prior_strength), pytest.approx(low.prior_strength)],
    )


def test_moments_estimator_per_category_still_differs_between_categories(
    client: Client,
) -> None:
    seed_two_categories(client)

    high = stats(client, "hi0", "by_category_moments")
    low = stats(client, "lo0", "by_category_moments")

    assert "auto/category" == high.prior_source
    assert high.prior_mean > low.prior_mean


def test_fixed_prior_is_used_as_written(client: Client) -> None:
    seed(client, "a", [5, 5])

    s = stats(client, "a", "fixed")

    assert (2.5, 4.0, "fixed") == (s.prior_mean, s.prior_strength, s.prior_source)
    assert (2.5 * 4 + 10) / (4 + 2) == pytest.approx(s.bayesian_average)


def test_alternative_components_match_the_ranking_formulas(client: Client) -> None:
    seed(client, "a", [5, 4, 4, 2])
    for i in range(3):
        client.feedback.SubmitLike(like("a", f"l{i}"))
    client.feedback.SubmitLike(like("a", "d0", feedback_pb2.DISLIKE))

    [result] = explain(client, "alternatives", "a")
    parts = {c.component: c for c in result.explanation.contributions}

    star_bound = float(dirichlet_star_bound([[0, 1, 0, 2, 1]], 0.9, 1.0)[0])
    assert star_bound == pytest.approx(parts["star_lower_bound"].value)
    assert float(normalise_stars(star_bound)) == pytest.approx(parts["star_lower_bound"].normalized)
    assert float(beta_posterior_mean(3, 1, 2, 1)) == pytest.approx(parts["beta_mean"].value)
    assert float(beta_lower_bound(3, 1, 0.9, 2, 1)) == pytest.approx(
        parts["beta_lower_bound"].value
    )
    assert {"star_lower_bound", "beta_mean", "beta_lower_bound"} == set(parts)
    assert result.score == pytest.approx(sum(c.contribution for c in parts.values()))


def test_decayed_profile_weighs_votes_by_their_age(client: Client) -> None:
    now = int(time.time())
    seed(client, "old", [5, 5], at=now - 60 * DAY)  # two half-lives ago: 1/4 each
    seed(client, "new", [5, 5], at=now)

    results = {r.product_id: r.explanation for r in explain(client, "recent", "old", "new")}

    assert (2, 30.0) == (results["old"].rating_count, results["old"].half_life_days)
    assert 0.5 == pytest.approx(results["old"].weighted_ratings, rel=1e-3)
    assert 2.0 == pytest.approx(results["new"].weighted_ratings, rel=1e-3)
    assert (3.0 * 2 + 5 * 0.5) / (2 + 0.5) == pytest.approx(
        results["old"].bayesian_average, rel=1e-3
    )


def test_recent_votes_outrank_old_ones_under_decay_only(client: Client) -> None:
    now = int(time.time())
    seed(client, "old", [5] * 6, at=now - 120 * DAY)
    seed(client, "new", [5] * 3, at=now)

    decayed = [r.product_id for r in explain(client, "recent", "old", "new")]
    plain = [r.product_id for r in explain(client, "reviews_only", "old", "new")]

    assert (["new", "old"], ["old", "new"]) == (decayed, plain)


def test_a_replaced_vote_leaves_the_decayed_sums(client: Client) -> None:
    now = int(time.time())
    client.feedback.SubmitRating(rating("a", "u1", 1, at=now - 30 * DAY))
    client.feedback.SubmitRating(rating("a", "u1", 5, at=now))

    [result] = explain(client, "recent", "a")

    assert 1.0 == pytest.approx(result.explanation.weighted_ratings, rel=1e-3)
    assert (3.0 * 2 + 5) / 3 == pytest.approx(result.explanation.bayesian_average, rel=1e-3)


def test_decayed_sums_are_rebuilt_from_the_votes_after_a_restart(start_server) -> None:  # type: ignore[no-untyped-def]
    now = int(time.time())
    first = start_server()
    seed(first, "a", [4, 5], at=now - 30 * DAY)
    first.feedback.SubmitLike(like("a", "l1", at=now - 30 * DAY))
    before = explain(first, "recent", "a")[0].explanation
    first.server.stop(grace=1.0)

    after = explain(start_server(), "recent", "a")[0].explanation

    assert (before.weighted_ratings, before.weighted_likes, before.bayesian_average) == (
        pytest.approx(after.weighted_ratings, rel=1e-3),
        pytest.approx(after.weighted_likes, rel=1e-3),
        pytest.approx(after.bayesian_average, rel=1e-3),
    )
    assert 1.0 == pytest.approx(after.weighted_ratings, rel=1e-3)
