"""The gRPC server: a factory used by ``reviewrank serve`` and by the tests."""

from __future__ import annotations

import signal
import threading
from concurrent import futures
from dataclasses import dataclass
from types import FrameType

import grpc
import structlog
from grpc_health.v1 import health_pb2_grpc
from reviewrank.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    feedback_pb2,
    feedback_pb2_grpc,
    ranking_pb2,
    ranking_pb2_grpc,
)

from service import reflection
from service.app import Application
from service.health import NOT_SERVING, SERVICE_NAME, SERVING, HealthServicer
from service.interceptors import ErrorAndLogInterceptor
from service.servicers import AdminServicer, FeedbackServicer, RankingServicer
from service.settings import Settings

log = structlog.get_logger("reviewrank.server")

SERVICE_NAMES = [
    feedback_pb2.DESCRIPTOR.services_by_name["FeedbackService"].full_name,
    ranking_pb2.DESCRIPTOR.services_by_name["RankingService"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
]


class AddressInUse(RuntimeError):
    pass


@dataclass
class ReviewrankServer:
    """A started gRPC server and the application it serves; ``stop`` shuts both down in order."""

    grpc_server: grpc.Server
    app: Application
    health: HealthServicer
    _stopped: bool = False

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
        self.app.close()
        log.info("server stopped")


def create_server(
    settings: Settings, app: Application | None = None
) -> tuple[ReviewrankServer, int]:
    """Builds, binds and starts the server; returns it and the bound port (for address port 0)."""
    app = app or Application(settings)
    options = [
        ("grpc.so_reuseport", 0),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix="rpc"),
        interceptors=[ErrorAndLogInterceptor()],
        options=options,
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
    )
    feedback_pb2_grpc.add_FeedbackServiceServicer_to_server(FeedbackServicer(app), server)
    ranking_pb2_grpc.add_RankingServiceServicer_to_server(RankingServicer(app), server)
    admin_pb2_grpc.add_AdminServiceServicer_to_server(AdminServicer(app), server)
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable([*SERVICE_NAMES, SERVICE_NAME], server)
    try:
        port = server.add_insecure_port(settings.address)
    except RuntimeError as exc:
        app.close()
        raise AddressInUse(f"cannot listen on {settings.address}: {exc}") from None
    if port == 0:
        app.close()
        raise AddressInUse(f"cannot listen on {settings.address} (in use, or not a local address)")
    server.start()
    running = ReviewrankServer(server, app, health_servicer)
    running.set_serving(True)
    log.info("serving", address=settings.address, port=port)
    return running, port


def serve(settings: Settings) -> int:
    """Runs until SIGTERM or SIGINT, then shuts down gracefully."""
    running, _port = create_server(settings)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("shutting down", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
    running.stop()
    return 0
