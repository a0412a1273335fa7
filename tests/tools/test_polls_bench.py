"""The poll-lag bench's measurement against a real server."""

from __future__ import annotations

import pytest

from reviewrank.service.tools import polls_bench
from reviewrank.service.tools.polls_bench import ballots, probe_lag
from reviewrank.v1 import feedback_pb2
from tests.conftest import Client


def _rated(client: Client, products: list[str]) -> None:
    for n, product in enumerate(products):
        client.feedback.SubmitRating(
            feedback_pb2.SubmitRatingRequest(
                event_id=f"r{n}", product_id=product, user_id="u", stars=4
            )
        )


def test_a_probe_vote_is_timed_until_the_fit_moves_its_product_off_the_prior(
    client: Client,
) -> None:
    _rated(client, ["a", "b"])

    lag = probe_lag(client.feedback, client.ranking, ["a", "b"], "t")

    assert 0 < lag < polls_bench.GIVE_UP_SECONDS


def test_a_probe_on_a_product_some_vote_showed_already_is_refused(client: Client) -> None:
    _rated(client, ["a", "b", "c"])
    probe_lag(client.feedback, client.ranking, ["a", "b"], "first")

    with pytest.raises(RuntimeError, match="strength already"):
        probe_lag(client.feedback, client.ranking, ["a", "c"], "again")


def test_votes_on_polls_show_the_polls_sets_each_in_an_order_of_its_own() -> None:
    draw = ballots([f"p{k}" for k in range(50)], polls=3, seed=2)

    votes = [draw() for _ in range(300)]

    assert 3 == len({frozenset(shown) for shown, _ in votes})
    assert len({tuple(shown) for shown, _ in votes}) > 3
    assert all(chosen in shown for shown, chosen in votes)


def test_votes_on_products_of_their_own_rarely_repeat_a_set() -> None:
    draw = ballots([f"p{k}" for k in range(1000)], polls=None, seed=2)

    sets = [frozenset(draw()[0]) for _ in range(300)]

    assert len(set(sets)) > 290
