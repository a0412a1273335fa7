"""Server interceptor: maps domain errors to statuses, logs one line per RPC, and feeds
the per-RPC metrics (service/ops/metrics.py) and traces (service/ops/tracing.py).

Each call gets a request id: the caller's ``x-request-id`` metadata when it is sane,
else a fresh random one; it is returned in the response's initial metadata and is in
the call's log line, with the status code and the duration. Successful calls may be
sampled (``log_sample_rate``); failed ones are always logged, at warning level when the
server is at fault (INTERNAL, UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED…).
The wrapped handler of each method is built once and reused while the method's handler
stays the same, so a call pays for no closure or label building.

It also guards every method's request deserializer: bytes that do not parse (a
string field holding invalid UTF-8, malformed wire data) would otherwise make
grpcio answer INTERNAL "Exception deserializing request"; here they become
INVALID_ARGUMENT naming the field (see service/api/parse_errors.py).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import structlog

from reviewrank.service.api import parse_errors
from reviewrank.service.api.status import status_code, to_status
from reviewrank.service.domain.errors import InvalidArgument, ReviewrankError
from reviewrank.service.ops import tracing
from reviewrank.service.ops.metrics import rejection_reason

if TYPE_CHECKING:
    from reviewrank.service.ops.metrics import MethodMetrics, RpcMetrics

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
    return f"{_random_bits(128):032x}"  # as random as uuid4().hex, at a fraction of its cost


_random_bits = random.getrandbits
_OK = grpc.StatusCode.OK
# Failed calls the server is to blame for (or that an operator must see): logged at warning.
_SERVER_SIDE = frozenset(
    {
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


@dataclass(frozen=True)
class Observability:
    """What the interceptor records of each call besides mapping its errors."""

    metrics: RpcMetrics | None = None
    # The share of successful calls logged (failed calls always are).
    log_sample_rate: float = 1.0
    # False when the log level drops info lines anyway: then no line is even built.
    log_successes: bool = True
    # An OpenTelemetry span is open around each call (service/ops/tracing.py).
    tracing: bool = False


_DEFAULT = Observability()


class Undecodable:
    """Stands in for a request that did not parse; carries the error to report."""

    __slots__ = ("error",)

    def __init__(self, error: InvalidArgument) -> None:
        self.error = error


def undecodable(
    data: bytes,
    descriptor: Any,
    items: Mapping[str, int] | None = None,
    max_fields: int = parse_errors.MAX_FIELDS,
) -> InvalidArgument:
    """The error for bytes that do not parse as ``descriptor``'s message, naming the field
    at fault when it can (service/api/parse_errors.py, reading no more than ``max_fields``
    fields, nor more items of a repeated field than ``items`` allows)."""
    name = getattr(descriptor, "full_name", "request message")
    try:
        problem = parse_errors.diagnose(data, descriptor, items, max_fields) if descriptor else None
    except Exception:  # never let the explanation turn the answer into INTERNAL
        log.exception("could not explain an undecodable request")
        problem = None
    if problem is not None and problem.field:
        return InvalidArgument(
            [(problem.field, problem.description)], f"{problem.field}: {problem.description}"
        )
    detail = problem.description if problem is not None else "unparsable"
    return InvalidArgument([], f"the request is not a valid {name}: {detail}")


def _guard_deserializer(
    deserializer: Callable[[bytes], Any] | None,
) -> Callable[[bytes], Any] | None:
    """A deserializer that returns Undecodable instead of raising."""
    if deserializer is None:
        return None
    message_class = getattr(deserializer, "__self__", None)
    descriptor = getattr(message_class, "DESCRIPTOR", None)

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:
            return Undecodable(undecodable(data, descriptor))

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


def _wrap(
    method: str,
    behaviour: Callable[[Any, grpc.ServicerContext], Any],
    observe: Observability = _DEFAULT,
) -> Callable[..., Any]:
    metrics = None if observe.metrics is None else observe.metrics.method(method)
    sample_rate = observe.log_sample_rate if observe.log_successes else 0.0
    traced = observe.tracing

    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        started = time.perf_counter()
        if metrics is not None:
            metrics.begin()
        request_id = _request_id(context)
        context.send_initial_metadata(((REQUEST_ID_KEY, request_id),))
        code = _OK
        failure: ReviewrankError | None = None
        try:
            if isinstance(request, Undecodable):
                raise request.error
            return behaviour(request, context)
        except ReviewrankError as error:
            code = status_code(error)
            failure = error
            context.abort_with_status(to_status(error))
        except Exception:
            if context.code() not in (None, _OK):  # the handler aborted itself
                code = context.code()
                raise
            code = grpc.StatusCode.INTERNAL
            log.exception("unhandled error", method=method, request_id=request_id)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error (request id {request_id})")
        finally:
            seconds = time.perf_counter() - started
            if code is _OK:
                if metrics is not None:
                    metrics.end(code, seconds)
                if sample_rate >= 1.0 or (sample_rate > 0.0 and random.random() < sample_rate):
                    log.info(
                        "rpc",
                        method=method,
                        code="OK",
                        duration_ms=round(seconds * 1000, 3),
                        request_id=request_id,
                        **(_trace_fields() if traced else {}),
                    )
            else:
                _failed(method, code, seconds, request_id, request, failure, metrics, traced)

    return handle


def _trace_fields() -> dict[str, str]:
    ids = tracing.current_ids()
    return {} if ids is None else {"trace_id": ids[0], "span_id": ids[1]}


def _failed(
    method: str,
    code: grpc.StatusCode,
    seconds: float,
    request_id: str,
    request: Any,
    failure: ReviewrankError | None,
    metrics: MethodMetrics | None,
    traced: bool,
) -> None:
    """Records a failed call: metrics, its span's status, and a log line (never sampled)."""
    if metrics is not None:
        metrics.end(code, seconds)
        # Refused before decoding (bytes) or undecodable: the events are unknown.
        if not isinstance(request, bytes | Undecodable):
            metrics.reject(request, rejection_reason(failure, code))
    fields: dict[str, Any] = {
        "method": method,
        "code": code.name,
        "duration_ms": round(seconds * 1000, 3),
        "request_id": request_id,
    }
    if traced:
        tracing.mark_failed(code)
        fields.update(_trace_fields())
    if code in _SERVER_SIDE:
        if failure is not None:  # the service's own words (never a token or a request field)
            fields["error"] = str(failure)
        log.warning("rpc", **fields)
    else:
        log.info("rpc", **fields)


