"""Shares as a ranking component (weight "shares", ranking.shares) over a real server, on
both backends: the decayed share rate over the days a product is listed, shrunk by its
Gamma prior; explained, in the stats, erased with its sharer, followed across processes,
previewed."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reviewrank.ranking.shares import MIN_FITTED_RATE_DAYS
from reviewrank.service.compose import build_application
from reviewrank.service.domain.values import ShareEvent
from reviewrank.v1 import admin_pb2, feedback_pb2, ranking_pb2
from tests.conftest import Client, both_backends
from tests.helpers import batch, candidates, explaining, like, rating, share

pytestmark = both_backends

DAY = 86_400
HALF_LIFE_DAYS = 30  # the test profiles' (tests/conftest.py)


def share_steadily(client: Client, product: str, users: int = 20, days: int = 30) -> None:
    """``users`` shares of ``product``, one every days/users days over the last ``days``."""
    now = int(time.time())
    step = days * DAY // users
    start = now - days * DAY
    events = [share(product, f"{product}-u{i}", at=start + i * step) for i in range(users)]
    client.feedback.SubmitBatch(batch(*events))


def ranked(client: Client, profile: str, *products: str) -> list[str]:
    request = ranking_pb2.RankRequest(candidates=candidates(*products), profile=profile)
    return [r.product_id for r in client.ranking.Rank(request).results]


def stats(client: Client, product: str, profile: str = "shared") -> ranking_pb2.ProductStats:
    request = ranking_pb2.GetProductStatsRequest(product_ids=[product], profile=profile)
    return client.ranking.GetProductStats(request).stats[0]


def explained(client: Client, product: str, profile: str) -> ranking_pb2.Explanation:
    request = ranking_pb2.RankRequest(candidates=candidates(product), profile=profile, explain=True)
    return explaining(client).Rank(request).results[0].explanation


def decayed_exposure(age_days: float) -> float:
    """Days listed, each weighted 0.5^(age / half-life) (ranking.shares.exposure_days)."""
    h = HALF_LIFE_DAYS
    return h / math.log(2) * (1 - 0.5 ** (age_days / h))


def test_steady_sharing_outranks_one_share_of_a_new_product_and_no_shares(client: Client) -> None:
    share_steadily(client, "steady")
    client.feedback.SubmitShare(share("new", "u1", at=None))
    client.feedback.SubmitRating(rating("unshared", "u1", 5, at=int(time.time()) - 60 * DAY))

    assert ["steady", "new", "unshared"] == ranked(client, "shared", "unshared", "new", "steady")


def test_with_the_fitted_prior_one_share_of_a_new_product_does_not_beat_steady_sharing(
    client: Client,
) -> None:
    share_steadily(client, "steady")
    client.feedback.SubmitShare(share("new", "u1", at=None))
    month_ago = int(time.time()) - 30 * DAY
    for product in ("a", "b", "c"):
        client.feedback.SubmitLike(like(product, "u1", at=month_ago))

    assert ["steady", "new"] == ranked(client, "shared_auto", "a", "new", "b", "steady", "c")[:2]


def test_a_profile_that_weighs_no_shares_is_not_moved_by_them(client: Client) -> None:
    share_steadily(client, "steady")
    client.feedback.SubmitRating(rating("rated", "u1", 5))

    assert ["rated", "steady"] == ranked(client, "fixed", "steady", "rated")
    assert 0 == len([c for c in explained(client, "steady", "fixed").contributions
                     if c.component == "shares"])  # fmt: skip


def test_the_explanation_gives_the_decayed_shares_the_exposure_and_the_prior(
    client: Client,
) -> None:
    share_steadily(client, "steady", users=20, days=30)

    e = explained(client, "steady", "shared")

    weights = [0.5 ** ((30 - 1.5 * i) / HALF_LIFE_DAYS) for i in range(20)]
    assert (HALF_LIFE_DAYS, 0.5, 50.0) == (
        e.shares_half_life_days,
        e.share_prior_shape,
        e.share_prior_rate_days,
    )
    assert sum(weights) == pytest.approx(e.weighted_shares, rel=1e-3)
    assert decayed_exposure(30) == pytest.approx(e.exposure_days, rel=1e-3)
    [component] = [c for c in e.contributions if c.component == "shares"]
    a, b = 0.5 + e.weighted_shares, 50.0 + e.exposure_days
    z = 1.959964  # the profile's confidence, 0.95
    bound = a * (1 - 1 / (9 * a) - z / (3 * math.sqrt(a))) ** 3 / b  # Wilson–Hilferty
    # The only product shared: the reference is its own posterior mean rate.
    assert a / b == pytest.approx(e.share_reference_rate)
    assert (bound, bound / (bound + a / b)) == pytest.approx(
        (component.value, component.normalized), rel=1e-5
    )


def test_product_stats_give_the_share_rate_under_a_profile_that_weighs_shares(
    client: Client,
) -> None:
    client.feedback.SubmitShare(share("p1", "u1", at=None))

    s = stats(client, "p1")

    assert (1, 1.0) == (s.shares, pytest.approx(s.weighted_shares, rel=1e-3))
    assert (0.5 + s.weighted_shares) / (50.0 + s.exposure_days) == pytest.approx(s.share_rate)
    assert (0.0, 0.0) == (stats(client, "p1", "fixed").weighted_shares,
                          stats(client, "p1", "fixed").share_rate)  # fmt: skip


def test_forgetting_a_sharer_takes_their_share_out_of_the_rate(client: Client) -> None:
    for user in ("u1", "u2"):
        client.feedback.SubmitShare(share("p1", user, at=None))
    before = stats(client, "p1").weighted_shares

    client.eraser.ForgetUser(feedback_pb2.ForgetUserRequest(user_id="u1"))

    assert (2.0, 1.0) == pytest.approx((before, stats(client, "p1").weighted_shares), rel=1e-3)


def test_a_fitted_share_prior_comes_from_the_catalogue(client: Client) -> None:
    for i in range(12):  # rates spread out: a few products shared often, most rarely
        share_steadily(client, f"p{i}", users=1 + (i % 4) ** 3, days=30)

    e = explained(client, "p0", "shared_auto")

    assert e.share_prior_shape > 0 and e.share_prior_rate_days > 0
    assert (0.5, 50.0) != (e.share_prior_shape, e.share_prior_rate_days)


def test_shares_written_by_another_process_reach_the_share_rate(client: Client) -> None:
    client.feedback.SubmitShare(share("p1", "u1", at=None))
    other = build_application(client.settings)
    try:
        now_us = int(time.time() * 1e6)
        [result] = other.submit([ShareEvent("x1", "p1", "u2", now_us)], 10)
    finally:
        other.close()

    request = ranking_pb2.GetProductStatsRequest(
        product_ids=["p1"], profile="shared", min_seq=result.seq
    )
    s = client.ranking.GetProductStats(request).stats[0]
    assert (2, 2.0) == (s.shares, pytest.approx(s.weighted_shares, rel=1e-3))


def test_a_preview_can_weigh_shares_at_a_half_life_the_server_does_not_keep(
    client: Client,
) -> None:
    share_steadily(client, "steady")
    client.feedback.SubmitRating(rating("rated", "u1", 5))
    weekly = """
