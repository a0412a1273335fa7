"""Admission control and bounded min_seq waits (issue 17, items 3 and 5), against a real
server: floods are refused at once with RESOURCE_EXHAUSTED, per method class; a
min_seq that can never be reached is refused at once; waiting callers are capped."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import grpc
import pytest
from grpc_health.v1 import health_pb2

from reviewrank.service.compose import build_application
from reviewrank.service.domain.values import RatingEvent
from reviewrank.v1 import admin_pb2, ranking_pb2
from tests.conftest import Client, both_backends
from tests.helpers import candidates, health, rating, write_lock_held_elsewhere

NEVER = 2**64 - 1
RANK = ranking_pb2.RankRequest(candidates=candidates("a", "b", "c"))
TOP = ranking_pb2.TopRequest(limit=10)


def outcome(future: grpc.Future) -> tuple[grpc.StatusCode, str]:
    """The code and message of a finished call (OK and "" for a success)."""
    try:
        future.result()
    except grpc.FutureCancelledError:
        return grpc.StatusCode.CANCELLED, ""
    except grpc.RpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


def codes(futures: list[grpc.Future]) -> list[grpc.StatusCode]:
    return [outcome(f)[0] for f in futures]


@contextmanager
def lagging(client: Client) -> Iterator[int]:
    """A write committed by another process that this server cannot apply yet (its change
    feed is stuck behind the catalogue's lock, as behind a long apply): yields its seq."""
    other = build_application(client.settings)  # as `reviewrank import` beside a server would
    try:
        with client.server.app.catalogue._lock:
            [result] = other.submit([RatingEvent("lag-1", "a", "u9", 2, 1000)], timeout=10)
            yield result.seq
    finally:
        other.close()


def wait_until_idle(client: Client, seconds: float = 5.0) -> set[int]:
    """The admission counts once every method's is back to 0 (or after ``seconds``)."""
    admission = client.server.admission
    assert admission is not None
    deadline = time.monotonic() + seconds
    while any(admission.in_flight().values()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return set(admission.in_flight().values())


@both_backends
def test_an_unreachable_min_seq_is_out_of_range_at_once_while_ranks_go_on(
    start_server: Callable[..., Client],
) -> None:
    client = start_server(admit_reads=256)  # this test is about min_seq, not admission
    ack = client.feedback.SubmitRating(rating("a", "u1", 5), timeout=10)
    started = time.monotonic()

    tops = [
        client.ranking.Top.future(ranking_pb2.TopRequest(min_seq=NEVER), timeout=30)
        for _ in range(200)
    ]
    ranks = [client.ranking.Rank(RANK, timeout=10) for _ in range(20)]
    answers = [outcome(f) for f in tops]
    elapsed = time.monotonic() - started

    assert {grpc.StatusCode.OUT_OF_RANGE} == {code for code, _ in answers}
    assert (
        f"min_seq {NEVER} is beyond the latest committed sequence number {ack.seq}:"
        " pass the seq of a write's response"
    ) == answers[0][1].partition(" (request id")[0]
    assert 20 == sum(len(r.results) == 3 for r in ranks)
    assert elapsed < 5.0  # hang detector: today each waits 2 s, 64 at a time
    assert 0 == client.server.app.min_seq.waiting


@both_backends
def test_min_seq_of_another_process_s_write_waits_then_gives_up_when_not_applied(
    start_server: Callable[..., Client],
) -> None:
    client = start_server(min_seq_wait_seconds=0.3)
    with lagging(client) as seq:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            client.ranking.Rank(
                ranking_pb2.RankRequest(candidates=candidates("a"), min_seq=seq), timeout=10
            )
        waited = time.monotonic() - started

    assert grpc.StatusCode.UNAVAILABLE == info.value.code()
    assert f"not yet {seq}: retry" in (info.value.details() or "")
    assert 0.3 <= waited < 3.0


def test_callers_beyond_the_waiting_bound_are_answered_at_once(
    start_server: Callable[..., Client],
) -> None:
    client = start_server(min_seq_wait_seconds=1.0, min_seq_max_waiting=3)
    with lagging(client) as seq:
        request = ranking_pb2.RankRequest(candidates=candidates("a"), min_seq=seq)
        calls = [client.ranking.Rank.future(request, timeout=10) for _ in range(12)]
        # The calls beyond the bound are answered while the others still wait.
        refused_early = [outcome(f) for f in calls if f.done() or _done_soon(f)]
        answers = [outcome(f) for f in calls]

    busy = "and 3 calls are waiting for theirs already: retry (or on another replica)"
    assert {grpc.StatusCode.UNAVAILABLE} == {code for code, _ in answers}
    assert 9 == sum(busy in message for _, message in answers)
    assert 9 == sum(busy in message for _, message in refused_early)
    assert 3 == sum(f"not yet {seq}: retry" in message for _, message in answers)


def _done_soon(future: grpc.Future) -> bool:
    """Whether the call ends within 0.5 s (half the wait the waiting calls get)."""
    finished = threading.Event()
    future.add_done_callback(lambda _f: finished.set())
    return finished.wait(0.5)


def test_a_flood_beyond_a_method_s_limit_is_refused_at_once_and_others_are_served(
    start_server: Callable[..., Client],
) -> None:
    client = start_server(admit_reads=4, min_seq_max_waiting=4, min_seq_wait_seconds=3.0)
    with lagging(client) as seq:
        waiting = ranking_pb2.TopRequest(min_seq=seq)
        held = [client.ranking.Top.future(waiting, timeout=10) for _ in range(4)]
        time.sleep(0.3)  # Top's 4 slots are taken by calls waiting for min_seq
        started = time.monotonic()
        flood = [client.ranking.Top.future(TOP, timeout=10) for _ in range(300)]
        flood_answers = [outcome(f) for f in flood]
        flood_seconds = time.monotonic() - started
        # Other methods are admitted while Top is saturated: Rank (its calls wait for the
        # catalogue's lock, which the lagging feed holds here, and end after), admin,
        # feedback (a call that needs no lock: refused for its content, not admission),
        # and health.
        ranks = [client.ranking.Rank.future(RANK, timeout=10) for _ in range(4)]
        weights = client.admin.GetWeights(admin_pb2.GetWeightsRequest(), timeout=5)
        with pytest.raises(grpc.RpcError) as invalid_write:
            client.feedback.SubmitRating(rating("b", "u2", 9), timeout=5)
        serving = health(client, "")
    held_answers = codes(held)  # the feed catches up once the lock is released
    after = [client.ranking.Top(TOP, timeout=5) for _ in range(5)]

    assert {grpc.StatusCode.RESOURCE_EXHAUSTED} == {code for code, _ in flood_answers}
    assert flood_answers[0][1].startswith(
        "server busy: 4 Top calls in flight, the most this server runs at once; retry with backoff"
    )
    assert flood_seconds < 5.0  # hang detector: refusals do not wait for the held calls
    assert [grpc.StatusCode.OK] * 4 == codes(ranks)
    assert (True, grpc.StatusCode.INVALID_ARGUMENT) == (
        weights.version >= 1,
        invalid_write.value.code(),
    )
    assert health_pb2.HealthCheckResponse.SERVING == serving
    assert [grpc.StatusCode.OK] * 4 == held_answers
    assert [["a"]] * 5 == [[p.product_id for p in r.results] for r in after]
    assert {0} == wait_until_idle(client)


def test_a_concurrent_flood_gets_only_ok_or_resource_exhausted_and_recovers(
    start_server: Callable[..., Client],
) -> None:
    client = start_server(admit_reads=2, admit_writes=2)
    ranks = [client.ranking.Rank.future(RANK, timeout=10) for _ in range(400)]
    writes = [
        client.feedback.SubmitRating.future(rating("a", f"u{i}", 3), timeout=10) for i in range(200)
    ]
    # While the flood is in flight: health and admin are answered, never refused.
    serving = health(client, "")
    status = client.admin.GetStatus(admin_pb2.GetStatusRequest(), timeout=5)
    rank_codes, write_codes = codes(ranks), codes(writes)
    after = client.ranking.Rank(RANK, timeout=5)

    allowed = {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert (set(), set()) == (set(rank_codes) - allowed, set(write_codes) - allowed)
    assert grpc.StatusCode.OK in rank_codes and grpc.StatusCode.OK in write_codes
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in rank_codes
    assert (health_pb2.HealthCheckResponse.SERVING, True) == (serving, status.seq >= 0)
    assert 3 == len(after.results)
    assert {0} == wait_until_idle(client)


def test_calls_that_end_early_give_their_slot_back(start_server: Callable[..., Client]) -> None:
    client = start_server(admit_reads=8)
    short = [client.ranking.Rank.future(RANK, timeout=0.001) for _ in range(100)]
    cancelled = [client.ranking.Rank.future(RANK, timeout=10) for _ in range(100)]
    for call in cancelled:
        call.cancel()
    seen = set(codes(short)) | set(codes(cancelled))

    assert seen <= {
        grpc.StatusCode.OK,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
    # Calls the client gave up on may still reach the server a moment later, and hold a
    # slot for as long as their refusal or cancellation takes: a leaked slot would refuse
    # Rank for good, so Rank must be admitted again within seconds.
    assert 3 == len(rank_once_admitted(client))
    assert {0} == wait_until_idle(client)


def rank_once_admitted(client: Client, seconds: float = 5.0) -> list[object]:
    """Rank's results, retried while refused as busy (for at most ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return list(client.ranking.Rank(RANK, timeout=5).results)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_writes_stalled_on_the_database_leave_rankings_served(
    start_server: Callable[..., Client],
) -> None:
    """Another process holds the write lock: writes wait for it on their own threads (and
    those beyond SubmitRating's limit are refused), while Rank is answered as usual."""
    # All on one connection: no stream limit, or the stalled writes would hold its streams.
    client = start_server(admit_writes=64, max_streams_per_connection=0)
    database = client.settings.storage.path
    assert database is not None
    with write_lock_held_elsewhere(database):
        writes = [
            client.feedback.SubmitRating.future(rating("a", f"u{i}", 4), timeout=20)
            for i in range(100)
        ]
        deadline = time.monotonic() + 5
        while sum(f.done() for f in writes) < 36 and time.monotonic() < deadline:
            time.sleep(0.01)  # the refusals are answered; the admitted writes wait
        ranks = [client.ranking.Rank(RANK, timeout=3) for _ in range(10)]
        pending = sum(not f.done() for f in writes)
    write_codes = codes(writes)

    assert [3] * 10 == [len(r.results) for r in ranks]
    assert 64 == pending  # SubmitRating's limit: the others were refused at once
    assert 36 == write_codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert 64 == write_codes.count(grpc.StatusCode.OK)
