"""The standard gRPC health service, plus ending open Watch streams at shutdown.

Without that, a load balancer's Watch stream counts as an in-flight call and
holds a graceful shutdown for the whole grace period.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_NAME = health.SERVICE_NAME


class HealthServicer(health.HealthServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(experimental_non_blocking=True)
        self._watch_lock = threading.Lock()
        self._watch_callbacks: set[Callable[[Any], None]] = set()

    def Watch(
        self,
        request: health_pb2.HealthCheckRequest,
        context: grpc.ServicerContext,
        send_response_callback: Callable[[Any], None] | None = None,
    ) -> Any:
        if send_response_callback is not None:
            callback = send_response_callback
            with self._watch_lock:
                self._watch_callbacks.add(callback)

            def forget() -> None:
                with self._watch_lock:
                    self._watch_callbacks.discard(callback)

            context.add_callback(forget)
        return super().Watch(request, context, send_response_callback)

    def statuses(self) -> dict[str, int]:
        """Each service's status now ("" is the whole server's), for the status RPC and the
        metrics."""
        with self._lock:  # the base class's lock and table (grpcio-health-checking)
            return dict(self._server_status)

    def shut_down(self) -> None:
        """Every status to NOT_SERVING for good, then ends the Watch streams."""
        self.enter_graceful_shutdown()
        with self._watch_lock:
            callbacks = list(self._watch_callbacks)
            self._watch_callbacks.clear()
        for callback in callbacks:
            callback(None)