def _counted(behaviour: Callable[..., Any], metrics: MethodMetrics) -> Callable[..., Any]:
    """A unary behaviour of a method outside the reviewrank services (health Check), counted
    in the gRPC metrics."""

    def counted(request: Any, context: grpc.ServicerContext) -> Any:
        started = time.perf_counter()
        metrics.begin()
        raised = True
        try:
            response = behaviour(request, context)
            raised = False
            return response
        finally:
            code = context.code()
            if code is None:
                code = grpc.StatusCode.UNKNOWN if raised else _OK
            metrics.end(code, time.perf_counter() - started)

    if hasattr(behaviour, "experimental_thread_pool"):  # health runs on a pool of its own
        counted.experimental_thread_pool = behaviour.experimental_thread_pool  # type: ignore[attr-defined]
    return counted


class ErrorAndLogInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Wraps the unary-unary handlers of the reviewrank services (errors, logs, metrics,
    decoding) and guards the request decoding of every other method."""

    def __init__(self, prefix: str = "/reviewrank.", observe: Observability = _DEFAULT) -> None:
        self._prefix = prefix
        self._observe = observe
        # method -> (the handler met, its wrapped version): rebuilt only when another
        # handler comes (e.g. an authentication refusal, made anew for each refused call).
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = self._wrap_handler(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap_handler(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        metrics = self._observe.metrics
        if not method.startswith(self._prefix) or handler.unary_unary is None:
            if metrics is not None and handler.unary_unary is not None:  # health Check
                handler = grpc.unary_unary_rpc_method_handler(
                    _counted(handler.unary_unary, metrics.method(method)),
                    request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer,
                )
            return _guard(handler)
        return grpc.unary_unary_rpc_method_handler(
            _wrap(method, handler.unary_unary, self._observe),
            request_deserializer=_guard_deserializer(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