default_profile = "main"
[profiles.main]
weights = { shares = 1 }
shares = { half_life_days = 7 }
"""
    sample = admin_pb2.CandidateList(candidates=candidates("rated", "steady"))

    response = client.admin.PreviewWeights(
        admin_pb2.PreviewWeightsRequest(toml=weekly, samples=[sample], top_k=2)
    )

    assert ["steady", "rated"] == list(response.changes[0].candidate_top)


# -- channel weights ([profiles.x.channels]; the "shared" test profile: store 2, instagram 0.5)


def test_each_share_counts_the_weight_of_its_channel(client: Client) -> None:
    for user, channel in (("u1", "store"), ("u2", "instagram"), ("u3", "web"), ("u4", "")):
        client.feedback.SubmitShare(share("p1", user, at=None, channel=channel))

    assert 2 + 0.5 + 1 + 1 == pytest.approx(stats(client, "p1").weighted_shares, rel=1e-3)


def test_channel_weights_hold_after_a_restart(
    client: Client, start_server: Callable[..., Client]
) -> None:
    for user, channel in (("u1", "store"), ("u2", "instagram")):
        client.feedback.SubmitShare(share("p1", user, at=None, channel=channel))

    again = start_server()

    assert 2.5 == pytest.approx(stats(again, "p1").weighted_shares, rel=1e-3)


def test_a_users_newer_share_from_another_channel_takes_that_channels_weight(
    client: Client,
) -> None:
    now = int(time.time())
    client.feedback.SubmitShare(share("p1", "u1", at=now - 5, channel="store"))
    client.feedback.SubmitShare(share("p1", "u1", at=now, channel="instagram"))

    assert 0.5 == pytest.approx(stats(client, "p1").weighted_shares, rel=1e-3)


def test_forgetting_a_sharer_takes_their_channels_weight_out(client: Client) -> None:
    client.feedback.SubmitShare(share("p1", "u1", at=None, channel="store"))
    client.feedback.SubmitShare(share("p1", "u2", at=None, channel="web"))

    client.eraser.ForgetUser(feedback_pb2.ForgetUserRequest(user_id="u1"))

    assert 1.0 == pytest.approx(stats(client, "p1").weighted_shares, rel=1e-3)


def test_a_share_written_by_another_process_keeps_its_channels_weight(client: Client) -> None:
    client.feedback.SubmitShare(share("p1", "u1", at=None, channel="instagram"))
    other = build_application(client.settings)
    try:
        now_us = int(time.time() * 1e6)
        [result] = other.submit([ShareEvent("x1", "p1", "u2", now_us, "store")], 10)
    finally:
        other.close()

    request = ranking_pb2.GetProductStatsRequest(
        product_ids=["p1"], profile="shared", min_seq=result.seq
    )
    s = client.ranking.GetProductStats(request).stats[0]
    assert 2.5 == pytest.approx(s.weighted_shares, rel=1e-3)


def test_weights_naming_a_new_channel_weigh_the_shares_already_made_there(
    client: Client,
) -> None:
    client.feedback.SubmitShare(share("p1", "u1", at=None, channel="app"))
    client.feedback.SubmitShare(share("p1", "u2", at=None, channel="store"))
    weights = """
