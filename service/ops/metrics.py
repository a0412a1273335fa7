"""Prometheus metrics: the conventional gRPC server metrics, the service's own, the process's.

Served over HTTP on their own port (``metrics_address``) by prometheus_client's server,
in a thread of its own: a scrape never takes a gRPC worker. Each server has its own
registry, so several servers in one process (the tests) never mix their numbers.

Three kinds of source, each as cheap as its place demands:

* per RPC (the interceptor, service/api/interceptors.py): ``grpc_server_*`` as exported by
  go-grpc-prometheus and py-grpc-prometheus. The label children of every method are
  bound once (``RpcMetrics.method``), so a call costs a few counter increments and one
  histogram observation, with no label lookup or string building;
* per transaction and per weights change: histograms and counters updated where the
  thing happens, by the observers the application is built with (``Metrics.observers``);
* at scrape time (``ServiceCollector``): gauges and counters read from the counters
  the application publishes (``Application.counters``: catalogue size and sequence,
  queue depth, writer statistics, weights version, storage health) and the servers'
  health. Nothing is paid between scrapes.

The pure ``ranking`` package knows nothing of this module.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import grpc
import structlog
from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from reviewrank.service.app.status import Counters, Observers
from reviewrank.service.domain.errors import (
    DeadlineExpired,
    InvalidArgument,
    Overloaded,
    ReviewrankError,
    ShuttingDown,
    StorageUnavailable,
)
from reviewrank.service.ops.service_metrics import ServiceCollector

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

log = structlog.get_logger("reviewrank.metrics")

# RPC latency buckets (seconds): from 0.5 ms, since a Rank of a hundred candidates takes
# about a millisecond, up to the conventional 10 s.
RPC_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
COMMIT_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)

_RPC_LABELS = ("grpc_type", "grpc_service", "grpc_method")

# Why the events of a feedback call were not recorded (nothing of the call is written).
_REJECTION_REASONS: dict[type[ReviewrankError], str] = {
    InvalidArgument: "invalid_argument",
    Overloaded: "overloaded",
    StorageUnavailable: "storage_unavailable",
    ShuttingDown: "shutting_down",
    DeadlineExpired: "deadline_exceeded",
}


def rejection_reason(error: ReviewrankError | None, code: grpc.StatusCode) -> str:
    """The ``reason`` label of rejected events: the domain error, else the status code."""
    if error is not None:
        for kind in type(error).__mro__:
            reason = _REJECTION_REASONS.get(kind)
            if reason is not None:
                return reason
    return str(code.name).lower()


def _one_event(_request: Any) -> int:
    return 1


def _batch_events(request: Any) -> int:
    return len(request.events)


# The feedback methods whose requests carry events, and how many.
EVENTS_OF: dict[str, Callable[[Any], int]] = {
    "/reviewrank.v1.FeedbackService/SubmitRating": _one_event,
    "/reviewrank.v1.FeedbackService/SubmitLike": _one_event,
    "/reviewrank.v1.FeedbackService/SubmitShare": _one_event,
    "/reviewrank.v1.FeedbackService/SubmitComment": _one_event,
    "/reviewrank.v1.FeedbackService/SubmitPollVote": _one_event,
    "/reviewrank.v1.FeedbackService/SubmitBatch": _batch_events,
}


class MethodMetrics:
    """The bound label children of one method: what a call updates, with no lookups."""

    __slots__ = (
        "_handled",
        "_labels",
        "_metrics",
        "events_of",
        "handling",
        "started",
    )

    def __init__(self, metrics: RpcMetrics, full_method: str, grpc_type: str) -> None:
        service, _, method = full_method.lstrip("/").partition("/")
        self._labels = (grpc_type, service, method)
        self._metrics = metrics
        self.started = metrics.started.labels(*self._labels)
        self.handling = metrics.handling.labels(*self._labels)
        # Bound on first use of each code; OK now, so that the series exists from the start.
        self._handled: dict[grpc.StatusCode, Any] = {}
        self.handled(grpc.StatusCode.OK)
        self.events_of = EVENTS_OF.get(full_method)

    def handled(self, code: grpc.StatusCode) -> Any:
        child = self._handled.get(code)
        if child is None:
            child = self._metrics.handled.labels(*self._labels, code.name)
            self._handled[code] = child
        return child

    def begin(self) -> None:
        self.started.inc()

    def end(self, code: grpc.StatusCode, seconds: float) -> None:
        child = self._handled.get(code) or self.handled(code)
        child.inc()
        self.handling.observe(seconds)

    def reject(self, request: Any, reason: str) -> None:
        """Counts the events of a failed feedback call (nothing of it was recorded)."""
        if self.events_of is None:
            return
        try:
            events = self.events_of(request)
        except Exception:  # an undecoded request: its events are unknown
            return
        if events:
            self._metrics.rejected.labels(reason).inc(events)


class RpcMetrics:
    """``grpc_server_*`` and the rejected events, fed by the interceptor."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.started = Counter(
            "grpc_server_started",
            "Total number of RPCs started on the server.",
            _RPC_LABELS,
            registry=registry,
        )
        self.handled = Counter(
            "grpc_server_handled",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            (*_RPC_LABELS, "grpc_code"),
            registry=registry,
        )
        self.handling = Histogram(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been "
            "application-level handled by the server.",
            _RPC_LABELS,
            buckets=RPC_BUCKETS,
            registry=registry,
        )
        self.rejected = Counter(
            "reviewrank_events_rejected",
            "Events of feedback calls that failed, by reason: nothing of such a call is "
            "recorded (calls refused before their request is read are not counted here: "
            "see grpc_server_handled_total).",
            ("reason",),
            registry=registry,
        )
        self._methods: dict[str, MethodMetrics] = {}
        self._lock = threading.Lock()
        registry.register(_MessageCounts(self))

    def method(self, full_method: str, grpc_type: str = "unary") -> MethodMetrics:
        """The bound children of a method (made once, then shared)."""
        found = self._methods.get(full_method)
        if found is not None:
            return found
        with self._lock:
            found = self._methods.get(full_method)
            if found is None:
                found = MethodMetrics(self, full_method, grpc_type)
                self._methods[full_method] = found
            return found

    def prepare(self, full_methods: Iterable[str]) -> None:
        """Binds these methods now: their series exist (at 0) before the first call."""
        for full_method in full_methods:
            self.method(full_method)


