"""Server interceptor: maps domain errors to statuses and logs one line per RPC.

It also guards every method's request deserializer: bytes that do not parse (a
string field holding invalid UTF-8, malformed wire data) would otherwise make
grpcio answer INTERNAL "Exception deserializing request"; here they become
INVALID_ARGUMENT naming the field (see service/parse_errors.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import structlog

from service import parse_errors
from service.errors import InvalidArgument, ReviewrankError
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


class Undecodable:
    """Stands in for a request that did not parse; carries the error to report."""

    __slots__ = ("error",)

    def __init__(self, error: InvalidArgument) -> None:
        self.error = error


def _guard_deserializer(
    deserializer: Callable[[bytes], Any] | None,
) -> Callable[[bytes], Any] | None:
    """A deserializer that returns Undecodable instead of raising."""
    if deserializer is None:
        return None
    message_class = getattr(deserializer, "__self__", None)
    descriptor = getattr(message_class, "DESCRIPTOR", None)
    name = getattr(descriptor, "full_name", "request message")

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:
            try:
                problem = parse_errors.diagnose(data, descriptor) if descriptor else None
            except Exception:  # never let the explanation turn the answer into INTERNAL
                log.exception("could not explain an undecodable request")
                problem = None
            if problem is not None and problem.field:
                violations = [(problem.field, problem.description)]
                message = f"{problem.field}: {problem.description}"
            else:
                violations = []
                detail = problem.description if problem is not None else "unparsable"
                message = f"the request is not a valid {name}: {detail}"
            return Undecodable(InvalidArgument(violations, message))

    return deserialize


def _refuse(context: grpc.ServicerContext, request: Undecodable) -> None:
    context.abort_with_status(to_status(request.error))


def _checked_requests(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
    for request in requests:
        if isinstance(request, Undecodable):
            _refuse(context, request)
        yield request


def _guard(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """Any method (health, reflection): undecodable requests get INVALID_ARGUMENT."""
    deserializer = _guard_deserializer(handler.request_deserializer)
    serializer = handler.response_serializer
    if handler.unary_unary is not None or handler.unary_stream is not None:
        unary = handler.unary_unary or handler.unary_stream

        def unary_behaviour(request: Any, context: grpc.ServicerContext, *args: Any) -> Any:
            if isinstance(request, Undecodable):
                _refuse(context, request)
            return unary(request, context, *args)

        # grpcio looks for these on the behaviour (the health service's non-blocking Watch
        # gets a send_response_callback, and only then can it be ended at shutdown).
        for name in ("experimental_non_blocking", "experimental_thread_pool"):
            if hasattr(unary, name):
                setattr(unary_behaviour, name, getattr(unary, name))

        factory = (
            grpc.unary_unary_rpc_method_handler
            if handler.unary_unary is not None
            else grpc.unary_stream_rpc_method_handler
        )
        return factory(
            unary_behaviour, request_deserializer=deserializer, response_serializer=serializer
        )
    streaming = handler.stream_unary or handler.stream_stream

    def stream_behaviour(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
        return streaming(_checked_requests(requests, context), context)

    factory = (
        grpc.stream_unary_rpc_method_handler
        if handler.stream_unary is not None
        else grpc.stream_stream_rpc_method_handler
    )
    return factory(
        stream_behaviour, request_deserializer=deserializer, response_serializer=serializer
    )


def _wrap(method: str, behaviour: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        started = time.perf_counter()
        request_id = _request_id(context)
        context.send_initial_metadata(((REQUEST_ID_KEY, request_id),))
        code = grpc.StatusCode.OK
        try:
            if isinstance(request, Undecodable):
                raise request.error
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
    """Wraps the unary-unary handlers of the reviewrank services (errors, logs, decoding)
    and guards the request decoding of every other method."""

    def __init__(self, prefix: str = "/reviewrank.") -> None:
        self._prefix = prefix

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None:
            return None
        if not method.startswith(self._prefix) or handler.unary_unary is None:
            return _guard(handler)
        return grpc.unary_unary_rpc_method_handler(
            _wrap(method, handler.unary_unary),
            request_deserializer=_guard_deserializer(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