default_profile = "main"
[profiles.main]
weights = { shares = 1 }
shares = { prior = { shape = 0.5, rate_days = 50 } }
channels = { app = 3, store = 2 }
"""
    client.admin.ReloadWeights(admin_pb2.ReloadWeightsRequest(toml=weights))

    assert 5.0 == pytest.approx(stats(client, "p1", profile="main").weighted_shares, rel=1e-3)


SHARES_ONLY = """
default_profile = "social"
[profiles.social]
weights = { bayesian_average = 1, shares = 1 }
prior = { mean = 3.0, strength = 2 }
shares = { half_life_days = 7, prior = { shape = 0.5, rate_days = 50 } }
channels = { store = 2 }
"""


def test_a_server_weighing_shares_but_no_decayed_stars_keeps_and_follows_share_sums_only(
    client: Client, start_server: Callable[..., Client], tmp_path: Path
) -> None:
    client.feedback.SubmitShare(share("p1", "u1", at=None, channel="store"))
    client.feedback.SubmitRating(rating("p1", "u1", 5))
    weights = tmp_path / "shares-only.toml"
    weights.write_text(SHARES_ONLY)
    server = start_server(weights=weights)
    other = build_application(client.settings)
    try:
        [result] = other.submit([ShareEvent("x1", "p1", "u2", int(time.time() * 1e6))], 10)
    finally:
        other.close()

    request = ranking_pb2.GetProductStatsRequest(product_ids=["p1"], min_seq=result.seq)
    s = server.ranking.GetProductStats(request).stats[0]
    assert (2 + 1, 1, 5.0) == (
        pytest.approx(s.weighted_shares, rel=1e-3),
        s.rating_count,
        s.stars_mean,
    )
    assert not server.server.app.catalogue.stars_decayed


def test_the_status_gives_each_profiles_share_prior_in_force(client: Client) -> None:
    share_steadily(client, "steady")

    status = client.admin.GetStatus(admin_pb2.GetStatusRequest())

    priors = {p.profile: (p.shares_shape, p.shares_rate_days) for p in status.priors}
    assert ((0.5, 50.0), (0.0, 0.0)) == (priors["shared"], priors["fixed"])
    assert priors["shared_auto"][0] > 0 and priors["shared_auto"][1] >= MIN_FITTED_RATE_DAYS


def test_get_weights_gives_each_profiles_share_settings(client: Client) -> None:
    weights = client.admin.GetWeights(admin_pb2.GetWeightsRequest())

    profiles = {p.name: p for p in weights.profiles}
    shared, auto = profiles["shared"], profiles["shared_auto"]
    assert (30.0, False, 0.5, 50.0, {"instagram": 0.5, "store": 2.0}) == (
        shared.shares_half_life_days,
        shared.shares_prior_auto,
        shared.shares_prior_shape,
        shared.shares_prior_rate_days,
        dict(shared.channels),
    )
    assert (30.0, True, {}) == (
        auto.shares_half_life_days,
        auto.shares_prior_auto,
        dict(auto.channels),
    )
