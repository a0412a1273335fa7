"""Comment sentiment as a ranking component (weight "sentiment", ranking.sentiment) over a
real server, on both backends: the comments' Bayesian average sentiment, shrunk toward a
fixed or fitted prior; kept in Rank's score columns, explained, erased with its
commenter, previewed."""

from __future__ import annotations

import grpc
import pytest

from reviewrank.service.cli.main import main
from reviewrank.v1 import admin_pb2, feedback_pb2, ranking_pb2
from tests.conftest import ADMIN_TOKEN, Client, both_backends
from tests.helpers import batch, candidates, comment, explaining, field_violations, rating

pytestmark = both_backends

# The "commented" test profile (tests/conftest.py): sentiment only, prior mean 0, strength 2.
PRIOR_MEAN, PRIOR_STRENGTH = 0.0, 2.0


def say(client: Client, product: str, *scores: float) -> None:
    """One comment of each score on ``product``, each from another user."""
    events = [comment(product, f"{product}-u{i}", score=s) for i, s in enumerate(scores)]
    client.feedback.SubmitBatch(batch(*events))


def ranked(client: Client, profile: str, *products: str) -> list[str]:
    request = ranking_pb2.RankRequest(candidates=candidates(*products), profile=profile)
    return [r.product_id for r in client.ranking.Rank(request).results]


def explained(client: Client, product: str, profile: str) -> ranking_pb2.Explanation:
    request = ranking_pb2.RankRequest(candidates=candidates(product), profile=profile, explain=True)
    return explaining(client).Rank(request).results[0].explanation


def test_steady_praise_outranks_one_glowing_comment_no_comment_and_criticism(
    client: Client,
) -> None:
    say(client, "praised", *[0.8] * 10)
    say(client, "once", 1.0)
    say(client, "panned", *[-0.8] * 5)
    client.feedback.SubmitRating(rating("silent", "u1", 5))

    order = ranked(client, "commented", "panned", "silent", "once", "praised")

    assert ["praised", "once", "silent", "panned"] == order


def test_a_new_comment_moves_the_kept_scores_at_once(client: Client) -> None:
    say(client, "a", 0.5)
    say(client, "b", 0.4)
    assert ["a", "b"] == ranked(client, "commented", "a", "b")

    client.feedback.SubmitComment(comment("b", "late", score=1.0))

    assert ["b", "a"] == ranked(client, "commented", "a", "b")


def test_a_users_newer_comment_replaces_their_score_in_the_ranking(client: Client) -> None:
    say(client, "a", 0.5)
    client.feedback.SubmitComment(comment("b", "fickle", score=0.9, at=1000))
    assert ["b", "a"] == ranked(client, "commented", "a", "b")

    client.feedback.SubmitComment(comment("b", "fickle", score=-0.9, at=2000))

    assert ["a", "b"] == ranked(client, "commented", "a", "b")


def test_the_explanation_gives_the_comments_the_prior_and_the_average(client: Client) -> None:
    say(client, "p1", 0.5, 1.0, -0.3)

    e = explained(client, "p1", "commented")

    expected = (PRIOR_MEAN * PRIOR_STRENGTH + 1.2) / (PRIOR_STRENGTH + 3)
    assert 3 == e.comments
    assert pytest.approx(0.4) == e.sentiment_mean
    assert (PRIOR_MEAN, PRIOR_STRENGTH) == (e.sentiment_prior_mean, e.sentiment_prior_strength)
    assert pytest.approx(expected) == e.sentiment_average
    [part] = [c for c in e.contributions if c.component == "sentiment"]
    assert (pytest.approx(expected), pytest.approx((expected + 1) / 2)) == (
        part.value,
        part.normalized,
    )


def test_a_profile_that_weighs_no_sentiment_is_not_moved_by_comments(client: Client) -> None:
    client.feedback.SubmitRating(rating("a", "u1", 5))
    client.feedback.SubmitRating(rating("b", "u1", 4))
    say(client, "b", *[1.0] * 20)

    assert ["a", "b"] == ranked(client, "", "a", "b")
    assert 0.0 == explained(client, "b", "").sentiment_prior_strength


def test_the_fitted_prior_comes_from_the_catalogues_comments(client: Client) -> None:
    for i in range(30):
        say(client, f"p{i}", *[0.3 + (i % 5 - 2) * 0.1 + (j % 3 - 1) * 0.2 for j in range(6)])

    e = explained(client, "p0", "commented_auto")

    assert "+sentiment" in e.prior_source
    assert pytest.approx(0.3, abs=0.05) == e.sentiment_prior_mean
    assert e.sentiment_prior_strength > 0


