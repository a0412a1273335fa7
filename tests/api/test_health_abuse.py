"""Hostile traffic on the unauthenticated health service (issue 17, items 1 and 2), against
a real server: Watch churn, idle and never-reading Watch streams, and what open streams
must not hold (status changes, other watchers, unary calls, shutdown)."""

from __future__ import annotations

import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from reviewrank.service.api import health
from reviewrank.service.api.server import FEEDBACK_SERVICE
from reviewrank.service.cli.dataset import DATA_DIR
from reviewrank.v1 import ranking_pb2
from tests.conftest import Client
from tests.helpers import candidates, rating
from tests.never_reading_client import NeverReadingClient
from tests.process import ServerProcess

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
RANKING_SERVICE = "reviewrank.v1.RankingService"

CHURN_STREAMS = 2000  # the repro; stock grpcio-health-checking hung after ~730
CHURN_CALLERS = 4  # on one channel: overlapping streams hang a locked servicer within a few
CHURN_BUDGET_SECONDS = 60.0  # about 1.5 s when healthy


def churn(channel: grpc.Channel) -> list[str]:
    """Opens a Watch, reads its first message and cancels it, CHURN_STREAMS times from
    CHURN_CALLERS threads sharing one channel; the failures (each caller stops at its
    first one, or when the time budget is spent)."""
    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + CHURN_BUDGET_SECONDS

    def caller(name: int) -> str:
        for n in range(CHURN_STREAMS // CHURN_CALLERS):
            if time.monotonic() > deadline:
                return f"caller {name}: only {n} streams in {CHURN_BUDGET_SECONDS} s"
            call = stub.Watch(health_pb2.HealthCheckRequest(), timeout=5)
            try:
                next(call)
            except grpc.RpcError as error:
                return f"caller {name}, stream {n}: {error.code()}"
            finally:
                call.cancel()
        return ""

    with ThreadPoolExecutor(CHURN_CALLERS) as callers:
        return [failure for failure in callers.map(caller, range(CHURN_CALLERS)) if failure]


def check(channel: grpc.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    status: int = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
    return status


def assert_rankings_answer(client: Client) -> None:
    client.feedback.SubmitRating(rating("p1", "u1", 5), timeout=5)
    ranked = client.ranking.Rank(
        ranking_pb2.RankRequest(candidates=candidates("p0", "p1")), timeout=5
    )
    assert ["p1", "p0"] == [r.product_id for r in ranked.results]
    top = client.ranking.Top(ranking_pb2.TopRequest(limit=5), timeout=5)
    assert ["p1"] == [r.product_id for r in top.results]


class Watcher:
    """A Watch stream read in a thread of its own, each status it is sent in a queue."""

    def __init__(self, channel: grpc.Channel, service: str = "") -> None:
        stub = health_pb2_grpc.HealthStub(channel)
        self.call = stub.Watch(health_pb2.HealthCheckRequest(service=service), timeout=60)
        self.statuses: queue.Queue[int] = queue.Queue()
        self.ended = threading.Event()
        self.code: grpc.StatusCode | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for response in self.call:
                self.statuses.put(response.status)
            self.code = grpc.StatusCode.OK
        except grpc.RpcError as error:
            self.code = error.code()
        finally:
            self.ended.set()

    def next_status(self, seconds: float = 5) -> int | None:
        try:
            return self.statuses.get(timeout=seconds)
        except queue.Empty:
            return None


@contextmanager
def never_reading(port: int) -> Iterator[NeverReadingClient]:
    client = NeverReadingClient(port)
    try:
        yield client
    finally:
        client.close()


def settle() -> None:
    """Gives the server time to start the never-read streams just opened (nothing comes
    back on the wire before their first message, which cannot leave)."""
    time.sleep(0.5)


def finishes_within(seconds: float, action: Callable[[], object]) -> bool:
    """Whether ``action`` returns within ``seconds`` (a hang detector: run in a daemon
    thread that is left behind if it hangs)."""
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


def test_watch_churn_leaves_health_and_rankings_answering(
    start_server: Callable[..., Client],
) -> None:
    client = start_server()
    started = time.monotonic()

    failures = churn(client.channel)

    seconds = time.monotonic() - started
    print(f"\n{CHURN_STREAMS} Watch streams opened and cancelled in {seconds:.2f} s")
    assert [] == failures
    assert SERVING == check(client.channel)
    assert_rankings_answer(client)


def test_server_process_that_met_watch_churn_exits_on_sigterm_within_its_grace(
    tmp_path: Path,
) -> None:
    grace = 5.0
    server = ServerProcess(
        "--database",
        str(tmp_path / "db.sqlite"),
        "--weights",
        str(DATA_DIR / "weights.toml"),
        env={"REVIEWRANK_GRACE_SECONDS": str(grace)},
    )
    try:
        with grpc.insecure_channel(server.target) as channel:
            failures = churn(channel)
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code = server.wait(grace + 10)  # raises TimeoutExpired if the server hangs
        assert 0 == code
        assert time.monotonic() - signalled < grace
        assert [] == failures
    finally:
        server.stop()


def test_idle_watch_streams_beyond_max_concurrent_rpcs_leave_unary_calls_answered(
    start_server: Callable[..., Client],
) -> None:
    client = start_server(max_concurrent_rpcs=32, max_health_watchers=100)
    watchers = []
    with never_reading(client.port) as stalled:
        # 48 never-reading streams (their first message cannot leave) in groups, each
        # group far below max_concurrent_rpcs: calls are only counted while they start.
        for _ in range(6):
            for _ in range(8):
                stalled.watch()
            settle()
            assert SERVING == check(client.channel)
        # And 24 that read their first message and then sit idle.
        for _ in range(24):
            watcher = Watcher(client.channel)
            watchers.append(watcher)
            assert SERVING == watcher.next_status()

        assert SERVING == check(client.channel)
        assert SERVING == check(client.channel, RANKING_SERVICE)
        assert_rankings_answer(client)
        assert all(not w.ended.is_set() for w in watchers)


def test_a_watch_beyond_max_health_watchers_is_resource_exhausted_at_once(
    start_server: Callable[..., Client],
) -> None:
    client = start_server(max_health_watchers=8)
    watchers = [Watcher(client.channel) for _ in range(8)]
    assert [SERVING] * 8 == [w.next_status() for w in watchers]

    refused = Watcher(client.channel)

    assert refused.ended.wait(5)
    assert grpc.StatusCode.RESOURCE_EXHAUSTED == refused.code
    assert "max_health_watchers=8" in (refused.call.details() or "")
    assert SERVING == check(client.channel)
    # A stream that ends gives its place back.
    watchers[0].call.cancel()
    for _ in range(100):
        late = Watcher(client.channel)
        if SERVING == late.next_status(1):
            break
        time.sleep(0.05)
    else:
        pytest.fail("no Watch accepted after a stream ended")


def test_a_status_change_reaches_the_watchers_of_that_service(
    start_server: Callable[..., Client],
) -> None:
    client = start_server()
    server_watcher = Watcher(client.channel)
    feedback_watchers = [Watcher(client.channel, FEEDBACK_SERVICE) for _ in range(3)]
    unknown = Watcher(client.channel, "no.such.Service")
    assert SERVING == server_watcher.next_status()
    assert [SERVING] * 3 == [w.next_status() for w in feedback_watchers]
    assert SERVICE_UNKNOWN == unknown.next_status()

    client.server.health.set(FEEDBACK_SERVICE, NOT_SERVING)
    client.server.health.set("no.such.Service", SERVING)

    assert [NOT_SERVING] * 3 == [w.next_status() for w in feedback_watchers]
    assert SERVING == unknown.next_status()
    client.server.health.set(FEEDBACK_SERVICE, SERVING)
    assert [SERVING] * 3 == [w.next_status() for w in feedback_watchers]
    assert server_watcher.next_status(0.2) is None  # nothing changed for ""
    with pytest.raises(grpc.RpcError) as unknown_check:
        check(client.channel, "another.Unknown")
    assert grpc.StatusCode.NOT_FOUND == unknown_check.value.code()


def test_a_watcher_that_never_reads_stops_neither_set_nor_other_watchers(
    start_server: Callable[..., Client],
) -> None:
    client = start_server()
    with never_reading(client.port) as stalled:
        for service in ("", FEEDBACK_SERVICE, FEEDBACK_SERVICE):
            stalled.watch(service)
        settle()
        watcher = Watcher(client.channel, FEEDBACK_SERVICE)
        assert SERVING == watcher.next_status()

        assert finishes_within(5, lambda: client.server.health.set(FEEDBACK_SERVICE, NOT_SERVING))
        assert NOT_SERVING == watcher.next_status()
        assert finishes_within(5, lambda: client.server.health.set(FEEDBACK_SERVICE, SERVING))
        assert SERVING == watcher.next_status()
        assert SERVING == check(client.channel, "")
        assert SERVING == check(client.channel, FEEDBACK_SERVICE)


def test_a_send_stalled_too_long_ends_its_stream(
    start_server: Callable[..., Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "STALLED_SEND_SECONDS", 0.3)
    client = start_server()
    with never_reading(client.port) as stalled:
        stream = stalled.watch()
        settle()  # and more than STALLED_SEND_SECONDS
        Watcher(client.channel).next_status()  # a new Watch looks for stalled sends

        assert stalled.wait_ended(stream, 5)


def test_shutdown_ends_open_watch_streams_at_once(start_server: Callable[..., Client]) -> None:
    client = start_server()
    with never_reading(client.port) as stalled:
        stream = stalled.watch()
        settle()
        watchers = [Watcher(client.channel), Watcher(client.channel, FEEDBACK_SERVICE)]
        assert [SERVING, SERVING] == [w.next_status() for w in watchers]

        # A grace of 30 s: a stream still open would hold the stop for all of it.
        started = time.monotonic()
        assert finishes_within(10, lambda: client.server.stop(grace=30))
        print(f"\nstopped in {time.monotonic() - started:.2f} s")

        assert [NOT_SERVING, NOT_SERVING] == [w.next_status() for w in watchers]
        assert all(w.ended.wait(5) for w in watchers)
        assert [grpc.StatusCode.OK] * 2 == [w.code for w in watchers]
        assert stalled.wait_ended(stream, 5)