class _MessageCounts(Collector):
    """``grpc_server_msg_received_total`` and ``grpc_server_msg_sent_total``, derived at
    scrape time: the methods counted are unary, so each call received one message when it
    started and sent one when it succeeded. A call pays nothing for them."""

    def __init__(self, metrics: RpcMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        received = CounterMetricFamily(
            "grpc_server_msg_received",
            "Total number of RPC stream messages received on the server.",
            labels=_RPC_LABELS,
        )
        sent = CounterMetricFamily(
            "grpc_server_msg_sent",
            "Total number of gRPC stream messages sent by the server.",
            labels=_RPC_LABELS,
        )
        for family in self._metrics.started.collect():
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    received.add_metric([sample.labels[k] for k in _RPC_LABELS], sample.value)
        for family in self._metrics.handled.collect():
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels["grpc_code"] == "OK":
                    sent.add_metric([sample.labels[k] for k in _RPC_LABELS], sample.value)
        yield received
        yield sent


class Metrics:
    """Every metric of one server, its registry, and the HTTP endpoint serving them.

    Made before the application, which is built with ``observers``; then
    ``collect_from(app.counters)`` adds what a scrape reads of it."""

    def __init__(self, health: Callable[[], dict[str, int]] | None = None) -> None:
        # No "_created" series: a start time per label set is noise on every scrape (the
        # process's start time is process_start_time_seconds).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        if GC_COLLECTOR is not None:
            GCCollector(registry=self.registry)
        self.rpc = RpcMetrics(self.registry)
        self._transaction_events = Histogram(
            "reviewrank_write_transaction_events",
            "Events per committed write transaction (group commit batches concurrent calls).",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self._transaction_calls = Histogram(
            "reviewrank_write_transaction_calls",
            "Write calls per committed transaction.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self._commit_seconds = Histogram(
            "reviewrank_write_commit_seconds",
            "Time of each committed write transaction (BEGIN to COMMIT, fsync included).",
            buckets=COMMIT_BUCKETS,
            registry=self.registry,
        )
        self._reloads = Counter(
            "reviewrank_weights_reloads",
            "Weights changes asked for, by trigger (rpc, sighup, file-watch), source (file, "
            "inline, rollback) and outcome (applied, invalid, conflict, not_found, failed), "
            "as the weights history records them.",
            ("trigger", "source", "outcome"),
            registry=self.registry,
        )
        self._health = health
        # What the application calls as things happen (service/app/status.py).
        self.observers = Observers(
            transaction=(self._observe_transaction,), weights_change=(self._count_reload,)
        )
        self._http: tuple[WSGIServer, threading.Thread] | None = None

    def collect_from(self, counters: Callable[[], Counters]) -> None:
        """Reads ``counters()`` (Application.counters) and the health at each scrape."""
        self.registry.register(ServiceCollector(counters, self._health))

    def _observe_transaction(self, calls: int, events: int, seconds: float) -> None:
        self._transaction_calls.observe(calls)
        self._transaction_events.observe(events)
        self._commit_seconds.observe(seconds)

    def _count_reload(self, trigger: str, source: str, outcome: str) -> None:
        self._reloads.labels(trigger, source, outcome).inc()

    def serve(self, host: str, port: int) -> int:
        """Starts the HTTP endpoint (its own thread); returns the bound port."""
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        self._http = (server, thread)
        return int(server.server_port)

    @property
    def port(self) -> int | None:
        return None if self._http is None else int(self._http[0].server_port)

    def close(self) -> None:
        """Stops the HTTP endpoint and closes its socket."""
        if self._http is None:
            return
        server, thread = self._http
        self._http = None
        server.shutdown()
        server.server_close()
        thread.join(5)