def test_with_the_fitted_prior_one_glowing_comment_does_not_beat_steady_praise(
    client: Client,
) -> None:
    # Comments vary far more within a product than products' means do (as real ones do).
    usual = [0.9, -0.5, 0.6, 0.1, 0.8, -0.3]
    for i in range(20):
        say(client, f"usual{i}", *usual[i % 3 :], *usual[: i % 3])
    say(client, "praised", *[0.9, 0.3, 1.0, 0.5] * 3)
    say(client, "once", 1.0)
    for product in ("praised", "once"):
        client.feedback.SubmitRating(rating(product, "u1", 4))

    assert ["praised", "once"] == ranked(client, "commented_auto", "once", "praised")


def test_forgetting_a_commenter_takes_their_comment_out_of_the_ranking(client: Client) -> None:
    say(client, "a", 0.5)
    client.feedback.SubmitComment(comment("b", "gushing", score=1.0))
    assert ["b", "a"] == ranked(client, "commented", "a", "b")

    client.eraser.ForgetUser(feedback_pb2.ForgetUserRequest(user_id="gushing"))

    assert ["a", "b"] == ranked(client, "commented", "a", "b")


def test_a_preview_can_weigh_sentiment(client: Client) -> None:
    client.feedback.SubmitRating(rating("rated", "u1", 5))
    say(client, "liked", *[0.9] * 5)
    say(client, "disliked", *[-0.5] * 5)  # the fitted prior's mean falls between the two
    by_sentiment = """
default_profile = "main"
[profiles.main]
weights = { sentiment = 1 }
"""
    sample = admin_pb2.CandidateList(candidates=candidates("rated", "liked"))

    response = client.admin.PreviewWeights(
        admin_pb2.PreviewWeightsRequest(toml=by_sentiment, samples=[sample], top_k=2)
    )

    assert ["liked", "rated"] == list(response.changes[0].candidate_top)


@pytest.mark.parametrize(
    ("sentiment", "key", "problem"),
    [
        ('{ prior = "fitted" }', "sentiment.prior", '"auto"'),
        ("{ prior = { mean = 2, strength = 1 } }", "sentiment.prior.mean", "from -1 to 1"),
        ("{ prior = { mean = 0 } }", "sentiment.prior.strength", "is required"),
        ("{ prior = { mean = 0, strength = -1 } }", "sentiment.prior.strength", "from 0"),
        ("{ half_life_days = 3 }", "sentiment.half_life_days", "unknown"),
    ],
)
def test_a_bad_sentiment_setting_is_refused_naming_its_key(
    client: Client, sentiment: str, key: str, problem: str
) -> None:
    document = f"""
default_profile = "main"
[profiles.main]
weights = {{ sentiment = 1 }}
sentiment = {sentiment}
"""
    with pytest.raises(grpc.RpcError) as refused:
        client.admin.ReloadWeights(admin_pb2.ReloadWeightsRequest(toml=document))

    assert grpc.StatusCode.INVALID_ARGUMENT == refused.value.code()
    violations = field_violations(refused.value)
    assert problem in violations.get(f"profiles.main.{key}", ""), violations


def test_the_status_gives_each_profiles_sentiment_prior_in_force(client: Client) -> None:
    priors = {p.profile: p for p in client.admin.GetStatus(admin_pb2.GetStatusRequest()).priors}

    commented = priors["commented"]
    assert (PRIOR_MEAN, PRIOR_STRENGTH) == (commented.sentiment_mean, commented.sentiment_strength)
    assert 0.0 == priors["default"].sentiment_strength
    assert priors["commented_auto"].sentiment_strength > 0
    assert "+sentiment" in priors["commented_auto"].source


def test_get_weights_gives_each_profiles_sentiment_prior(client: Client) -> None:
    profiles = {p.name: p for p in client.admin.GetWeights(admin_pb2.GetWeightsRequest()).profiles}

    fixed, auto = profiles["commented"], profiles["commented_auto"]
    assert (False, PRIOR_MEAN, PRIOR_STRENGTH) == (
        fixed.sentiment_prior_auto,
        fixed.sentiment_prior_mean,
        fixed.sentiment_prior_strength,
    )
    assert auto.sentiment_prior_auto


def test_the_rank_commands_explanation_shows_each_products_comments(
    client: Client, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    say(client, "a", 0.5, -0.1)
    client.feedback.SubmitRating(rating("b", "u1", 4))
    monkeypatch.setenv("REVIEWRANK_ADMIN_TOKEN", ADMIN_TOKEN)  # --explain sends it

    assert 0 == main(["rank", "a", "b", "--server", client.target, "--explain"])

    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[1]: line for line in lines[2:-1]}
    assert "comments" in lines[0]
    assert "2 (+0.20)" in rows["a"]


# -- channel weights ([profiles.commented_by_channel]: store = 3, instagram = 0) ------------


def by_channel(client: Client, product: str) -> ranking_pb2.Explanation:
    return explained(client, product, "commented_by_channel")


