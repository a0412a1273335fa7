"""The traffic split over RPC: Rank and Top pick a profile by user id, deterministically."""

from __future__ import annotations

from collections import Counter

import grpc
import pytest

from reviewrank.v1 import ranking_pb2
from tests.conftest import Client
from tests.helpers import field_violations
from tests.weights_helpers import WEIGHTS_A, rank_request, reload

SPLIT = (
    WEIGHTS_A
    + """
[profiles.likes_heavy]
weights = { wilson = 0.8, bayesian_average = 0.2 }

[traffic]
salt = "campaign-1"
shares = { main = 0.7, likes_heavy = 0.3 }
"""
)
USERS = [f"user-{i}" for i in range(1000)]


@pytest.fixture
def split(client: Client) -> Client:
    reload(client, SPLIT)
    return client


def profile_of(client: Client, user_id: str) -> str:
    return str(client.ranking.Rank(rank_request(["a", "b"], user_id=user_id)).profile)


def test_shares_over_many_users_are_close_to_the_configured_ones(split: Client) -> None:
    counts = Counter(profile_of(split, user) for user in USERS)

    # The binomial standard deviation is 0.0145 for 1000 users: 0.05 is over three of them.
    assert {"main": 0.7, "likes_heavy": 0.3} == pytest.approx(
        {name: n / len(USERS) for name, n in counts.items()}, abs=0.05
    )


def test_a_user_gets_the_same_profile_on_every_call(split: Client) -> None:
    first = [profile_of(split, user) for user in USERS[:200]]

    again = [profile_of(split, user) for user in USERS[:200]]

    assert first == again


def test_a_user_keeps_the_profile_across_an_unrelated_reload(split: Client) -> None:
    before = [profile_of(split, user) for user in USERS[:200]]

    reload(split, SPLIT.replace("wilson = 0.8", "wilson = 0.7"))

    assert before == [profile_of(split, user) for user in USERS[:200]]


def test_without_a_user_id_rank_uses_the_default_profile(split: Client) -> None:
    assert "main" == profile_of(split, "")


def test_a_named_profile_overrides_the_split(split: Client) -> None:
    profiles = {
        split.ranking.Rank(rank_request(["a"], user_id=u, profile="likes_heavy")).profile
        for u in USERS[:50]
    }

    assert {"likes_heavy"} == profiles


def test_top_picks_the_same_profile_as_rank_for_a_user(split: Client) -> None:
    users = USERS[:100]

    top = [split.ranking.Top(ranking_pb2.TopRequest(user_id=u)).profile for u in users]

    assert [profile_of(split, u) for u in users] == top


def test_a_malformed_user_id_is_refused(split: Client) -> None:
    with pytest.raises(grpc.RpcError) as info:
        split.ranking.Rank(rank_request(["a"], user_id="x" * 129))

    assert {"user_id"} == set(field_violations(info.value))
