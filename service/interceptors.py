"""Server interceptor: maps domain errors to statuses and logs one line per RPC."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import structlog

from service.errors import ReviewrankError
from service.status import status_code, to_status

log = structlog.get_logger("reviewrank.rpc")

REQUEST_ID_KEY = "x-request-id"
_MAX_REQUEST_ID = 128


def _request_id(context: grpc.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if (
            key == REQUEST_ID_KEY
            and isinstance(value, str)
            and 0 < len(value) <= _MAX_REQUEST_ID
            and value.isprintable()
        ):
            return value
    return uuid.uuid4().hex


def _wrap(method: str, behaviour: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        started = time.perf_counter()
        request_id = _request_id(context)
        context.send_initial_metadata(((REQUEST_ID_KEY, request_id),))
        code = grpc.StatusCode.OK
        try:
            return behaviour(request, context)
        except ReviewrankError as error:
            code = status_code(error)
            context.abort_with_status(to_status(error))
        except Exception:
            if context.code() not in (None, grpc.StatusCode.OK):  # the handler aborted itself
                code = context.code()
                raise
            code = grpc.StatusCode.INTERNAL
            log.exception("unhandled error", method=method, request_id=request_id)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error (request id {request_id})")
        finally:
            log.info(
                "rpc",
                method=method,
                code=code.name,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                request_id=request_id,
            )

    return handle


class ErrorAndLogInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Wraps the unary-unary handlers of the reviewrank services."""

    def __init__(self, prefix: str = "/reviewrank.") -> None:
        self._prefix = prefix

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith(self._prefix) or handler.unary_unary is None:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            _wrap(method, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
