"""Admission control: a call over its method's limit is refused at once with
RESOURCE_EXHAUSTED instead of queueing behind work the server cannot do in time.

Each reviewrank method runs on a thread pool of its own, as large as its limit, which
its class sets (ranking reads, feedback writes, batches, admin: see Limits). The count
of a method's calls in flight goes up when grpcio's polling thread admits a call
(server interceptors run there, before the call is handed to a pool) and down when the
pool's function for it returns, whatever happened (a call cancelled before its request
arrived never reaches its behaviour, so the count is kept by the pool, not the
behaviour). So an admitted call always finds a thread free at once, and a flood of one
method neither queues nor takes the threads of another: Rank is served during a flood
of Top, admin calls while Rank is saturated, and the health service (on its own pool,
never counted here) always. Threads are started only when calls need them. An
admitted read or write then waits for its turn (service/api/turns.py) on its thread,
using no CPU meanwhile: the limits bound memory and threads, the turns share the CPU.

A refused call never waits for a thread, nor for its request: its handler is
request-streaming shaped (on the wire a unary call is the same, and grpcio then hands
the behaviour an iterator it never reads) and runs inline in the polling thread, which
already holds the GIL there (a pool thread would have to win it again among the busy
ones). Refusals are counted in the gRPC metrics and logged at most once a second per
method, so that a flood cannot flood the log.

grpcio's ``maximum_concurrent_rpcs`` stays a last-resort cap above all of this.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import structlog

from reviewrank.service.api.status import to_status
from reviewrank.service.api.turns import FairTurns, RenewableTurn
from reviewrank.service.app.waits import hold
from reviewrank.service.domain.errors import DeadlineExpired, Overloaded

if TYPE_CHECKING:
    from reviewrank.service.app.settings import Settings
    from reviewrank.service.ops.metrics import RpcMetrics

log = structlog.get_logger("reviewrank.admission")

RANKING = "/reviewrank.v1.RankingService/"
FEEDBACK = "/reviewrank.v1.FeedbackService/"
ADMIN = "/reviewrank.v1.AdminService/"
BATCH_METHOD = FEEDBACK + "SubmitBatch"
# Admin methods whose work is a bulk write: they take fair turns as SubmitBatch does (a
# shop's catalogue import beside search traffic: Rank p99 4 ms idle, 100-350 ms beside
# 4-16 threads of UpsertProducts that did not).
ADMIN_TAKING_TURNS = frozenset({ADMIN + "UpsertProducts"})
_RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


# The turn of the call a pool thread runs, from its behaviour's return until grpcio's
# function for the call returns (MethodPool._run): the answer's encoding and sending by
# grpcio are work of the call too, and done outside the turn they competed with the
# turn's holder for Python's lock (heavy Rank calls from 4 connections: normal Rank p50
# 3.4-3.7x its quiet value with the turn given back at the behaviour's return, 2.5x after).
_answering = threading.local()


@dataclass(frozen=True)
class Limits:
    """The most calls of each method of a class a server runs at once (its threads)."""

    reads: int = 256  # each RankingService method: Rank, Top, GetProductStats
    writes: int = 256  # each FeedbackService method but SubmitBatch
    batches: int = 8  # FeedbackService.SubmitBatch
    admin: int = 8  # each AdminService method

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            reads=settings.admit_reads,
            writes=settings.admit_writes,
            batches=settings.admit_batches,
            admin=settings.admit_admin,
        )


def method_class(method: str) -> str | None:
    """The class of a full method name; None for the methods never counted (health,
    reflection, the benchmark's echo)."""
    if method.startswith(RANKING):
        return "reads"
    if method == BATCH_METHOD:
        return "batches"
    if method.startswith(FEEDBACK):
        return "writes"
    if method.startswith(ADMIN):
        return "admin"
    return None


class MethodPool(futures.ThreadPoolExecutor):
    """The threads of one method, and its count of calls in flight.

    grpcio runs a handler on the pool its behaviour names (``experimental_thread_pool``,
    which must be a ThreadPoolExecutor); ``submit`` wraps grpcio's function for the call
    so that the slot is given back when it returns, however the call ended."""

    def __init__(self, method: str, limit: int) -> None:
        self.name = method.rpartition("/")[2]
        super().__init__(max_workers=limit, thread_name_prefix=f"rpc-{self.name}")
        self.limit = limit
        self.in_flight = 0
        self._count_lock = threading.Lock()
        self.refused = 0  # since the last log line about them
        self._logged_at = 0.0

    def admit(self) -> bool:
        """Takes a slot if one is free (called on grpcio's polling thread)."""
        with self._count_lock:
            if self.in_flight >= self.limit:
                return False
            self.in_flight += 1
            return True

    def release(self) -> None:
        with self._count_lock:
            self.in_flight -= 1

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> futures.Future[Any]:
        try:
            return super().submit(self._run, fn, args, kwargs)
        except BaseException:  # shut down: the call never runs
            self.release()
            raise

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            self.release()
            turn = getattr(_answering, "turn", None)
            if turn is not None:  # the call's turn, kept while its answer was sent
                _answering.turn = None
                turn.give_back()

    def note_refusal(self) -> None:
        """Logs the refusals of the last second at most once a second (polling thread)."""
        self.refused += 1
        now = time.monotonic()
        if now - self._logged_at >= 1.0:
            log.warning(
                "calls refused: server busy",
                method=self.name,
                refused=self.refused,
                limit=self.limit,
            )
            self.refused = 0
            self._logged_at = now


class InlinePool(futures.ThreadPoolExecutor):
    """Runs what it is given at once, on the caller's thread: for refusals, which only
    queue their status with grpc's core and never block."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="rpc-inline-unused")

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> futures.Future[Any]:
        future: futures.Future[Any] = futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # grpcio catches what a behaviour raises; never here
            future.set_exception(exc)
        return future


_INLINE = InlinePool()


def _refusal(status: grpc.Status) -> grpc.RpcMethodHandler:
    """A handler answering ``status`` without reading the request (see the module's doc)."""

    def refuse(_requests: Iterator[Any], context: grpc.ServicerContext) -> None:
        context.abort_with_status(status)

    refuse.experimental_thread_pool = _INLINE  # type: ignore[attr-defined]
    return grpc.stream_unary_rpc_method_handler(refuse)


def _in_turn(
    turns: FairTurns,
    behaviour: Callable[[Any, grpc.ServicerContext], Any],
    request: Any,
    context: grpc.ServicerContext,
) -> Any:
    """Runs the behaviour in a turn of the call's connection (service/api/turns.py); the
    caller's own errors beyond a few a second are answered late (turns.ERROR_PAUSE)."""
    connection = context.peer()
    try:
        taken = turns.take(connection, context.time_remaining())
    except Exception:  # outside the error interceptor: grpcio would answer UNKNOWN, unlogged
        log.exception("waiting for a turn failed", peer=connection)
        context.abort(grpc.StatusCode.INTERNAL, "internal error while waiting for a turn")
        raise AssertionError("abort returned") from None  # it raises
    if taken is None:
        context.abort_with_status(to_status(_WAITED_OUT))
        raise AssertionError("abort_with_status returned")  # it raises
    turn = RenewableTurn(turns, connection, taken, context.time_remaining)
    try:
        hold(turn)
        try:
            answer = behaviour(request, context)
        except BaseException:
            turn.give_back()
            raise
        finally:
            hold(None)
        _answering.turn = turn  # given back once grpcio has sent the answer
        return answer
    except Exception:  # the turn is back: a pause holds none
        if context.code() in _CALLERS_ERRORS:  # (set by the abort that raised)
            pause = turns.pause_after_error(connection)
            if pause:
                time.sleep(pause)
        raise


# Statuses of errors the caller made (not the server's troubles: those are not paced).
_CALLERS_ERRORS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
    }
)


