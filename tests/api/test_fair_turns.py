"""Fair turns (service/api/turns.py): the order waiting calls get their turn in, and what
the turns do to calls on a real server (issue 17, findings 3 and 5)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import grpc
import pytest

from reviewrank.service.api.turns import (
    ERROR_PAUSE,
    ERRORS_FREE,
    WRITER_THREAD,
    FairTurns,
    Turn,
)
from reviewrank.service.app.writer import Writer
from reviewrank.service.domain.values import RatingEvent
from reviewrank.service.storage.sqlite.store import SQLiteStore
from reviewrank.v1 import ranking_pb2
from tests.conftest import Client
from tests.helpers import candidates, rating


def queue_waiter(turns: FairTurns, connection: str, served: list[str]) -> threading.Thread:
    """Starts a thread that waits for a turn as ``connection``, notes it and gives it back;
    returns once it is waiting."""
    before = turns.waiting

    def wait() -> None:
        turn = turns.take(connection)
        assert turn is not None
        served.append(connection)
        turn.give_back()

    thread = threading.Thread(target=wait)
    thread.start()
    deadline = time.monotonic() + 5
    while turns.waiting == before and time.monotonic() < deadline:
        time.sleep(0.001)
    assert turns.waiting == before + 1
    return thread


def server_with_its_turn_held(
    start_server: Callable[..., Client],
) -> tuple[Client, FairTurns, Turn]:
    """A server with one turn, which the test holds."""
    client = start_server(fair_turns=1)
    turns = client.server.admission.turns if client.server.admission else None
    assert turns is not None
    held = turns.take("the test")
    assert held is not None
    return client, turns, held


def test_a_connection_that_was_idle_goes_before_a_backlogged_one() -> None:
    turns = FairTurns(1)
    held = turns.take("flooder")
    assert held is not None
    served: list[str] = []
    threads = [queue_waiter(turns, "other", served)]  # from here on the flooder waits too
    threads += [queue_waiter(turns, "flooder", served) for _ in range(3)]
    threads.append(queue_waiter(turns, "shop", served))

    held.give_back()
    for thread in threads:
        thread.join(5)

    assert ["other", "shop", "flooder", "flooder", "flooder"] == served


def test_backlogged_connections_take_turns_in_alternation() -> None:
    turns = FairTurns(1)
    held = turns.take("first")
    assert held is not None
    served: list[str] = []
    threads = [queue_waiter(turns, "a", served) for _ in range(3)]
    threads += [queue_waiter(turns, "b", served) for _ in range(3)]

    held.give_back()
    for thread in threads:
        thread.join(5)

    assert ["a", "b", "a", "b", "a", "b"] == served


def test_no_more_than_width_calls_hold_a_turn_at_once() -> None:
    turns = FairTurns(2)
    first, second = turns.take("a"), turns.take("b")
    assert first is not None and second is not None

    assert None is turns.take("c", timeout=0.05)

    first.give_back()
    assert turns.take("c", timeout=1) is not None


def test_calls_of_a_connection_alone_do_not_wait_for_each_other() -> None:
    turns = FairTurns(1)

    held = [turns.take("only", timeout=0.05) for _ in range(3)]

    assert None not in held


def test_another_connection_waits_until_a_lone_connections_calls_drop_below_width() -> None:
    turns = FairTurns(1)
    first, second = turns.take("lone"), turns.take("lone")
    assert first is not None and second is not None
    served: list[str] = []
    thread = queue_waiter(turns, "other", served)

    first.give_back()
    assert [] == served
    second.give_back()
    thread.join(5)

    assert ["other"] == served


def test_a_turn_given_back_twice_passes_on_once() -> None:
    turns = FairTurns(1)
    held = turns.take("a")
    assert held is not None
    held.give_back()
    again = turns.take("b")
    assert again is not None

    held.give_back()  # a second give-back of the first turn must not free a second place

    assert None is turns.take("c", timeout=0.05)


def test_a_waiter_that_gave_up_is_skipped() -> None:
    turns = FairTurns(1)
    held = turns.take("a")
    assert held is not None
    assert None is turns.take("gave-up", timeout=0.01)
    served: list[str] = []
    thread = queue_waiter(turns, "b", served)

    held.give_back()
    thread.join(5)

    assert ["b"] == served
    assert 0 == turns.waiting


def test_a_write_that_waited_out_its_deadline_for_a_turn_is_not_applied(
    start_server: Callable[..., Client],
) -> None:
    client, turns, held = server_with_its_turn_held(start_server)
    try:
        with pytest.raises(grpc.RpcError) as refused:
            client.feedback.SubmitRating(rating("p-late", "u1", 5, event_id="late"), timeout=0.3)
        assert grpc.StatusCode.DEADLINE_EXCEEDED == refused.value.code()
    finally:
        held.give_back()
    time.sleep(0.3)  # a call that still ran after the turn came free would be applied now

    stats = client.ranking.GetProductStats(
        ranking_pb2.GetProductStatsRequest(product_ids=["p-late"]), timeout=5
    )
    assert 0 == stats.stats[0].rating_count
    assert 0 == turns.waiting


def test_writes_waiting_for_their_commit_give_their_turn_back(
    start_server: Callable[..., Client],
) -> None:
    client = start_server(fair_turns=1)
    calls = 48
    gate = threading.Barrier(calls)

    def submit(n: int) -> int:
        gate.wait(5)
        request = rating("p1", f"u{n}", 4, event_id=f"e{n}")
        return int(client.feedback.SubmitRating(request, timeout=10).seq)

    with ThreadPoolExecutor(calls) as pool:
        seqs = list(pool.map(submit, range(calls)))

    assert calls == len(set(seqs))
    # Holding the turn through the commit would make one transaction per call.
    assert client.server.app.writer.stats.transactions < calls


def test_more_calls_than_the_stream_limit_on_one_connection_all_succeed(
    start_server: Callable[..., Client],
) -> None:
    client = start_server(max_streams_per_connection=2)
    request = ranking_pb2.RankRequest(candidates=candidates(("p1", 1.0), ("p2", 2.0)))

    def rank(_: int) -> str:
        try:
            client.ranking.Rank(request, timeout=10)
        except grpc.RpcError as error:
            return str(error.code())
        return "OK"

    with ThreadPoolExecutor(40) as pool:
        statuses = list(pool.map(rank, range(400)))

    assert ["OK"] * 400 == statuses


def test_a_connections_errors_beyond_the_free_ones_in_a_second_are_paused() -> None:
    turns = FairTurns(1)

    pauses = [turns.pause_after_error("looping") for _ in range(ERRORS_FREE + 2)]

    assert [0.0] * ERRORS_FREE + [ERROR_PAUSE] * 2 == pauses
    assert 0.0 == turns.pause_after_error("another")


def test_a_client_looping_on_a_refused_call_gets_its_later_refusals_late(
    start_server: Callable[..., Client],
) -> None:
    client = start_server()
    bad = ranking_pb2.TopRequest(min_seq=2**64 - 1)  # never committed: OUT_OF_RANGE
    codes = []
    for _ in range(ERRORS_FREE):
        with pytest.raises(grpc.RpcError) as refused:
            client.ranking.Top(bad, timeout=5)
        codes.append(refused.value.code())

    began = time.monotonic()
    with pytest.raises(grpc.RpcError) as late:
        client.ranking.Top(bad, timeout=5)

    assert [grpc.StatusCode.OUT_OF_RANGE] * ERRORS_FREE == codes
    assert grpc.StatusCode.OUT_OF_RANGE == late.value.code()
    assert time.monotonic() - began >= ERROR_PAUSE


def test_only_calls_of_connections_not_backlogged_wait_light() -> None:
    turns = FairTurns(1)
    held = turns.take("other")
    assert held is not None
    threads = [queue_waiter(turns, "flooder", [])]  # its first call: nothing before it
    assert 1 == turns.light_waiting
    threads.append(queue_waiter(turns, "flooder", []))  # behind its own first
    assert 1 == turns.light_waiting
    threads.append(queue_waiter(turns, "shop", []))

    assert 2 == turns.light_waiting
    held.give_back()
    for thread in threads:
        thread.join(5)
    assert (0, 0) == (turns.light_waiting, turns.waiting)


def test_a_thread_turn_lets_a_light_call_go_before_its_next_step() -> None:
    turns = FairTurns(1)
    writer_turn = turns.for_thread(WRITER_THREAD)()
    served: list[str] = []
    shop = queue_waiter(turns, "shop", served)

    writer_turn.pass_if_waited_for()  # returns once the shop's call has had its turn
    served.append("writer")
    writer_turn.give_back()
    shop.join(5)

    assert ["shop", "writer"] == served


def test_a_thread_turn_keeps_its_turn_when_only_backlogged_calls_wait() -> None:
    turns = FairTurns(1)
    earlier = turns.take("flooder")
    assert earlier is not None
    time.sleep(0.05)  # its turn held 50 ms: its tag now ahead of virtual time
    earlier.give_back()
    writer_turn = turns.for_thread(WRITER_THREAD)()
    served: list[str] = []
    flooder = queue_waiter(turns, "flooder", served)
    assert 0 == turns.light_waiting

    writer_turn.pass_if_waited_for()
    served.append("writer")
    writer_turn.give_back()
    flooder.join(5)

    assert ["writer", "flooder"] == served


def test_the_writer_answers_only_in_a_turn_of_its_own(tmp_path: Path) -> None:
    turns = FairTurns(1)
    store = SQLiteStore(tmp_path / "db.sqlite")
    writer = Writer(store, on_commit=lambda group: None, cpu_turn=turns.for_thread(WRITER_THREAD))
    search = turns.take("search")
    assert search is not None
    try:
        future = writer.submit([RatingEvent("e1", "p", "u", 4, 1)])
        with pytest.raises(FutureTimeout):  # committed, but the search holds the only turn
            future.result(timeout=0.3)
        assert 1 == turns.waiting

        search.give_back()

        assert 1 == len(future.result(timeout=5))
    finally:
        writer.close(5)
        store.close()


def test_every_turn_is_given_back_once_the_answers_are_sent(
    start_server: Callable[..., Client],
) -> None:
    client = start_server(fair_turns=1)
    turns = client.server.admission.turns if client.server.admission else None
    assert turns is not None
    many = ranking_pb2.RankRequest(
        candidates=candidates(*((f"p{i}", float(i % 7)) for i in range(3000)))
    )
    wrong = ranking_pb2.RankRequest(candidates=candidates(("p1", float("nan"))))

    def call(n: int) -> str:
        try:
            if n % 3 == 0:
                client.ranking.Rank(many, timeout=10)
            elif n % 3 == 1:
                client.feedback.SubmitRating(rating("p1", f"u{n}", 4, event_id=f"e{n}"), timeout=10)
            else:
                client.ranking.Rank(wrong, timeout=10)
        except grpc.RpcError as error:
            return str(error.code().name)
        return "OK"

    with ThreadPoolExecutor(24) as pool:
        statuses = list(pool.map(call, range(120)))

    assert ["OK", "OK", "INVALID_ARGUMENT"] * 40 == statuses
    time.sleep(0.2)  # the last answers' threads return
    free = turns.take("the test", timeout=0)  # none held: taken at once
    assert free is not None
    free.give_back()
    assert 0 == turns.waiting


def test_a_call_without_a_deadline_waits_for_its_turn_and_is_answered(
    start_server: Callable[..., Client],
) -> None:
    client, turns, held = server_with_its_turn_held(start_server)
    request = ranking_pb2.RankRequest(candidates=candidates(("p1", 1.0), ("p2", 2.0)))
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(client.ranking.Rank, request)  # no deadline: ~9e18 s remaining
        deadline = time.monotonic() + 5
        while turns.waiting == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert 1 == turns.waiting
        held.give_back()

        assert 2 == len(answer.result(timeout=10).results)
    # And the turn came back: it is given back once grpcio has queued the answer, on the
    # call's thread, which may be just after the client has read it.
    free = turns.take("the test", timeout=2)
    assert free is not None
    free.give_back()


def test_a_timeout_beyond_what_a_lock_takes_waits_without_one() -> None:
    turns = FairTurns(1)
    held = turns.take("holder")
    assert held is not None
    threading.Timer(0.1, held.give_back).start()

    turn = turns.take("caller", timeout=1e19)  # a call with no deadline has about 9e18 s

    assert turn is not None
    turn.give_back()
    assert 0 == turns.waiting
