"""A profile's like-share prior fitted from the catalogue (likes_prior = "auto"), through a
real server: the Beta posterior mean it ranks by uses the fit of the catalogue's likes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np
import pytest

from reviewrank.ranking.like_prior import fit_like_prior
from reviewrank.v1 import admin_pb2, feedback_pb2, ranking_pb2
from tests.conftest import Client
from tests.helpers import batch, candidates, like

WEIGHTS = """
default_profile = "likes"

[profiles.likes]
weights = { beta_mean = 1 }
prior = { mean = 3, strength = 5 }
likes_prior = "auto"
"""
# product -> (likes, dislikes)
VOTES = {"a": (9, 1), "b": (3, 0), "c": (1, 0), "d": (0, 2), "e": (12, 6), "f": (4, 4)}


def start_with_votes(start_server: Callable[..., Client], tmp_path: Path) -> Client:
    weights = tmp_path / "likes.toml"
    weights.write_text(WEIGHTS)
    client = start_server(weights=weights)
    events = [
        like(p, f"{p}-u{i}", feedback_pb2.LIKE if i < up else feedback_pb2.DISLIKE)
        for p, (up, down) in VOTES.items()
        for i in range(up + down)
    ]
    client.feedback.SubmitBatch(batch(*events), timeout=10)
    return client


def test_rank_scores_by_the_posterior_mean_under_the_fitted_like_prior(
    start_server: Callable[..., Client], tmp_path: Path
) -> None:
    client = start_with_votes(start_server, tmp_path)
    ups = np.array([v[0] for v in VOTES.values()])
    downs = np.array([v[1] for v in VOTES.values()])
    fitted = fit_like_prior(ups, downs)

    request = ranking_pb2.RankRequest(candidates=candidates(*VOTES, "new"))
    scores = {r.product_id: r.score for r in client.ranking.Rank(request, timeout=10).results}

    expected = {
        p: (up + fitted.alpha) / (up + down + fitted.strength) for p, (up, down) in VOTES.items()
    }
    expected["new"] = fitted.mean  # no votes: the catalogue's like share
    assert expected == pytest.approx(scores)


def test_the_prior_source_says_the_like_prior_is_fitted(
    start_server: Callable[..., Client], tmp_path: Path
) -> None:
    client = start_with_votes(start_server, tmp_path)

    request = ranking_pb2.GetProductStatsRequest(product_ids=["a"])
    [stats] = client.ranking.GetProductStats(request, timeout=10).stats

    assert "fixed+likes" == stats.prior_source


def test_a_like_prior_that_is_neither_auto_nor_a_table_is_refused_naming_its_key(
    client: Client,
) -> None:
    toml = WEIGHTS.replace('likes_prior = "auto"', 'likes_prior = "fitted"')

    with pytest.raises(grpc.RpcError) as refused:
        client.admin.ReloadWeights(admin_pb2.ReloadWeightsRequest(toml=toml), timeout=10)

    assert grpc.StatusCode.INVALID_ARGUMENT == refused.value.code()
    assert "profiles.likes.likes_prior" in (refused.value.details() or "")


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("likes_prior = { alpha = 1e308, beta = 1e308 }", "likes_prior.alpha"),
        ("likes_prior = { alpha = 1e-320, beta = 1 }", "likes_prior.alpha"),
        ("likes_prior = { alpha = 1, beta = 2e6 }", "likes_prior.beta"),
        ("stars_prior = { pseudo_count = 1e308 }", "stars_prior.pseudo_count"),
    ],
)
def test_a_fixed_prior_beyond_what_the_bounds_can_compute_is_refused(
    client: Client, table: str, key: str
) -> None:
    toml = WEIGHTS.replace('likes_prior = "auto"', table).replace(
        "{ beta_mean = 1 }", "{ beta_mean = 1, beta_lower_bound = 1, star_lower_bound = 1 }"
    )

    with pytest.raises(grpc.RpcError) as refused:
        client.admin.ReloadWeights(admin_pb2.ReloadWeightsRequest(toml=toml), timeout=10)

    assert grpc.StatusCode.INVALID_ARGUMENT == refused.value.code()
    assert f"profiles.likes.{key}" in (refused.value.details() or "")


def test_an_estimator_for_a_prior_that_is_not_fitted_is_refused(client: Client) -> None:
    toml = WEIGHTS.replace(
        "{ mean = 3, strength = 5 }", '{ mean = 3, strength = 5, estimator = "marginal" }'
    )

    with pytest.raises(grpc.RpcError) as refused:
        client.admin.ReloadWeights(admin_pb2.ReloadWeightsRequest(toml=toml), timeout=10)

    assert "profiles.likes.prior.estimator" in (refused.value.details() or "")


def test_the_status_shows_the_like_prior_in_force_of_each_profile(
    start_server: Callable[..., Client], tmp_path: Path
) -> None:
    client = start_with_votes(start_server, tmp_path)
    ups = np.array([v[0] for v in VOTES.values()])
    fitted = fit_like_prior(ups, np.array([v[1] for v in VOTES.values()]))

    status = client.admin.GetStatus(admin_pb2.GetStatusRequest(), timeout=10)

    [likes] = [p for p in status.priors if p.profile == "likes"]
    assert (fitted.alpha, fitted.beta) == pytest.approx((likes.likes_alpha, likes.likes_beta))
    assert "fixed+likes" == likes.source
