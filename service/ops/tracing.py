"""Optional OpenTelemetry tracing of the reviewrank RPCs (the ``tracing`` extra).

Off unless ``tracing`` is "otlp" or "console" (or the tests hand create_server a tracer
provider). Then opentelemetry-instrumentation-grpc's server interceptor opens a SERVER
span per reviewrank RPC, continuing the caller's trace when the request carries W3C
``traceparent`` metadata; the per-RPC log line and every other line logged meanwhile
carry its ``trace_id`` and ``span_id``; failed calls mark their span as errors.

The exporter is configured by the standard variables (``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_SERVICE_NAME``, ``OTEL_TRACES_SAMPLER``…), read
by the OpenTelemetry SDK itself. Health and reflection calls are not traced (their
streams must keep grpcio's non-blocking mode, which the instrumentation drops).

Nothing here is imported unless tracing is on: the packages are an optional extra.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

import grpc

from reviewrank.service import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

MISSING_EXTRA = (
    "tracing needs the OpenTelemetry packages: pip install 'reviewrank[tracing]' "
    "(or set tracing = off)"
)
TRACED_PREFIX = "/reviewrank."


def provider_for(tracing: str) -> TracerProvider | None:
    """A tracer provider exporting as the ``tracing`` setting says; None when it is off.
    ValueError when the packages are not installed."""
    if tracing == "off":
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SpanExporter,
        )
    except ImportError:
        raise ValueError(MISSING_EXTRA) from None
    exporter: SpanExporter
    if tracing == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise ValueError(MISSING_EXTRA) from None
        exporter = OTLPSpanExporter()
    else:
        exporter = ConsoleSpanExporter()
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set, win over these defaults.
    resource = Resource.create({"service.name": "reviewrank", "service.version": __version__})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def server_interceptor(provider: TracerProvider) -> grpc.ServerInterceptor:
    """The instrumentation's interceptor, for the reviewrank services only."""
    try:
        from opentelemetry.instrumentation.grpc import server_interceptor as make
    except ImportError:
        raise ValueError(MISSING_EXTRA) from None

    def traced(details: grpc.HandlerCallDetails) -> bool:
        return bool(details.method.startswith(TRACED_PREFIX))

    interceptor: grpc.ServerInterceptor = make(  # type: ignore[no-untyped-call]
        tracer_provider=provider, filter_=traced
    )
    return interceptor


def current_ids() -> tuple[str, str] | None:
    """The trace and span ids (hex) of the span in progress, if any."""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


# The codes that make a server span an error, as the semantic conventions for gRPC say
# (a caller's mistake, e.g. INVALID_ARGUMENT, is not the server's error).
SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


def mark_failed(code: grpc.StatusCode) -> None:
    """Records a failed call's status on its span (the instrumentation sees only
    ``context.abort``, not the ``abort_with_status`` the interceptor uses)."""
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    span = trace.get_current_span()
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code in SERVER_ERRORS:
        span.set_status(Status(StatusCode.ERROR, code.name))


def add_trace_ids(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the current span's trace and span ids on every line."""
    if "trace_id" not in event:
        ids = current_ids()
        if ids is not None:
            event["trace_id"], event["span_id"] = ids
    return event
