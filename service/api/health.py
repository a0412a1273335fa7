"""The standard gRPC health service (grpc.health.v1.Health), owned here.

grpcio-health-checking's servicer holds its lock while a Watch message is being sent,
and a send only finishes when the server's single polling thread handles its completion;
that thread also runs the close callbacks of ended streams, which take the same lock. A
client opening and cancelling Watch streams in a loop therefore hangs the whole server
after a few hundred streams (issue 17). This one keeps to these rules instead:

* One short lock guards the statuses and the watchers, and is never held during a send.
  The close callback (polling thread) only takes it to forget the stream.
* Check and Watch run on a small pool of their own: health never queues behind the
  application's calls. Watch is non-blocking: it registers the stream and returns, so an
  open stream holds no thread and does not count against ``max_concurrent_rpcs``.
* Messages go out from a sender pool, one drain per stream at a time and only the newest
  status. A send waits for the client to take the bytes, so a client that never reads
  holds one sender thread; the pool has a thread for every allowed stream, so nobody else
  waits for it, and ``set`` never sends at all. A send stalled for ``stalled_send_seconds``
  gets its stream cancelled (seen at the next Watch or ``set``), which frees both.
* At most ``max_watchers`` streams are open; one more answers RESOURCE_EXHAUSTED at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health_pb2

log = structlog.get_logger("reviewrank.health")

_Response = health_pb2.HealthCheckResponse
SERVING = _Response.SERVING
NOT_SERVING = _Response.NOT_SERVING
SERVICE_UNKNOWN = _Response.SERVICE_UNKNOWN
SERVICE_NAME = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name

# Threads running Check and Watch themselves (each holds the lock for microseconds).
CALL_THREADS = 2
# A send still waiting for its client after this long ends its stream.
STALLED_SEND_SECONDS = 10.0
# At shutdown, streams whose send still waits after this long are cancelled.
SHUTDOWN_SEND_SECONDS = 1.0

_Send = Callable[[Any], Any]


@dataclass(eq=False)
class _Watcher:
    """One open Watch stream; every field is read and written under the service's lock."""

    service: str
    send: _Send
    context: grpc.ServicerContext
    pending: int | None  # the status to send next (a newer one replaces it)
    ending: bool = False  # end the stream once ``pending`` is sent
    draining: bool = False  # a drain of this stream is queued or running
    sending_since: float | None = None  # monotonic start of the send in progress
    closed: bool = False


