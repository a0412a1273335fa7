"""Graceful shutdown of a real server process on SIGTERM and SIGINT."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from reviewrank.service.cli.dataset import DATA_DIR
from reviewrank.service.storage.sqlite.store import SQLiteStore
from reviewrank.v1 import feedback_pb2, feedback_pb2_grpc
from tests.helpers import rating
from tests.process import ServerProcess


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_server_cleanly_keeping_acknowledged_events(
    tmp_path: Path, signum: signal.Signals
) -> None:
    database = tmp_path / "db.sqlite"
    server = ServerProcess("--database", str(database), "--weights", str(DATA_DIR / "weights.toml"))
    acknowledged: list[str] = []
    failures: list[grpc.StatusCode] = []
    statuses: list[int] = []
    lock = threading.Lock()
    stop_writing = threading.Event()

    def write(worker: int) -> None:
        with grpc.insecure_channel(server.target) as channel:
            stub = feedback_pb2_grpc.FeedbackServiceStub(channel)
            for i in range(100_000):
                if stop_writing.is_set():
                    return
                request = rating(
                    f"p{i % 13}", f"w{worker}-u{i}", 1 + i % 5, event_id=f"w{worker}-{i}"
                )
                try:
                    response = stub.SubmitRating(request, timeout=5)
                except grpc.RpcError as error:
                    with lock:
                        failures.append(error.code())
                    return
                assert feedback_pb2.APPLIED == response.outcome
                with lock:
                    acknowledged.append(request.event_id)

    def watch_health() -> None:
        with grpc.insecure_channel(server.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                for response in stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=30):
                    statuses.append(response.status)
            except grpc.RpcError:
                pass

    watcher = threading.Thread(target=watch_health)
    watcher.start()
    writers = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in writers:
        thread.start()
    while len(acknowledged) < 200:
        threading.Event().wait(0.01)
    server.proc.send_signal(signum)
    code = server.wait(30)
    stop_writing.set()
    for thread in [*writers, watcher]:
        thread.join(30)

    assert 0 == code
    assert "server stopped" in server.events()
    assert [
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    ] == statuses[:2]
    assert set(failures) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
    wal = database.with_name(database.name + "-wal")
    assert not wal.exists() or 0 == wal.stat().st_size, "WAL not checkpointed"
    store = SQLiteStore(database)
    try:
        stored = {row[0] for row in store.conn.execute("SELECT event_id FROM events")}
        assert set(acknowledged) <= stored
        assert [] == store.aggregate_mismatches()
        assert "ok" == store.conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        store.close()


def test_sigterm_under_heavy_batch_load_lets_in_flight_calls_finish(tmp_path: Path) -> None:
    """Large batches keep the writer busy: at SIGTERM the calls already being served
    finish and are acknowledged, new ones get UNAVAILABLE, every batch is all-or-nothing,
    the WAL is checkpointed, and the process exits 0 well within the grace period."""
    import contextlib
    import time

    database = tmp_path / "db.sqlite"
    grace = 10.0
    server = ServerProcess(
        "--database",
        str(database),
        "--weights",
        str(DATA_DIR / "weights.toml"),
        env={"REVIEWRANK_GRACE_SECONDS": str(grace)},
    )
    # (started, ended, status, event ids, request id) of every call.
    calls: list[tuple[float, float, grpc.StatusCode, list[str], str]] = []
    lock = threading.Lock()
    stop_writing = threading.Event()

    def write(worker: int) -> None:
        with grpc.insecure_channel(server.target) as channel:
            stub = feedback_pb2_grpc.FeedbackServiceStub(channel)
            for n in range(10_000):
                if stop_writing.is_set():
                    return
                events = [
                    rating(f"p{i % 40}", f"w{worker}-b{n}-u{i}", 1 + i % 5) for i in range(500)
                ]
                request = feedback_pb2.SubmitBatchRequest(
                    events=[feedback_pb2.FeedbackEvent(rating=e) for e in events]
                )
                request_id = f"w{worker}-b{n}"
                started = time.monotonic()
                try:
                    stub.SubmitBatch(request, timeout=30, metadata=[("x-request-id", request_id)])
                    code = grpc.StatusCode.OK
                except grpc.RpcError as error:
                    code = error.code()
                ids = [e.event_id for e in events]
                with lock:
                    calls.append((started, time.monotonic(), code, ids, request_id))
                if code != grpc.StatusCode.OK:
                    return

    def watch_health() -> None:  # a load balancer's stream must not hold the shutdown
        with grpc.insecure_channel(server.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            with contextlib.suppress(grpc.RpcError):
                for _ in stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=60):
                    pass

    watcher = threading.Thread(target=watch_health)
    watcher.start()
    writers = [threading.Thread(target=write, args=(w,)) for w in range(6)]
    for thread in writers:
        thread.start()
    while len(calls) < 30:
        time.sleep(0.01)
    signalled = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    code = server.wait(30)
    exited = time.monotonic()
    stop_writing.set()
    for thread in [*writers, watcher]:
        thread.join(30)

    summary = {
        "seconds": round(exited - signalled, 2),
        "codes": sorted(str(c) for _, _, c, _, _ in calls),
        "in flight at the signal": [
            (round(c[1] - signalled, 3), str(c[2])) for c in calls if c[0] < signalled < c[1]
        ],
        "log tail": server.events()[-5:],
    }
    print(f"\nshutdown under load: {summary['seconds']} s")
    assert 0 == code, summary
    # In-flight calls take far less than the grace; an open Watch stream would take it all.
    assert exited - signalled < grace / 2, summary
    # Calls the service received end OK, or UNAVAILABLE if it was already stopping; one
    # that reaches a stopping server is refused (UNAVAILABLE, or CANCELLED when it met the
    # listener closing: also a call sent just before the signal that had not arrived yet)
    # and writes nothing.
    received = {r.get("request_id") for r in server.lines if r.get("event") == "rpc"}
    refusals = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
    assert {c for *_, c, _, rid in calls if rid in received} <= {
        grpc.StatusCode.OK,
        grpc.StatusCode.UNAVAILABLE,
    }, summary
    assert {c for *_, c, _, rid in calls if rid not in received} <= refusals, summary
    finished_after_signal = [
        c for c in calls if c[0] < signalled < c[1] and c[2] == grpc.StatusCode.OK
    ]
    assert finished_after_signal, f"no call in flight at SIGTERM could finish: {summary}"
    wal = database.with_name(database.name + "-wal")
    assert not wal.exists() or 0 == wal.stat().st_size, "WAL not checkpointed"
    store = SQLiteStore(database)
    try:
        stored = {row[0] for row in store.conn.execute("SELECT event_id FROM events")}
        for _, _, status, ids, request_id in calls:
            present = set(ids) & stored
            if status == grpc.StatusCode.OK:
                assert present == set(ids)
            elif request_id not in received:
                assert set() == present
            else:
                assert present in (set(), set(ids))  # a batch is atomic
        assert [] == store.aggregate_mismatches()
        assert "ok" == store.conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        store.close()


def _threads_taking(pid: int, signum: signal.Signals) -> list[int]:
    """The ids of the process's threads other than its main one that do not block
    ``signum``: the kernel may hand a signal sent to the process to any of them."""
    taking = []
    for name in os.listdir(f"/proc/{pid}/task"):
        tid = int(name)
        if tid == pid:
            continue
        status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        blocked = next(line for line in status.splitlines() if line.startswith("SigBlk:"))
        if not int(blocked.split()[1], 16) & (1 << (signum - 1)):
            taking.append(tid)
    return taking


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
def test_sigterm_taken_by_a_thread_other_than_the_main_one_stops_the_server(
    tmp_path: Path,
) -> None:
    """Found after a flood: the process ignored SIGTERM (the kernel gave it to a gRPC
    thread; the main thread slept in a wait no signal could end) and needed SIGKILL."""
    server = ServerProcess("--database", str(tmp_path / "db.sqlite"))
    try:
        threads = _threads_taking(server.proc.pid, signal.SIGTERM)
        assert threads, "no thread other than the main one takes SIGTERM"
        os.kill(threads[-1], signal.SIGTERM)  # kill(2) of a thread id: that thread first

        assert 0 == server.wait(10)
        assert "server stopped" in server.events()
    finally:
        server.stop()
