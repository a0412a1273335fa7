"""The visibility bench's measurement against a real ``serve --workers 2``."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from reviewrank.service.tools import visibility_bench
from reviewrank.service.tools.bench_servers import free_port
from reviewrank.service.tools.visibility_bench import measure_delays, summary
from reviewrank.v1 import ranking_pb2_grpc
from tests.api.test_workers import start_workers, stop


def test_every_reader_of_either_worker_sees_each_write_without_asking_for_its_seq(
    tmp_path: Path,
) -> None:
    server = start_workers(tmp_path, 2)
    try:
        delays = measure_delays(server.target, readers=6, writes=3, tag="test")
    finally:
        stop(server)

    assert (3, 6) == delays.shape
    assert np.isfinite(delays).all(), delays
    assert 0 == summary(delays)["never_seen"]


def test_summary_counts_the_readers_that_waited_for_a_feed_apart() -> None:
    # Negative: seen by the first read (the committing worker); positive: waited.
    signed = np.array([[-2.0, 30.0], [-3.0, float("inf")]])

    found = summary(signed)

    assert 4 == found["pairs"]
    assert 2 == found["pairs_waiting_for_a_feed"]
    assert 1 == found["never_seen"]
    assert 5000.0 == found["waiting_ms"]["max"]  # never seen: the time given up after


def test_a_reader_whose_reads_fail_never_sees_the_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not 0 ms: a failed read is retried until the write is given up on."""
    monkeypatch.setattr(visibility_bench, "GIVE_UP_SECONDS", 0.3)
    port = free_port()  # nothing listens there
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = ranking_pb2_grpc.RankingServiceStub(channel)

        delay = visibility_bench._seen_after(stub, "p", time.perf_counter())

    assert float("inf") == delay