def test_a_comment_from_a_weighted_channel_counts_its_weight(client: Client) -> None:
    client.feedback.SubmitComment(comment("in-store", "u1", score=0.8, channel="store"))
    client.feedback.SubmitComment(comment("on-web", "u1", score=0.8, channel="web"))

    store, web = by_channel(client, "in-store"), by_channel(client, "on-web")

    assert (1, 3.0, 1.0) == (store.comments, store.weighted_comments, web.weighted_comments)
    assert pytest.approx(3 * 0.8 / (2 + 3)) == store.sentiment_average
    assert pytest.approx(0.8 / (2 + 1)) == web.sentiment_average
    assert ["in-store", "on-web"] == ranked(client, "commented_by_channel", "on-web", "in-store")


def test_a_channel_of_weight_zero_does_not_move_the_average(client: Client) -> None:
    client.feedback.SubmitComment(comment("p", "u1", score=0.5, channel="web"))
    client.feedback.SubmitComment(comment("p", "u2", score=-1.0, channel="instagram"))

    e = by_channel(client, "p")

    assert (2, 1.0) == (e.comments, e.weighted_comments)
    assert pytest.approx(0.5 / 3) == e.sentiment_average


def test_the_kept_scores_weigh_channels_as_the_explanation_does(client: Client) -> None:
    for i, channel in enumerate(["store", "web", "instagram", "", "store"]):
        client.feedback.SubmitComment(comment(f"p{i % 3}", f"u{i}", score=i / 5, channel=channel))
    request = ranking_pb2.RankRequest(
        candidates=candidates("p0", "p1", "p2"), profile="commented_by_channel"
    )

    kept = client.ranking.Rank(request)
    request.explain = True
    direct = explaining(client).Rank(request)

    assert [(r.product_id, pytest.approx(r.score)) for r in direct.results] == [
        (r.product_id, r.score) for r in kept.results
    ]


def test_a_newer_comment_from_another_channel_moves_the_weighted_sums(client: Client) -> None:
    client.feedback.SubmitComment(comment("p", "u1", score=0.9, channel="store", at=1000))
    assert 3.0 == by_channel(client, "p").weighted_comments

    client.feedback.SubmitComment(comment("p", "u1", score=0.9, channel="web", at=2000))

    assert 1.0 == by_channel(client, "p").weighted_comments


def test_forgetting_a_commenter_takes_their_weighted_comment_out(client: Client) -> None:
    client.feedback.SubmitComment(comment("p", "gone", score=0.9, channel="store"))

    client.eraser.ForgetUser(feedback_pb2.ForgetUserRequest(user_id="gone"))

    e = by_channel(client, "p")
    assert (0, 0.0, 0.0) == (e.comments, e.weighted_comments, e.sentiment_average)


def test_the_weighted_sums_are_rebuilt_from_the_comments_at_start_up(start_server) -> None:  # type: ignore[no-untyped-def]
    first = start_server()
    first.feedback.SubmitComment(comment("p", "u1", score=0.6, channel="store"))
    first.feedback.SubmitComment(comment("p", "u2", score=0.2, channel="web"))
    first.server.stop(grace=1.0)

    second = start_server()

    e = by_channel(second, "p")
    assert 4.0 == e.weighted_comments
    assert pytest.approx((3 * 0.6 + 0.2) / (2 + 4)) == e.sentiment_average


def test_channels_named_by_a_reload_are_summed_from_the_comments_in_force(client: Client) -> None:
    client.feedback.SubmitComment(comment("p", "u1", score=1.0, channel="app"))
    weights = """
default_profile = "main"
[profiles.main]
weights = { sentiment = 1 }
sentiment = { prior = { mean = 0.0, strength = 1 } }
channels = { app = 4 }
"""
    client.admin.ReloadWeights(admin_pb2.ReloadWeightsRequest(toml=weights))

    e = explained(client, "p", "main")

    assert (4.0, pytest.approx(4 / 5)) == (e.weighted_comments, e.sentiment_average)


def test_a_preview_can_weigh_comment_channels_not_kept_yet(client: Client) -> None:
    client.feedback.SubmitComment(comment("app-praised", "u1", score=0.6, channel="app"))
    client.feedback.SubmitComment(comment("web-praised", "u1", score=0.7, channel="web"))
    by_app = """
default_profile = "main"
[profiles.main]
weights = { sentiment = 1 }
sentiment = { prior = { mean = 0.0, strength = 1 } }
channels = { app = 5 }
"""
    sample = admin_pb2.CandidateList(candidates=candidates("web-praised", "app-praised"))

    response = client.admin.PreviewWeights(
        admin_pb2.PreviewWeightsRequest(toml=by_app, samples=[sample], top_k=2)
    )

    assert ["app-praised", "web-praised"] == list(response.changes[0].candidate_top)
