"""A vote dated ahead of the server's clock cannot pin the user's vote against later ones."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
import pytest

from reviewrank.v1 import feedback_pb2, ranking_pb2
from tests.conftest import Client
from tests.helpers import batch, field_violations, like, rating

HOUR_AHEAD = 3600
SKEW = 240  # 4 minutes ahead: within the accepted clock skew


def submit_alone(client: Client, event: object) -> None:
    if isinstance(event, feedback_pb2.SubmitRatingRequest):
        client.feedback.SubmitRating(event)
    else:
        client.feedback.SubmitLike(event)


def submit_in_batch(client: Client, event: object) -> None:
    client.feedback.SubmitBatch(batch(event))


PATHS: dict[str, Callable[[Client, object], None]] = {
    "single": submit_alone,
    "batch": submit_in_batch,
}


def stats(client: Client, product: str) -> ranking_pb2.ProductStats:
    request = ranking_pb2.GetProductStatsRequest(product_ids=[product])
    [found] = client.ranking.GetProductStats(request).stats
    return found


@pytest.mark.parametrize("path", PATHS)
def test_a_vote_dated_an_hour_ahead_is_refused_naming_its_time(client: Client, path: str) -> None:
    event = rating("p", "u", 5, at=int(time.time()) + HOUR_AHEAD)

    with pytest.raises(grpc.RpcError) as info:
        PATHS[path](client, event)

    assert grpc.StatusCode.INVALID_ARGUMENT == info.value.code()
    [field] = field_violations(info.value)
    assert field.endswith("occurred_at")
    assert 0 == stats(client, "p").rating_count


@pytest.mark.parametrize("path", PATHS)
def test_a_rating_after_one_dated_ahead_replaces_it(client: Client, path: str) -> None:
    PATHS[path](client, rating("p", "u", 5, at=int(time.time()) + SKEW))

    PATHS[path](client, rating("p", "u", 1, at=None))

    found = stats(client, "p")
    assert (1, [1, 0, 0, 0, 0]) == (found.rating_count, list(found.stars_histogram))


@pytest.mark.parametrize("path", PATHS)
def test_a_dislike_after_a_like_dated_ahead_replaces_it(client: Client, path: str) -> None:
    PATHS[path](client, like("p", "u", at=int(time.time()) + SKEW))

    PATHS[path](client, like("p", "u", feedback_pb2.DISLIKE, at=None))

    found = stats(client, "p")
    assert (0, 1) == (found.likes, found.dislikes)
