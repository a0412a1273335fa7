"""The gRPC server: a factory used by ``reviewrank serve`` and by the tests."""

from __future__ import annotations

import gc
import logging
import signal
import threading
from concurrent import futures
from dataclasses import dataclass
from functools import partial
from types import FrameType
from typing import Any

import grpc
import structlog

from reviewrank.service.api import echo as bench_service
from reviewrank.service.api import reflection
from reviewrank.service.api.admission import AdmissionInterceptor, Limits
from reviewrank.service.api.auth import BearerAuthInterceptor, read_token, server_credentials
from reviewrank.service.api.handlers import add_servicer
from reviewrank.service.api.health import NOT_SERVING, SERVICE_NAME, SERVING, HealthServicer
from reviewrank.service.api.interceptors import ErrorAndLogInterceptor, Observability
from reviewrank.service.api.servicers import AdminServicer, FeedbackServicer, RankingServicer
from reviewrank.service.api.turns import WRITER_THREAD, FairTurns
from reviewrank.service.api.validation import InputLimits
from reviewrank.service.api.wire.batch_codec import EncodedBatch
from reviewrank.service.app.application import Application
from reviewrank.service.app.settings import Settings, metrics_host_port
from reviewrank.service.compose import build_application
from reviewrank.service.domain.errors import AddressInUse
from reviewrank.service.ops import tracing
from reviewrank.service.ops.metrics import Metrics
from reviewrank.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    feedback_pb2,
    ranking_pb2,
)

log = structlog.get_logger("reviewrank.server")

