"""Several replicas on one PostgreSQL: real server processes sharing a real database.

Each replica keeps its own in-memory ranking arrays, in step through the change feed;
a client that wrote through one replica reads its write on another with ``min_seq``.
The followers' poll interval is set to a minute here, so that only PostgreSQL's
LISTEN/NOTIFY can bring another replica's write in within the test's deadlines.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from reviewrank.v1 import feedback_pb2, feedback_pb2_grpc, ranking_pb2, ranking_pb2_grpc
from tests.conftest import TEST_WEIGHTS
from tests.helpers import batch, candidates, like, rating
from tests.process import ServerProcess

PRODUCTS = [f"r{i}" for i in range(12)]
SLOW_POLL = {"REVIEWRANK_FEED_POLL_SECONDS": "60", "REVIEWRANK_MIN_SEQ_WAIT_SECONDS": "10"}


@pytest.fixture
def replicas(pg_url: str, tmp_path: Path) -> Iterator[list[ServerProcess]]:
    weights = tmp_path / "weights.toml"
    weights.write_text(TEST_WEIGHTS)
    started: list[ServerProcess] = []
    try:
        for _ in range(3):
            started.append(
                ServerProcess("--database-url", pg_url, "--weights", str(weights), env=SLOW_POLL)
            )
        yield started
    finally:
        for server in started:
            server.stop()


def submit(target: str, request: feedback_pb2.SubmitBatchRequest) -> int:
    with grpc.insecure_channel(target) as channel:
        response = feedback_pb2_grpc.FeedbackServiceStub(channel).SubmitBatch(request, timeout=10)
    assert all(r.outcome == feedback_pb2.APPLIED for r in response.results)
    return int(response.seq)


def ranking(target: str, min_seq: int) -> list[tuple[str, float]]:
    with grpc.insecure_channel(target) as channel:
        stub = ranking_pb2_grpc.RankingServiceStub(channel)
        response = stub.Rank(
            ranking_pb2.RankRequest(candidates=candidates(*PRODUCTS), min_seq=min_seq), timeout=20
        )
    return [(r.product_id, r.score) for r in response.results]


def stats(target: str, product: str, min_seq: int) -> tuple[int, int, int]:
    with grpc.insecure_channel(target) as channel:
        stub = ranking_pb2_grpc.RankingServiceStub(channel)
        response = stub.GetProductStats(
            ranking_pb2.GetProductStatsRequest(product_ids=[product], min_seq=min_seq), timeout=20
        )
    [s] = response.stats
    return s.rating_count, s.likes, s.dislikes


def reviews(round_: int) -> feedback_pb2.SubmitBatchRequest:
    """Ratings and likes that order PRODUCTS differently in each round."""
    events: list[object] = []
    for i, product in enumerate(PRODUCTS):
        for user in range(1 + (i * 7 + round_ * 3) % 5):
            stars = 1 + (i * 3 + user + round_) % 5
            events.append(rating(product, f"u{round_}-{user}", stars, at=1_700_000_000 + round_))
            events.append(like(product, f"u{round_}-{user}", 1 + (i + user) % 2))
    return batch(*events)


@pytest.mark.slow
def test_a_write_through_one_replica_is_read_on_the_others_with_min_seq(
    replicas: list[ServerProcess],
) -> None:
    writer, *readers = replicas
    seq = submit(writer.target, batch(rating("solo", "alice", 4), like("solo", "bob")))

    seen = [stats(reader.target, "solo", seq) for reader in readers]

    assert [(1, 1, 0), (1, 1, 0)] == seen


@pytest.mark.slow
def test_three_replicas_rank_identically_once_caught_up_whichever_took_the_writes(
    replicas: list[ServerProcess],
) -> None:
    seq = 0
    for round_ in range(6):  # writes through every replica in turn
        seq = submit(replicas[round_ % 3].target, reviews(round_))

    rankings = [ranking(server.target, seq) for server in replicas]

    assert len(PRODUCTS) == len(rankings[0])
    assert rankings[0] == rankings[1] == rankings[2]
    assert [p for p, _ in rankings[0]] != PRODUCTS  # the reviews, not the search order, decide


@pytest.mark.slow
def test_a_new_replica_starts_with_what_the_others_wrote(
    replicas: list[ServerProcess], pg_url: str, tmp_path: Path
) -> None:
    seq = 0
    for round_ in range(3):
        seq = submit(replicas[round_].target, reviews(round_))
    expected = ranking(replicas[0].target, seq)

    late = ServerProcess(
        "--database-url", pg_url, "--weights", str(tmp_path / "weights.toml"), env=SLOW_POLL
    )
    try:
        assert expected == ranking(late.target, 0)  # loaded in bulk before serving
    finally:
        late.stop()
