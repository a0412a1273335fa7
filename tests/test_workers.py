"""`reviewrank serve --workers 2`: processes sharing one port and one database stay in step."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import grpc
from reviewrank.v1 import feedback_pb2_grpc, ranking_pb2, ranking_pb2_grpc

from tests.conftest import TEST_WEIGHTS
from tests.helpers import batch, rating
from tests.process import ServerProcess


def stats_on_new_connection(target: str, product: str, min_seq: int) -> int:
    """The product's rating count seen through a fresh TCP connection (so, any worker)."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    with grpc.insecure_channel(target, options=options) as channel:
        stub = ranking_pb2_grpc.RankingServiceStub(channel)
        request = ranking_pb2.GetProductStatsRequest(product_ids=[product], min_seq=min_seq)
        response = stub.GetProductStats(request, timeout=10)
        return int(response.stats[0].rating_count)


def test_a_write_through_one_worker_is_read_through_every_worker(tmp_path: Path) -> None:
    weights = tmp_path / "weights.toml"
    weights.write_text(TEST_WEIGHTS)
    server = ServerProcess(
        "--database", str(tmp_path / "db.sqlite"), "--weights", str(weights), "--workers", "2",
        "--log-level", "info",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # each worker logs "serving" once it listens
            ready = {r.get("worker") for r in server.lines if r.get("event") == "serving"}
            if {1, 2} <= ready:
                break
            time.sleep(0.05)
        with grpc.insecure_channel(server.target) as channel:
            feedback = feedback_pb2_grpc.FeedbackServiceStub(channel)
            ack = feedback.SubmitBatch(batch(*(rating("p1", f"u{i}", 5) for i in range(3))))
        counts = [stats_on_new_connection(server.target, "p1", ack.seq) for _ in range(24)]
        without_wait = [stats_on_new_connection(server.target, "p1", 0) for _ in range(8)]
    finally:
        server.proc.send_signal(signal.SIGTERM)
        code = server.wait(30)

    workers = {r.get("worker") for r in server.lines if r.get("event") == "rpc"}
    assert [3] * 24 == counts
    assert {1, 2} <= workers, "both workers served calls"
    assert all(c in (0, 3) for c in without_wait)
    assert 0 == code