FEEDBACK_SERVICE = feedback_pb2.DESCRIPTOR.services_by_name["FeedbackService"].full_name
SERVICE_NAMES = [
    FEEDBACK_SERVICE,
    ranking_pb2.DESCRIPTOR.services_by_name["RankingService"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
]


@dataclass
class ReviewrankServer:
    """A started gRPC server and the application it serves; ``stop`` shuts both down in order."""

    grpc_server: grpc.Server
    app: Application
    health: HealthServicer
    _stopped: bool = False
    # The Prometheus endpoint (metrics_address) and its bound port; None when off.
    metrics: Metrics | None = None
    metrics_port: int | None = None
    # The OpenTelemetry tracer provider in use (an opentelemetry TracerProvider); None: off.
    tracer_provider: Any = None
    # Admission control's method pools (service/api/admission.py); None with bench_bare.
    admission: AdmissionInterceptor | None = None

    def set_serving(self, serving: bool) -> None:
        for name in ["", *SERVICE_NAMES]:
            self.health.set(name, SERVING if serving else NOT_SERVING)

    def stop(self, grace: float | None = None) -> None:
        """NOT_SERVING first, then in-flight calls finish (up to ``grace``), then the DB closes."""
        if self._stopped:
            return
        self._stopped = True
        self.health.shut_down()
        grace = self.app.settings.grace_seconds if grace is None else grace
        self.grpc_server.stop(grace).wait()
        if self.admission is not None:
            self.admission.close()
        self.health.close()
        self.app.close()
        if self.metrics is not None:  # scrapes see the drain until the end
            self.metrics.close()
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()  # exports the spans still buffered
        log.info("server stopped")


def create_server(settings: Settings, tracer_provider: Any = None) -> tuple[ReviewrankServer, int]:
    """Builds, binds and starts the server; returns it and the bound port (for address port 0).

    ``tracer_provider``: an OpenTelemetry TracerProvider to trace with, whatever the
    ``tracing`` setting says (tests hand one with an in-memory exporter)."""
    # Tokens and TLS files first: one that cannot be read stops the start before anything opens.
    admin_token = read_token(settings.admin_token, settings.admin_token_file, "admin_token")
    api_token = read_token(settings.api_token, settings.api_token_file, "api_token")
    credentials = server_credentials(settings.tls_cert_file, settings.tls_key_file)
    auth = BearerAuthInterceptor(admin_token, api_token, settings.open_erasure)
    provider = tracer_provider or tracing.provider_for(settings.tracing)
    health_servicer = HealthServicer(max_watchers=settings.max_health_watchers)
    # The metrics first: the application is built with their observers.
    metrics = Metrics(health_servicer.statuses) if settings.metrics_address else None
    # Fair turns (service/api/turns.py) for the callers' work and the writer thread's.
    turns = (
        FairTurns(settings.fair_turns) if settings.fair_turns and not settings.bench_bare else None
    )
    app = build_application(
        settings,
        None if metrics is None else metrics.observers,
        None if turns is None else turns.for_thread(WRITER_THREAD),
    )
    if metrics is not None:
        metrics.collect_from(app.counters)
    observe = Observability(
        metrics=None if metrics is None else metrics.rpc,
        log_sample_rate=settings.log_sample_rate,
        log_successes=_logs_info(settings.log_level),
        tracing=provider is not None,
    )
    # Outermost first: the span (when tracing) encloses the log line and the metrics;
    # authentication inside the logging one, so that refused calls are logged too.
    interceptors: list[grpc.ServerInterceptor] = []
    # Admission outermost: a refused call costs no span, log line or token check.
    admission = None
    if not settings.bench_bare:
        admission = AdmissionInterceptor(
            Limits.from_settings(settings),
            _unary_methods(),
            None if metrics is None else metrics.rpc,
            turns,
        )
        interceptors.append(admission)
    if provider is not None:
        interceptors.append(tracing.server_interceptor(provider))
    if not settings.bench_bare:
        interceptors.append(ErrorAndLogInterceptor(observe=observe))
    interceptors.append(auth)
    options = [
        # Off unless this is one of several worker processes sharing the port: otherwise
        # a second server on the same port would start silently and take half the calls.
        ("grpc.so_reuseport", 1 if settings.reuse_port else 0),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
    ]
    if settings.max_streams_per_connection:
        options.append(("grpc.max_concurrent_streams", settings.max_streams_per_connection))
        # A client opening more streams than that waits for one to end instead of
        # getting UNAVAILABLE (gRPC core refuses the excess by default).
        options.append(("grpc.http.overload_protection", 0))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix="rpc"),
        interceptors=interceptors,
        options=options,
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
    )
    # From the descriptors, so that SubmitBatch and Rank can decode their requests their
    # own way: SubmitBatch's events in bulk, from its encoding (service/api/wire/batch_codec.py);
    # Rank's undecoded, its candidates decoded in bulk (service/api/wire/rank_decode.py), and
    # answered with bytes.
    # Each request is refused unread over its method's byte budget (request_budget.py).
    limits = InputLimits.of(settings)
    feedback_service = feedback_pb2.DESCRIPTOR.services_by_name["FeedbackService"]
    read_batch = partial(EncodedBatch.from_bytes, max_events=limits.max_batch_events)
    add_servicer(
        server, feedback_service, FeedbackServicer(app), {"SubmitBatch": read_batch}, limits
    )
    ranking_service = ranking_pb2.DESCRIPTOR.services_by_name["RankingService"]
    add_servicer(
        server, ranking_service, RankingServicer(app, auth.check_admin), {"Rank": None}, limits
    )
    admin_pb2_grpc.add_AdminServiceServicer_to_server(
        AdminServicer(app, health_servicer.statuses), server
    )
    health_servicer.add_to_server(server)
    if metrics is not None:  # every method's series exist (at 0) from the start
        metrics.rpc.prepare(_unary_methods())
    served = [*SERVICE_NAMES, SERVICE_NAME]
    if settings.bench_echo:
        bench_service.add_to_server(server)
        served.append(bench_service.SERVICE_NAME)
    reflection.enable(served, server)
    try:
        port = (
            server.add_insecure_port(settings.address)
            if credentials is None
            else server.add_secure_port(settings.address, credentials)
        )
    except RuntimeError as exc:
        app.close()
        raise AddressInUse(f"cannot listen on {settings.address}: {exc}") from None
    if port == 0:
        app.close()
        raise AddressInUse(f"cannot listen on {settings.address} (in use, or not a local address)")
    try:
        metrics_port = _serve_metrics(settings, metrics)
    except AddressInUse:
        server.stop(None)
        app.close()
        raise
    server.start()
    running = ReviewrankServer(
        server,
        app,
        health_servicer,
        metrics=metrics,
        metrics_port=metrics_port,
        tracer_provider=provider,
        admission=admission,
    )
    running.set_serving(True)

    # The feedback service follows the storage: NOT_SERVING while writes cannot commit.
    # Rankings keep being served from memory, so the others (and "") stay SERVING.
    def storage_health(ok: bool) -> None:
        health_servicer.set(FEEDBACK_SERVICE, SERVING if ok else NOT_SERVING)

    app.add_storage_listener(storage_health)
    if not settings.integrity_seconds:
        log.info("manipulation defences off: every vote counts in full (integrity_seconds 0)")
    if settings.open_erasure:
        log.warning(_OPEN_ERASURE[bool(api_token)])
    if not admin_token:
        log.warning("admin RPCs are disabled: no admin token is configured")
        if not settings.open_erasure:
            log.warning("erasure (ForgetUser) is disabled: no admin token is configured")
    elif credentials is None and not _loopback(settings.address):
        log.warning("bearer tokens travel in clear text: enable TLS (tls_cert_file, tls_key_file)")
    log.info(
        "serving",
        address=settings.address,
        port=port,
        tls=credentials is not None,
        metrics_port=metrics_port,
        tracing=settings.tracing if tracer_provider is None else "provided",
    )
    return running, port


