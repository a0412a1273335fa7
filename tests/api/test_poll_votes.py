"""SubmitPollVote and poll votes in SubmitBatch over a real server, on both backends: one
vote per user and poll (the newer replaces the older), each product's counts of polls
that showed it and chose it, the Bradley-Terry strengths refitted from them and ranked
on, erasure, durability, bad input."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
import pytest

from reviewrank.ranking.polls import PollVotes, poll_strengths
from reviewrank.service.storage.factory import open_store
from reviewrank.v1 import feedback_pb2, ranking_pb2
from tests.conftest import Client, both_backends
from tests.helpers import batch, candidates, explaining, field_violations, poll_vote, rating

pytestmark = both_backends


def stats(client: Client, *products: str) -> list[ranking_pb2.ProductStats]:
    request = ranking_pb2.GetProductStatsRequest(product_ids=list(products))
    return list(client.ranking.GetProductStats(request).stats)


def counts(client: Client, product: str) -> tuple[int, int]:
    [s] = stats(client, product)
    return s.polls_shown, s.polls_won


def core_fit(n_products: int, *votes: tuple[list[int], int]) -> list[float]:
    """What ranking.polls fits on these votes (product indices), with the default prior."""
    fitted: list[float] = poll_strengths(PollVotes.of(list(votes)), n_products).tolist()
    return fitted


def settled(client: Client, products: list[str], expected: list[float]) -> list[float]:
    """The products' strengths once refitted to ``expected`` (the last read after 20 s)."""
    return strengths_when(
        client, products, lambda found: found == pytest.approx(expected, rel=1e-4)
    )


