"""The manipulation defences on a real server (issue 23): a crowd of new accounts in an
hour is damped in the scores of profiles with defences on, counted in the stats, shown
to admins, and decided on by them."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
import pytest

from reviewrank.v1 import admin_pb2, feedback_pb2, ranking_pb2
from tests.conftest import TEST_WEIGHTS, Client, both_backends
from tests.helpers import batch, candidates, explaining, field_violations, like, rating
from tests.observability_helpers import scrape

DAY = 86_400
# The test weights, with a profile that counts every vote in full.
WEIGHTS = (
    TEST_WEIGHTS
    + """
[profiles.undefended]
weights = { bayesian_average = 1 }
prior = { mean = 2.5, strength = 4 }
integrity = false

[profiles.fixed_with_likes]
weights = { bayesian_average = 0.7, wilson = 0.3 }
prior = { mean = 2.5, strength = 4 }
"""
)
PEERS = [f"peer-{i}" for i in range(9)]
TARGET = "target"
CROWD = 30


@pytest.fixture
def defended(start_server: Callable[..., Client], tmp_path: object) -> Client:
    """A server whose votes are weighed (the pass run by each test when it needs one),
    holding ten products of one category, each with ten ratings spread over 200 days."""
    (tmp_path / "weights.toml").write_text(WEIGHTS)  # type: ignore[operator]
    client = start_server(integrity_seconds=3600.0, metrics_address="127.0.0.1:0")
    now = int(time.time())
    events = []
    for p, product in enumerate([TARGET, *PEERS]):
        for i in range(10):
            stars = 3 if product == TARGET else 4 + (i + p) % 2
            at = now - (200 - 20 * i - p) * DAY
            events.append(rating(product, f"h-{product}-{i}", stars, at, category="dresses"))
    client.feedback.SubmitBatch(batch(*events))
    weigh(client)
    return client


def weigh(client: Client) -> None:
    """Weighs the votes in force now (what the server does every integrity_seconds)."""
    weigher = client.server.app.integrity
    assert weigher is not None
    assert weigher.wait_for_pass(30.0)


def shill(
    client: Client,
    stars: int = 5,
    value: int = feedback_pb2.LIKE,
    users: str = "new",
    verified: Callable[[int], bool] = lambda j: False,
    ago: int = 0,
) -> None:
    """A crowd of CROWD ratings and likes on the target within a minute, ``ago`` seconds
    before now; the votes of the j-th voter sent as verified purchases where
    ``verified(j)``."""
    now = int(time.time()) - ago
    client.feedback.SubmitBatch(
        batch(
            *(
                rating(TARGET, f"{users}-{j}", stars, now - j, verified=verified(j))
                for j in range(CROWD)
            ),
            *(
                like(TARGET, f"{users}-{j}", value, now - j, verified=verified(j))
                for j in range(CROWD)
            ),
        )
    )


def score(client: Client, profile: str, product: str = TARGET) -> float:
    response = client.ranking.Rank(
        ranking_pb2.RankRequest(candidates=candidates(*PEERS, TARGET), profile=profile)
    )
    return {r.product_id: r.score for r in response.results}[product]


def bursts(client: Client) -> admin_pb2.ListBurstsResponse:
    return client.admin.ListBursts(admin_pb2.ListBurstsRequest())


def decide(
    client: Client, burst: admin_pb2.Burst, kind: int, actor: str = "ops@shop"
) -> admin_pb2.DecideBurstResponse:
    return client.admin.DecideBurst(
        admin_pb2.DecideBurstRequest(
            product_id=burst.product_id,
            start=burst.start,
            end=burst.end,
            decision=kind,
            actor=actor,
            reason="checked the orders",
        )
    )


@both_backends
def test_a_crowd_of_new_accounts_in_an_hour_leaves_a_defended_score_as_it_was(
    defended: Client,
) -> None:
    before = score(defended, "fixed")

    shill(defended)
    weigh(defended)

    assert before == pytest.approx(score(defended, "fixed"), abs=1e-9)


def test_the_same_crowd_moves_a_profile_with_defences_off(defended: Client) -> None:
    before = score(defended, "undefended")

    shill(defended)
    weigh(defended)

    assert score(defended, "undefended") > before + 0.1


def test_a_brigade_of_one_star_ratings_and_dislikes_leaves_a_defended_score_as_it_was(
    defended: Client,
) -> None:
    before = score(defended, "fixed_with_likes", PEERS[0])
    now = int(time.time())
    defended.feedback.SubmitBatch(
        batch(
            *(rating(PEERS[0], f"b-{j}", 1, now - j) for j in range(CROWD)),
            *(like(PEERS[0], f"b-{j}", feedback_pb2.DISLIKE, now - j) for j in range(CROWD)),
        )
    )

    weigh(defended)

    assert before == pytest.approx(score(defended, "fixed_with_likes", PEERS[0]), abs=1e-9)


def test_a_crowd_of_established_buyers_counts_in_full(defended: Client) -> None:
    now = int(time.time())
    history = [  # each voted on six products, 100 to 130 days ago
        rating(PEERS[k], f"old-{j}", 4, now - (100 + j % 5 + 5 * k) * DAY)
        for j in range(CROWD)
        for k in range(6)
    ]
    defended.feedback.SubmitBatch(batch(*history))
    weigh(defended)

    shill(defended, users="old")
    weigh(defended)

    assert score(defended, "undefended") == pytest.approx(score(defended, "fixed"), abs=1e-9)


@both_backends
def test_a_crowd_of_verified_purchases_counts_in_full(defended: Client) -> None:
    shill(defended, verified=lambda j: True)

    weigh(defended)

    assert score(defended, "undefended") == pytest.approx(score(defended, "fixed"), abs=1e-9)


@both_backends
def test_a_crowd_of_whom_some_are_verified_purchases_is_damped_only_for_the_others(
    defended: Client,
) -> None:
    shill(defended, verified=lambda j: j % 3 == 0)  # 10 of the 30 voters

    weigh(defended)

    [stats] = defended.ranking.GetProductStats(
        ranking_pb2.GetProductStatsRequest(product_ids=[TARGET], profile="fixed")
    ).stats
    assert (20, 20) == pytest.approx((stats.damped_ratings, stats.damped_likes))


def test_a_verified_purchase_sent_alone_counts_in_full_in_a_crowd(defended: Client) -> None:
    # (SubmitRating and SubmitLike, not a batch: the single methods carry the flag too)
    now = int(time.time())
    for j in range(CROWD):
        defended.feedback.SubmitRating(rating(TARGET, f"v-{j}", 5, now - j, verified=j == 0))
        defended.feedback.SubmitLike(like(TARGET, f"v-{j}", at=now - j, verified=j == 0))

    weigh(defended)

    [stats] = defended.ranking.GetProductStats(
        ranking_pb2.GetProductStatsRequest(product_ids=[TARGET], profile="fixed")
    ).stats
    assert (CROWD - 1, CROWD - 1) == pytest.approx((stats.damped_ratings, stats.damped_likes))


def test_a_newer_unverified_vote_of_a_verified_crowd_is_damped(defended: Client) -> None:
    shill(defended, verified=lambda j: True, ago=120)
    weigh(defended)

    shill(defended)  # the same users again, now, unverified: their newer votes win
    weigh(defended)

    [stats] = defended.ranking.GetProductStats(
        ranking_pb2.GetProductStatsRequest(product_ids=[TARGET], profile="fixed")
    ).stats
    assert (CROWD, CROWD) == pytest.approx((stats.damped_ratings, stats.damped_likes))


def test_damped_votes_stay_counted_in_the_stats_and_show_what_they_lost(
    defended: Client,
) -> None:
    shill(defended)
    weigh(defended)

    [stats] = defended.ranking.GetProductStats(
        ranking_pb2.GetProductStatsRequest(product_ids=[TARGET], profile="fixed")
    ).stats

    assert (10 + CROWD, CROWD) == (stats.rating_count, stats.likes)
    assert (CROWD, CROWD, 0.0) == pytest.approx(
        (stats.damped_ratings, stats.damped_likes, stats.damped_dislikes)
    )


def test_an_explained_ranking_shows_the_damped_votes(defended: Client) -> None:
    shill(defended)
    weigh(defended)

    response = explaining(defended).Rank(
        ranking_pb2.RankRequest(candidates=candidates(TARGET), profile="fixed", explain=True)
    )

    [result] = response.results
    assert (CROWD, CROWD) == pytest.approx(
        (result.explanation.damped_ratings, result.explanation.damped_likes)
    )


def test_a_profile_with_defences_off_shows_nothing_damped(defended: Client) -> None:
    shill(defended)
    weigh(defended)

    [stats] = defended.ranking.GetProductStats(
        ranking_pb2.GetProductStatsRequest(product_ids=[TARGET], profile="undefended")
    ).stats

    assert (0.0, 0.0) == (stats.damped_ratings, stats.damped_likes)


@both_backends
def test_admins_see_the_burst_and_its_new_accounts(defended: Client) -> None:
    shill(defended)
    weigh(defended)

    listed = bursts(defended)

    [burst] = listed.bursts  # (a rating and a like each: two votes)
    assert (TARGET, 2 * CROWD, 0.0, False) == (
        burst.product_id,
        burst.votes,
        burst.damping,
        burst.dismissed,
    )
    assert {f"new-{j}" for j in range(CROWD)} == {v.user_id for v in listed.low_weight_voters}
    assert {"rating": CROWD, "like": CROWD, "dislike": 0} == dict(listed.damped_votes)


def test_an_honest_history_has_no_burst(defended: Client) -> None:
    listed = bursts(defended)

    assert (0, 0, True) == (listed.total_bursts, listed.total_low_weight_voters, listed.enabled)


def test_bursts_need_the_admin_token(defended: Client) -> None:
    stub_without_token = admin_stub(defended)

    with pytest.raises(grpc.RpcError) as caught:
        stub_without_token.ListBursts(admin_pb2.ListBurstsRequest())

    assert grpc.StatusCode.UNAUTHENTICATED == caught.value.code()


def admin_stub(client: Client) -> object:
    from reviewrank.v1 import admin_pb2_grpc

    return admin_pb2_grpc.AdminServiceStub(client.channel)


@both_backends
def test_a_confirmed_burst_counts_in_full(defended: Client) -> None:
    shill(defended)
    weigh(defended)
    [burst] = bursts(defended).bursts

    response = decide(defended, burst, admin_pb2.BURST_DECISION_CONFIRM)

    assert response.applied
    assert score(defended, "undefended") == pytest.approx(score(defended, "fixed"), abs=1e-9)
    assert 0 == bursts(defended).total_bursts


def test_a_dismissed_burst_stays_damped_and_listed(defended: Client) -> None:
    before = score(defended, "fixed")
    shill(defended)
    weigh(defended)
    [burst] = bursts(defended).bursts

    decide(defended, burst, admin_pb2.BURST_DECISION_DISMISS)

    [kept] = bursts(defended).bursts
    assert (True, burst.votes) == (kept.dismissed, kept.votes)
    assert before == pytest.approx(score(defended, "fixed"), abs=1e-9)


@both_backends
def test_decisions_are_recorded_with_who_decided_and_why(defended: Client) -> None:
    shill(defended)
    weigh(defended)
    [burst] = bursts(defended).bursts

    decide(defended, burst, admin_pb2.BURST_DECISION_DISMISS, actor="alice")

    [made] = defended.admin.ListBurstDecisions(admin_pb2.ListBurstDecisionsRequest()).decisions
    assert (TARGET, admin_pb2.BURST_DECISION_DISMISS, "alice", "checked the orders") == (
        made.product_id,
        made.decision,
        made.actor,
        made.reason,
    )
    assert (burst.start, burst.end) == (made.start, made.end)


def test_a_decision_survives_a_restart(
    defended: Client, start_server: Callable[..., Client]
) -> None:
    shill(defended)
    weigh(defended)
    [burst] = bursts(defended).bursts
    decide(defended, burst, admin_pb2.BURST_DECISION_CONFIRM)
    confirmed = score(defended, "fixed")
    defended.server.stop(grace=1.0)

    again = start_server(integrity_seconds=3600.0)

    assert confirmed == pytest.approx(score(again, "fixed"), abs=1e-9)


def test_a_decision_on_a_burst_not_listed_is_not_found(defended: Client) -> None:
    shill(defended)
    weigh(defended)
    [burst] = bursts(defended).bursts
    other = admin_pb2.Burst()
    other.CopyFrom(burst)
    other.end.seconds += 1

    with pytest.raises(grpc.RpcError) as caught:
        decide(defended, other, admin_pb2.BURST_DECISION_CONFIRM)

    assert grpc.StatusCode.NOT_FOUND == caught.value.code()


def test_a_decision_with_bad_fields_names_each(defended: Client) -> None:
    request = admin_pb2.DecideBurstRequest(product_id="", actor="a\nb")

    with pytest.raises(grpc.RpcError) as caught:
        defended.admin.DecideBurst(request)

    assert grpc.StatusCode.INVALID_ARGUMENT == caught.value.code()
    assert {"product_id", "start", "end", "decision"} <= set(field_violations(caught.value))


def test_a_decision_needs_an_actor(defended: Client) -> None:
    shill(defended)
    weigh(defended)
    [burst] = bursts(defended).bursts

    with pytest.raises(grpc.RpcError) as caught:
        decide(defended, burst, admin_pb2.BURST_DECISION_CONFIRM, actor="")

    assert grpc.StatusCode.INVALID_ARGUMENT == caught.value.code()
    assert "actor" in field_violations(caught.value)


def test_prometheus_counts_the_damped_votes_by_kind(defended: Client) -> None:
    shill(defended, stars=1, value=feedback_pb2.DISLIKE)
    weigh(defended)

    metrics = scrape(defended)

    assert (CROWD, 0, CROWD) == (
        metrics("reviewrank_damped_votes", kind="rating"),
        metrics("reviewrank_damped_votes", kind="like"),
        metrics("reviewrank_damped_votes", kind="dislike"),
    )


def test_a_forgotten_user_leaves_the_low_weight_voters(defended: Client) -> None:
    shill(defended)
    weigh(defended)

    defended.eraser.ForgetUser(feedback_pb2.ForgetUserRequest(user_id="new-0"))

    voters = {v.user_id for v in bursts(defended).low_weight_voters}
    assert ("new-0" not in voters, CROWD - 1) == (True, len(voters))


def test_top_keeps_a_defended_order(defended: Client) -> None:
    def top(profile: str) -> list[str]:
        response = defended.ranking.Top(
            ranking_pb2.TopRequest(category="dresses", profile=profile, limit=10)
        )
        return [r.product_id for r in response.results]

    before = top("fixed")
    shill(defended)
    weigh(defended)

    assert (before, TARGET) == (top("fixed"), top("undefended")[0])


def test_a_server_that_weighs_no_votes_says_so(start_server: Callable[..., Client]) -> None:
    client = start_server(integrity_seconds=0.0)

    listed = bursts(client)
    with pytest.raises(grpc.RpcError) as caught:
        decide(client, admin_pb2.Burst(product_id="p", start={}, end={}), 1)

    assert (False, grpc.StatusCode.FAILED_PRECONDITION) == (listed.enabled, caught.value.code())


def test_a_forgotten_users_votes_leave_the_next_weighing(defended: Client) -> None:
    shill(defended)
    weigh(defended)

    defended.eraser.ForgetUser(feedback_pb2.ForgetUserRequest(user_id="new-0"))
    weigh(defended)

    listed = bursts(defended)
    assert ({f"new-{j}" for j in range(1, CROWD)}, 2 * (CROWD - 1)) == (
        {v.user_id for v in listed.low_weight_voters},
        listed.bursts[0].votes,
    )


def test_a_burst_is_damped_seconds_after_its_votes_without_waiting_for_the_interval(
    defended: Client,
) -> None:
    shill(defended)  # (the server weighs every hour, and soon after writes)

    deadline = time.monotonic() + 30.0
    while not bursts(defended).total_bursts and time.monotonic() < deadline:
        time.sleep(0.2)

    assert 1 == bursts(defended).total_bursts


def test_dismissing_a_dismissed_burst_again_is_refused(defended: Client) -> None:
    shill(defended)
    weigh(defended)
    [burst] = bursts(defended).bursts
    decide(defended, burst, admin_pb2.BURST_DECISION_DISMISS)
    [kept] = bursts(defended).bursts

    with pytest.raises(grpc.RpcError) as caught:
        decide(defended, kept, admin_pb2.BURST_DECISION_DISMISS)

    assert grpc.StatusCode.FAILED_PRECONDITION == caught.value.code()
    assert 1 == len(
        defended.admin.ListBurstDecisions(admin_pb2.ListBurstDecisionsRequest()).decisions
    )


def test_an_actor_of_spaces_is_refused(defended: Client) -> None:
    shill(defended)
    weigh(defended)
    [burst] = bursts(defended).bursts

    with pytest.raises(grpc.RpcError) as caught:
        decide(defended, burst, admin_pb2.BURST_DECISION_CONFIRM, actor="   ")

    assert "actor" in field_violations(caught.value)


def test_a_damped_crowd_that_votes_again_stays_damped_before_the_next_weighing(
    defended: Client,
) -> None:
    before = score(defended, "fixed")
    shill(defended, stars=1, value=feedback_pb2.DISLIKE)
    weigh(defended)

    shill(defended)  # the same accounts, five stars and likes now

    assert before == pytest.approx(score(defended, "fixed"), abs=1e-9)


def test_erasing_a_damped_crowd_leaves_the_honest_score(defended: Client) -> None:
    product = PEERS[1]  # (its honest ratings hold five stars too)
    before = score(defended, "fixed", product)
    now = int(time.time())
    defended.feedback.SubmitBatch(
        batch(*(rating(product, f"new-{j}", 5, now - j) for j in range(CROWD)))
    )
    weigh(defended)

    for j in range(CROWD):
        defended.eraser.ForgetUser(feedback_pb2.ForgetUserRequest(user_id=f"new-{j}"))

    assert before == pytest.approx(score(defended, "fixed", product), abs=1e-9)


def test_a_crowds_likes_weigh_at_their_own_time_not_their_old_ratings(defended: Client) -> None:
    now = int(time.time())
    defended.feedback.SubmitBatch(  # thirty accounts rated it over half a year
        batch(*(rating(TARGET, f"slow-{j}", 3, now - (180 - 6 * j) * DAY) for j in range(CROWD)))
    )
    weigh(defended)
    before = score(defended, "fixed_with_likes")

    defended.feedback.SubmitBatch(
        batch(*(like(TARGET, f"slow-{j}", feedback_pb2.LIKE, now - j) for j in range(CROWD)))
    )
    weigh(defended)

    assert before == pytest.approx(score(defended, "fixed_with_likes"), abs=1e-9)


def test_a_decision_on_a_burst_that_grew_since_it_was_listed_is_taken(defended: Client) -> None:
    shill(defended)
    weigh(defended)
    [seen] = bursts(defended).bursts
    defended.feedback.SubmitRating(rating(TARGET, "late", 5, int(time.time())))
    weigh(defended)

    response = decide(defended, seen, admin_pb2.BURST_DECISION_DISMISS)

    assert (seen.end, True) == (response.decision.end, bursts(defended).bursts[0].dismissed)


@pytest.mark.parametrize("seconds", [-1, 253_402_300_800, 2**62])
def test_a_decision_with_a_time_no_timestamp_holds_names_it(defended: Client, seconds: int) -> None:
    request = admin_pb2.DecideBurstRequest(
        product_id=TARGET, decision=admin_pb2.BURST_DECISION_CONFIRM, actor="a"
    )
    request.start.seconds = seconds
    request.end.seconds = 1

    with pytest.raises(grpc.RpcError) as caught:
        defended.admin.DecideBurst(request)

    assert (grpc.StatusCode.INVALID_ARGUMENT, True) == (
        caught.value.code(),
        "start" in field_violations(caught.value),
    )