# The start-up warning of the erasure opt-out, without and with an API token.
_OPEN_ERASURE = (
    "ForgetUser needs no credential: anyone who reaches the port can erase users "
    "(open_erasure is set)",
    "ForgetUser needs only the API token: any API client can erase users (open_erasure is set)",
)


def _logs_info(level: str) -> bool:
    """Whether a log line at info level passes the configured level."""
    return logging.getLevelNamesMapping().get(level.upper(), logging.INFO) <= logging.INFO


def _unary_methods() -> list[str]:
    """The full names of the reviewrank methods and the health Check."""
    methods = [
        f"/{service.full_name}/{method.name}"
        for module in (feedback_pb2, ranking_pb2, admin_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ]
    return [*methods, f"/{SERVICE_NAME}/Check"]


def _serve_metrics(settings: Settings, metrics: Metrics | None) -> int | None:
    """Starts the metrics endpoint; its bound port. A worker process of several serves on
    the configured port plus its number less one (one port each; port 0: any free one)."""
    where = metrics_host_port(settings)
    if metrics is None or where is None:
        return None
    host, port = where
    if port and settings.worker_id > 1:
        port += settings.worker_id - 1
    try:
        return metrics.serve(host, port)
    except OSError as exc:
        raise AddressInUse(
            f"cannot serve metrics on {settings.metrics_address}: {exc.strerror or exc}"
        ) from None


def _loopback(address: str) -> bool:
    host = address.rpartition(":")[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


_SIGNAL_CHECK_SECONDS = 0.2


def serve(settings: Settings) -> int:
    """Runs until SIGTERM or SIGINT, then shuts down gracefully. SIGHUP reloads the weights
    file (in the background; an invalid file is logged and changes nothing)."""
    if settings.workers > 1:
        from reviewrank.service.api.workers import supervise

        return supervise(settings)
    started: list[ReviewrankServer] = []
    early_hangups: list[int] = []

    def on_hangup(signum: int, _frame: FrameType | None) -> None:
        if started:
            started[0].app.request_weights_reload()
        else:  # still starting: reload once started
            early_hangups.append(signum)

    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        # No logging here: the signal may land while this thread is inside a log call,
        # whose lock is not re-entrant.
        received.append(signum)
        stop.set()

    # Before the server starts, so that an early signal neither ends the process without
    # its clean-up nor is lost: a SIGHUP then reloads once started, a SIGTERM stops it as
    # soon as it has started. (Handlers run in this thread, between two of its bytecodes:
    # no lock is needed.)
    signal.signal(signal.SIGHUP, on_hangup)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    running, _port = create_server(settings)
    # Everything built so far (modules, the catalogue's index, gRPC's machinery) lives as
    # long as the process: the collector need not walk it again at every full collection.
    # Measured: about 12 % more echo calls and 5-10 % more Rank calls per second.
    gc.freeze()
    started.append(running)
    if early_hangups:
        running.app.request_weights_reload()
    # Woken now and then: a signal the kernel delivered to another thread (any thread may
    # take a process's signal) only runs its handler once this thread runs Python again; a
    # bare wait() then never returned (SIGTERM ignored after a flood: needed SIGKILL).
    while not stop.wait(_SIGNAL_CHECK_SECONDS):
        pass
    log.info("shutting down", signal=signal.Signals(received[0]).name)
    running.stop()
    return 0