def strengths_when(
    client: Client, products: list[str], ready: Callable[[list[float]], bool]
) -> list[float]:
    """The products' poll strengths once ``ready`` says they are (they are refitted in
    the background, within about a second of a vote); the last read after 20 s."""
    deadline = time.monotonic() + 20
    while True:
        found = [s.poll_strength for s in stats(client, *products)]
        if ready(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def test_a_vote_counts_each_product_shown_and_the_one_chosen(client: Client) -> None:
    response = client.feedback.SubmitPollVote(poll_vote("outfits", "u1", ["a", "b", "c"], "b"))

    assert (feedback_pb2.APPLIED, 1) == (response.outcome, response.seq)
    assert [(1, 0), (1, 1), (1, 0)] == [counts(client, p) for p in ("a", "b", "c")]


def test_a_users_newer_vote_in_a_poll_replaces_the_older(client: Client) -> None:
    client.feedback.SubmitPollVote(poll_vote("q", "u1", ["a", "b"], "a", at=1000))

    newer = client.feedback.SubmitPollVote(poll_vote("q", "u1", ["a", "b"], "b", at=2000))

    assert feedback_pb2.APPLIED == newer.outcome
    assert [(1, 0), (1, 1)] == [counts(client, p) for p in ("a", "b")]


def test_a_newer_vote_showing_other_products_moves_their_counts(client: Client) -> None:
    client.feedback.SubmitPollVote(poll_vote("q", "u1", ["a", "b"], "a", at=1000))

    client.feedback.SubmitPollVote(poll_vote("q", "u1", ["c", "d"], "d", at=2000))

    assert [(0, 0), (0, 0), (1, 0), (1, 1)] == [counts(client, p) for p in "abcd"]


def test_an_older_vote_arriving_late_is_superseded(client: Client) -> None:
    client.feedback.SubmitPollVote(poll_vote("q", "u1", ["a", "b"], "a", at=2000))

    late = client.feedback.SubmitPollVote(poll_vote("q", "u1", ["a", "b"], "b", at=1000))

    assert feedback_pb2.SUPERSEDED == late.outcome
    assert (1, 1) == counts(client, "a")


def test_a_replayed_vote_is_duplicate_and_changes_nothing(client: Client) -> None:
    vote = poll_vote("q", "u1", ["a", "b"], "a")
    client.feedback.SubmitPollVote(vote)

    replay = client.feedback.SubmitPollVote(vote)

    assert (feedback_pb2.DUPLICATE, 0) == (replay.outcome, replay.seq)
    assert (1, 1) == counts(client, "a")


def test_a_user_votes_once_in_each_of_several_polls(client: Client) -> None:
    client.feedback.SubmitPollVote(poll_vote("q1", "u1", ["a", "b"], "a"))
    client.feedback.SubmitPollVote(poll_vote("q2", "u1", ["a", "c"], "a"))

    assert (2, 2) == counts(client, "a")


def test_a_product_only_shown_by_a_poll_becomes_known(client: Client) -> None:
    client.feedback.SubmitPollVote(poll_vote("q", "u1", ["new-a", "new-b"], "new-a"))

    [s] = stats(client, "new-b")

    assert (True, 1, 0) == (s.known, s.polls_shown, s.polls_won)


def test_the_winner_of_polls_grows_stronger_than_the_loser(client: Client) -> None:
    for i in range(5):
        client.feedback.SubmitPollVote(poll_vote("q", f"u{i}", ["a", "b"], "a"))

    expected = core_fit(2, *[([0, 1], 0)] * 5)

    a, b, never = settled(client, ["a", "b", "z"], [*expected, 1.0])

    assert a > 1.0 > b
    assert pytest.approx(expected, rel=1e-4) == [a, b]
    assert 1.0 == never  # a product no poll showed keeps the prior's strength


def test_strengths_follow_votes_replaced_after_a_fit(client: Client) -> None:
    for i in range(4):
        client.feedback.SubmitPollVote(poll_vote("q", f"u{i}", ["a", "b", "c"], "a"))
    settled(client, ["a", "b", "c"], core_fit(3, *[([0, 1, 2], 0)] * 4))

    for i in range(2):  # (read since the last fit: over the votes they replace)
        client.feedback.SubmitPollVote(poll_vote("q", f"u{i}", ["b", "c"], "c", at=1_700_000_100))
    client.feedback.SubmitPollVote(poll_vote("r", "u9", ["a", "c"], "c"))

    expected = core_fit(3, *[([0, 1, 2], 0)] * 2, *[([1, 2], 2)] * 2, ([0, 2], 2))
    assert pytest.approx(expected, rel=1e-4) == settled(client, ["a", "b", "c"], expected)


def test_newer_votes_that_move_no_count_still_move_the_strengths(client: Client) -> None:
    # Two users swap the other products of their votes: every product's shown and won
    # counts stay, the strengths do not (the fitter used to wake on counts alone).
    names = ["a", "b", "c", "d", "e"]
    for i in range(5):
        client.feedback.SubmitPollVote(poll_vote("be", f"w{i}", ["b", "e"], "b"))
    client.feedback.SubmitPollVote(poll_vote("q1", "u1", ["a", "b"], "a"))
    client.feedback.SubmitPollVote(poll_vote("q2", "u2", ["c", "d"], "c"))
    before = [([1, 4], 1)] * 5
    settled(client, names, core_fit(5, *before, ([0, 1], 0), ([2, 3], 2)))
    counts_before = [counts(client, p) for p in names]

    client.feedback.SubmitBatch(
        batch(
            poll_vote("q1", "u1", ["a", "d"], "a", at=1_700_000_100),
            poll_vote("q2", "u2", ["c", "b"], "c", at=1_700_000_100),
        )
    )

    expected = core_fit(5, *before, ([0, 3], 0), ([2, 1], 2))
    assert counts_before == [counts(client, p) for p in names]
    assert pytest.approx(expected, rel=1e-4) == settled(client, names, expected)


def test_one_won_poll_does_not_beat_steady_winning(client: Client) -> None:
    client.feedback.SubmitPollVote(poll_vote("once", "u0", ["lucky", "x"], "lucky"))
    for i in range(10):
        chosen = "steady" if i < 8 else "y"
        client.feedback.SubmitPollVote(poll_vote("often", f"u{i}", ["steady", "y"], chosen))

    # products 0 lucky, 1 x, 2 steady, 3 y
    expected = core_fit(4, ([0, 1], 0), *[([2, 3], 2)] * 8, *[([2, 3], 3)] * 2)

    lucky, _, steady, _ = settled(client, ["lucky", "x", "steady", "y"], expected)

    assert steady > lucky > 1.0


def test_a_polls_profile_ranks_by_strength_with_unpolled_products_between(
    client: Client,
) -> None:
    for i in range(6):
        client.feedback.SubmitPollVote(poll_vote("q", f"u{i}", ["good", "poor"], "good"))
    settled(client, ["good", "poor"], core_fit(2, *[([0, 1], 0)] * 6))

    request = ranking_pb2.RankRequest(
        candidates=candidates("poor", "unpolled", "good"), profile="polled"
    )
    ranked = client.ranking.Rank(request)

    assert ["good", "unpolled", "poor"] == [r.product_id for r in ranked.results]


def test_top_with_a_polls_profile_follows_the_refitted_strengths(client: Client) -> None:
    client.feedback.SubmitRating(rating("c", "u9", 5))
    for i in range(4):
        client.feedback.SubmitPollVote(poll_vote("q", f"u{i}", ["a", "b"], "b"))
    settled(client, ["a", "b"], core_fit(2, *[([0, 1], 1)] * 4))

    top = client.ranking.Top(ranking_pb2.TopRequest(profile="polled", limit=3))

    assert ["b", "c", "a"] == [r.product_id for r in top.results]


def test_an_explanation_shows_the_poll_counts_strength_and_contribution(client: Client) -> None:
    for i in range(3):
        client.feedback.SubmitPollVote(poll_vote("q", f"u{i}", ["a", "b"], "a"))
    strength = core_fit(2, *[([0, 1], 0)] * 3)[0]
    settled(client, ["a"], [strength])

    ranked = explaining(client).Rank(
        ranking_pb2.RankRequest(candidates=candidates("a"), profile="polled", explain=True)
    )

    e = ranked.results[0].explanation
    [polls] = [c for c in e.contributions if c.component == "polls"]
    assert (3, 3, pytest.approx(strength)) == (e.polls_shown, e.polls_won, e.poll_strength)
    assert pytest.approx(strength / (strength + 1)) == polls.normalized


def test_forgetting_a_user_removes_their_poll_votes_and_a_replay_stays_duplicate(
    client: Client,
) -> None:
    kept = poll_vote("q1", "u1", ["a", "b"], "a", event_id="to-forget")
    client.feedback.SubmitPollVote(kept)
    client.feedback.SubmitPollVote(poll_vote("q2", "u1", ["a", "c"], "c"))
    client.feedback.SubmitPollVote(poll_vote("q1", "u2", ["a", "b"], "b"))

    forgotten = client.eraser.ForgetUser(feedback_pb2.ForgetUserRequest(user_id="u1"))
    replay = client.feedback.SubmitPollVote(kept)

    assert (2, 2) == (forgotten.poll_votes_removed, forgotten.events_erased)
    assert [(1, 0), (1, 1), (0, 0)] == [counts(client, p) for p in "abc"]
    assert feedback_pb2.DUPLICATE == replay.outcome
    expected = core_fit(3, ([0, 1], 1))
    a, b, c = settled(client, ["a", "b", "c"], expected)
    assert (a < 1.0 < b, 1.0) == (True, pytest.approx(c))


def test_a_batch_of_poll_votes_answers_each_in_order(client: Client) -> None:
    repeated = poll_vote("q", "u2", ["a", "b"], "b", at=3000)

    response = client.feedback.SubmitBatch(
        batch(
            rating("a", "u1", 4),
            poll_vote("q", "u1", ["a", "b"], "a", at=2000),
            repeated,
            repeated,
            poll_vote("q", "u1", ["a", "b"], "b", at=1000),
        )
    )

    applied, duplicate, superseded = (
        feedback_pb2.APPLIED, feedback_pb2.DUPLICATE, feedback_pb2.SUPERSEDED,
    )  # fmt: skip
    assert [applied, applied, applied, duplicate, superseded] == [
        r.outcome for r in response.results
    ]
    assert [(2, 1), (2, 1)] == [counts(client, p) for p in "ab"]


def test_a_large_batch_of_poll_votes_is_applied(client: Client) -> None:
    events = [poll_vote(f"q{i % 5}", f"u{i}", ["a", "b", f"c{i % 4}"], "a") for i in range(500)]

    response = client.feedback.SubmitBatch(batch(*events))

    assert {feedback_pb2.APPLIED} == {r.outcome for r in response.results}
    assert (500, 500) == counts(client, "a")
    assert (125, 0) == counts(client, "c3")


def test_acknowledged_poll_votes_survive_a_restart_and_equal_a_recount(start_server) -> None:  # type: ignore[no-untyped-def]
    first = start_server()
    for i in range(30):
        shown = ["a", "b", "c"][: 2 + i % 2]
        vote = poll_vote(f"q{i % 4}", f"u{i % 7}", shown, shown[i % len(shown)], at=1000 + i)
        first.feedback.SubmitPollVote(vote)
    before = [counts(first, p) for p in "abc"]
    first.server.stop(grace=1.0)

    second = start_server()

    assert before == [counts(second, p) for p in "abc"]
    second.server.stop(grace=1.0)
    store = open_store(second.settings.storage)
    try:
        assert [] == store.aggregate_mismatches()
    finally:
        store.close()


@pytest.mark.parametrize(
    ("request_of", "field", "problem"),
    [
        (lambda: poll_vote("q", "u1", ["a"], "a"), "shown", "2 to 10"),
        (lambda: poll_vote("q", "u1", [f"p{i}" for i in range(11)], "p1"), "shown", "2 to 10"),
        (lambda: poll_vote("q", "u1", ["a", "a"], "a"), "shown", "twice"),
        (lambda: poll_vote("q", "u1", ["a", "b"], "c"), "chosen", "one of the products"),
        (lambda: poll_vote("q", "u1", ["a", "b"], ""), "chosen", "required"),
        (lambda: poll_vote("", "u1", ["a", "b"], "a"), "poll_id", "required"),
        (lambda: poll_vote("q", "", ["a", "b"], "a"), "user_id", "required"),
        (lambda: poll_vote("q", "u1", ["a", ""], "a"), "shown[1]", "required"),
        (lambda: poll_vote("q", "u1", ["a", "b\x00"], "a"), "shown[1]", "non-printable"),
        (lambda: poll_vote("q" * 129, "u1", ["a", "b"], "a"), "poll_id", "at most 128"),
        (lambda: poll_vote("q", "u1", ["a", "b"], "a", channel="c" * 65), "channel", "at most 64"),
    ],
)
def test_an_invalid_poll_vote_is_refused_naming_the_field(
    client: Client,
    request_of,
    field: str,
    problem: str,  # type: ignore[no-untyped-def]
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        client.feedback.SubmitPollVote(request_of())

    assert grpc.StatusCode.INVALID_ARGUMENT == refused.value.code()
    assert problem in field_violations(refused.value)[field]


def test_an_invalid_poll_vote_in_a_batch_is_named_by_its_place(client: Client) -> None:
    bad = poll_vote("q", "u2", ["a", "b"], "c")

    with pytest.raises(grpc.RpcError) as refused:
        client.feedback.SubmitBatch(batch(rating("a", "u1", 3), bad))

    assert grpc.StatusCode.INVALID_ARGUMENT == refused.value.code()
    assert "events[1].poll_vote.chosen" in field_violations(refused.value)
    assert (0, 0) == counts(client, "a")


def test_a_batch_whose_products_shown_are_too_long_together_is_refused(client: Client) -> None:
    ids = [f"{i}".rjust(120, "x") for i in range(10)]  # 1,200 bytes a vote
    votes = [poll_vote(f"q{i}", "u1", ids, ids[0]) for i in range(90)]

    with pytest.raises(grpc.RpcError) as refused:
        client.feedback.SubmitBatch(batch(*votes))

    assert grpc.StatusCode.INVALID_ARGUMENT == refused.value.code()
    assert "smaller batches" in field_violations(refused.value)["events"]
    assert (0, 0) == counts(client, ids[0])
