"""`reviewrank serve --workers 2`: processes sharing one port and one database stay in step."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc

from reviewrank.service import CLI_MODULE
from reviewrank.v1 import feedback_pb2_grpc, ranking_pb2, ranking_pb2_grpc
from tests.conftest import TEST_WEIGHTS
from tests.helpers import batch, poll_vote, rating
from tests.process import ServerProcess


def stats_on_new_connection(target: str, product: str, min_seq: int) -> int:
    """The product's rating count seen through a fresh TCP connection (so, any worker)."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    with grpc.insecure_channel(target, options=options) as channel:
        stub = ranking_pb2_grpc.RankingServiceStub(channel)
        request = ranking_pb2.GetProductStatsRequest(product_ids=[product], min_seq=min_seq)
        response = stub.GetProductStats(request, timeout=10)
        return int(response.stats[0].rating_count)


def strength_on_new_connection(target: str, min_seq: int) -> float:
    """Product a's poll strength seen through a fresh TCP connection (so, any worker)."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    with grpc.insecure_channel(target, options=options) as channel:
        stub = ranking_pb2_grpc.RankingServiceStub(channel)
        request = ranking_pb2.GetProductStatsRequest(product_ids=["a"], min_seq=min_seq)
        return float(stub.GetProductStats(request, timeout=10).stats[0].poll_strength)


def start_workers(tmp_path: Path, count: int) -> ServerProcess:
    """``serve --workers count`` on a new database, once every worker logged "serving"
    (it then listens)."""
    weights = tmp_path / "weights.toml"
    weights.write_text(TEST_WEIGHTS)
    server = ServerProcess(
        "--database", str(tmp_path / "db.sqlite"), "--weights", str(weights),
        "--workers", str(count), "--log-level", "info",
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready = {r.get("worker") for r in server.lines if r.get("event") == "serving"}
        if set(range(1, count + 1)) <= ready:
            break
        time.sleep(0.05)
    return server


def stop(server: ServerProcess) -> int:
    server.proc.send_signal(signal.SIGTERM)
    return server.wait(30)


def test_a_write_through_one_worker_is_read_through_every_worker(tmp_path: Path) -> None:
    server = start_workers(tmp_path, 2)
    try:
        with grpc.insecure_channel(server.target) as channel:
            feedback = feedback_pb2_grpc.FeedbackServiceStub(channel)
            ack = feedback.SubmitBatch(batch(*(rating("p1", f"u{i}", 5) for i in range(3))))
        counts = [stats_on_new_connection(server.target, "p1", ack.seq) for _ in range(24)]
        without_wait = [stats_on_new_connection(server.target, "p1", 0) for _ in range(8)]
    finally:
        code = stop(server)

    workers = {r.get("worker") for r in server.lines if r.get("event") == "rpc"}
    assert [3] * 24 == counts
    assert {1, 2} <= workers, "both workers served calls"
    assert all(c in (0, 3) for c in without_wait)
    assert 0 == code


def test_poll_votes_through_one_worker_move_the_strengths_in_every_worker(
    tmp_path: Path,
) -> None:
    server = start_workers(tmp_path, 2)
    try:
        with grpc.insecure_channel(server.target) as channel:
            feedback = feedback_pb2_grpc.FeedbackServiceStub(channel)
            votes = [poll_vote("q", f"u{i}", ["a", "b"], "a") for i in range(4)]
            ack = feedback.SubmitBatch(batch(*votes))
        deadline = time.monotonic() + 20
        seen: list[float] = []
        while time.monotonic() < deadline:  # (the strengths are refitted within a second)
            seen = [strength_on_new_connection(server.target, ack.seq) for _ in range(12)]
            if min(seen) > 1.0:
                break
            time.sleep(0.1)
    finally:
        code = stop(server)

    workers = {r.get("worker") for r in server.lines if r.get("event") == "rpc"}
    assert {1, 2} <= workers, "both workers served calls"
    assert 1 == len({round(s, 9) for s in seen}) and seen[0] > 1.0, seen
    assert 0 == code


def test_workers_on_a_new_database_start_once_each(tmp_path: Path) -> None:
    server = start_workers(tmp_path, 3)
    try:
        time.sleep(0.5)  # a worker that failed would be restarting by now
    finally:
        code = stop(server)

    restarts = [r for r in server.lines if r.get("event") == "worker exited; restarting it"]
    why = [r for r in server.lines if r.get("level") in ("error", "critical", "fatal")]
    assert [] == restarts, why  # (the worker's own last words, if it had any)
    assert [1, 2, 3] == sorted(r.get("worker") for r in server.lines if r.get("event") == "serving")
    assert 0 == code


def test_workers_on_a_database_that_cannot_be_opened_stop_the_start_with_its_name(
    tmp_path: Path,
) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    database = not_a_directory / "db.sqlite"
    command = [
        sys.executable, "-m", CLI_MODULE, "serve", "--address", "127.0.0.1:0",
        "--database", str(database), "--workers", "2", "--log-format", "json",
    ]  # fmt: skip
    try:
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:  # restarting workers that cannot start, forever
        raise AssertionError("the supervisor did not stop") from None

    assert 1 == done.returncode
    assert f"reviewrank: cannot open the database {database}" in done.stderr
    assert "workers started" not in done.stderr