_WAITED_OUT = DeadlineExpired("deadline passed while waiting for a turn: the server is busy")


class AdmissionInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Outermost server interceptor: admits or refuses each reviewrank call by method."""

    def __init__(
        self,
        limits: Limits,
        methods: Iterable[str],
        metrics: RpcMetrics | None = None,
        turns: FairTurns | None = None,
    ) -> None:
        """``methods``: the full names of the methods served; those of a class get a pool
        (a name without one is passed on: health, reflection, or UNIMPLEMENTED).
        ``turns``: the fair turns the work of reads, writes, batches and the admin bulk
        writes takes (other admin calls never wait for one); None: calls run as soon as
        admitted."""
        self._pools: dict[str, MethodPool] = {}
        self._taking_turns: set[str] = set()
        for method in methods:
            name = method_class(method)
            if name is not None:
                self._pools[method] = MethodPool(method, getattr(limits, name))
                if turns is not None and (name != "admin" or method in ADMIN_TAKING_TURNS):
                    self._taking_turns.add(method)
        self.turns = turns
        self._metrics = metrics
        # method -> (the handler met, the admitted version of it), as in interceptors.py.
        self._admitted: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}
        self._refusals: dict[str, grpc.RpcMethodHandler] = {}

    def in_flight(self) -> dict[str, int]:
        return {name: pool.in_flight for name, pool in self._pools.items()}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        pool = self._pools.get(method)
        if pool is None:
            return continuation(handler_call_details)
        if not pool.admit():
            return self._refuse(method, pool)
        try:
            handler = continuation(handler_call_details)
        except BaseException:
            pool.release()
            raise
        if handler is None or handler.unary_unary is None:  # unknown method: grpcio answers
            pool.release()
            return handler
        known = self._admitted.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        if method in self._taking_turns:
            assert self.turns is not None
            behaviour = functools.partial(_in_turn, self.turns, handler.unary_unary)
        else:  # a partial (not a Python wrapper) to carry the pool: no frame added per call
            behaviour = functools.partial(handler.unary_unary)
        behaviour.experimental_thread_pool = pool  # type: ignore[attr-defined]
        admitted = grpc.unary_unary_rpc_method_handler(
            behaviour,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._admitted[method] = (handler, admitted)
        return admitted

    def _refuse(self, method: str, pool: MethodPool) -> grpc.RpcMethodHandler:
        pool.note_refusal()
        if self._metrics is not None:
            counted = self._metrics.method(method)
            counted.begin()
            counted.end(_RESOURCE_EXHAUSTED, 0.0)
        refusal = self._refusals.get(method)
        if refusal is None:
            error = Overloaded(
                f"server busy: {pool.limit} {pool.name} calls in flight, the most this server"
                " runs at once; retry with backoff"
            )
            refusal = self._refusals[method] = _refusal(to_status(error))
        return refusal

    def close(self) -> None:
        """Lets the method pools' threads end (after the server stopped)."""
        for pool in self._pools.values():
            pool.shutdown(wait=False)