class HealthServicer:
    """Statuses per service ("" is the whole server's), served by Check and Watch."""

    def __init__(self, max_watchers: int = 100, stalled_send_seconds: float | None = None) -> None:
        self._lock = threading.Lock()
        self._statuses: dict[str, int] = {"": SERVING}
        self._watchers: set[_Watcher] = set()
        self._shut = False
        self._max_watchers = max_watchers
        self._stalled_send_seconds = (
            STALLED_SEND_SECONDS if stalled_send_seconds is None else stalled_send_seconds
        )
        self._calls = ThreadPoolExecutor(CALL_THREADS, thread_name_prefix="health")
        # Threads are made on demand: a few normally, one per stalled stream at worst.
        self._senders = ThreadPoolExecutor(
            max_watchers + CALL_THREADS, thread_name_prefix="health-send"
        )

    # -- the RPCs ------------------------------------------------------------------------

    def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        with self._lock:
            status = self._statuses.get(request.service)
        if status is None:
            context.set_code(grpc.StatusCode.NOT_FOUND)
            context.set_details("unknown service")
            return _Response()
        return _Response(status=status)

    def Watch(
        self, request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext, send: _Send
    ) -> None:
        watcher = None
        with self._lock:
            stalled = self._stalled_locked()
            if len(self._watchers) < self._max_watchers:
                watcher = _Watcher(
                    request.service,
                    send,
                    context,
                    pending=self._statuses.get(request.service, SERVICE_UNKNOWN),
                    ending=self._shut,
                    draining=True,
                )
                self._watchers.add(watcher)
        _cancel(stalled)
        if watcher is None:
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"too many health Watch streams open (max_health_watchers={self._max_watchers})",
            )
            return
        if not context.add_callback(lambda: self._forget(watcher)):
            self._forget(watcher)  # the call ended already
            return
        self._senders.submit(self._drain, watcher)

    def add_to_server(self, server: grpc.Server) -> None:
        """Registers Check and Watch, each running on the health pool."""
        check = _on_pool(self.Check, self._calls)
        watch = _on_pool(self.Watch, self._calls)
        watch.experimental_non_blocking = True  # type: ignore[attr-defined]
        request = health_pb2.HealthCheckRequest.FromString
        response = _Response.SerializeToString
        handlers = {
            "Check": grpc.unary_unary_rpc_method_handler(
                check, request_deserializer=request, response_serializer=response
            ),
            "Watch": grpc.unary_stream_rpc_method_handler(
                watch, request_deserializer=request, response_serializer=response
            ),
        }
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),)
        )

    # -- statuses ------------------------------------------------------------------------

    def set(self, service: str, status: int) -> None:
        """Sets a service's status and tells its watchers (from the sender pool: this never
        waits for a client). Ignored after ``shut_down``."""
        with self._lock:
            if self._shut or self._statuses.get(service) == status:
                return
            self._statuses[service] = status
            start = []
            for watcher in self._watchers:
                if watcher.service == service:
                    watcher.pending = status
                    if self._queue_drain(watcher):
                        start.append(watcher)
            stalled = self._stalled_locked()
        self._start(start)
        _cancel(stalled)

    def statuses(self) -> dict[str, int]:
        """Each service's status now ("" is the whole server's), for the status RPC and the
        metrics."""
        with self._lock:
            return dict(self._statuses)

    def shut_down(self) -> None:
        """Every status to NOT_SERVING for good, then ends the Watch streams (one whose
        send still waits for its client a second later is cancelled), so that no watcher
        holds a graceful stop."""
        with self._lock:
            self._shut = True
            changed = {s for s, status in self._statuses.items() if status != NOT_SERVING}
            self._statuses = dict.fromkeys(self._statuses, NOT_SERVING)
            start = []
            for watcher in self._watchers:
                watcher.ending = True
                if watcher.service in changed:
                    watcher.pending = NOT_SERVING
                if self._queue_drain(watcher):
                    start.append(watcher)
        self._start(start)
        timer = threading.Timer(SHUTDOWN_SEND_SECONDS, self._end_stalled)
        timer.daemon = True
        timer.start()

    def _end_stalled(self) -> None:
        with self._lock:
            in_flight = [w for w in self._watchers if w.sending_since is not None]
        _cancel(in_flight)

    def close(self) -> None:
        """Lets the pools' threads end (once the gRPC server has stopped)."""
        self._calls.shutdown(wait=False, cancel_futures=True)
        self._senders.shutdown(wait=False, cancel_futures=True)

    # -- sending -------------------------------------------------------------------------

    @staticmethod
    def _queue_drain(watcher: _Watcher) -> bool:
        """Under the lock: True if a drain must be started for the watcher's news."""
        if watcher.draining or watcher.closed:
            return False
        watcher.draining = True
        return True

    def _start(self, watchers: Iterable[_Watcher]) -> None:
        for watcher in watchers:
            self._senders.submit(self._drain, watcher)

    def _drain(self, watcher: _Watcher) -> None:
        """Sends the watcher's newest status (and then its end, if due) until nothing is
        left; the lock is only taken between sends."""
        while True:
            with self._lock:
                message: health_pb2.HealthCheckResponse | None = None
                if watcher.closed:
                    watcher.draining = False
                    return
                if watcher.pending is not None:
                    message = _Response(status=watcher.pending)
                    watcher.pending = None
                elif watcher.ending:
                    watcher.closed = True  # the end goes out last, and only once
                else:
                    watcher.draining = False
                    return
                watcher.sending_since = time.monotonic()
            try:
                open_ = watcher.send(message) is not False
            except Exception:  # never expected; the stream ends rather than going silent
                log.exception("health watch send failed")
                watcher.context.cancel()
                open_ = False
            finally:
                with self._lock:
                    watcher.sending_since = None
            if message is None or not open_:
                return

    def _forget(self, watcher: _Watcher) -> None:
        """The stream's close callback (in gRPC's polling thread): a short lock, no send."""
        with self._lock:
            watcher.closed = True
            self._watchers.discard(watcher)

    def _stalled_locked(self) -> list[_Watcher]:
        """Under the lock: the streams whose send has waited too long for its client."""
        limit = time.monotonic() - self._stalled_send_seconds
        return [
            w for w in self._watchers if w.sending_since is not None and w.sending_since < limit
        ]


def _cancel(watchers: list[_Watcher]) -> None:
    """Ends streams whose client does not take its messages (outside the lock)."""
    for watcher in watchers:
        watcher.context.cancel()


def _on_pool(behaviour: Callable[..., Any], pool: ThreadPoolExecutor) -> Callable[..., Any]:
    """The behaviour as a function that gRPC runs on ``pool`` rather than its own."""

    def run(*args: Any) -> Any:
        return behaviour(*args)

    run.experimental_thread_pool = pool  # type: ignore[attr-defined]
    return run
