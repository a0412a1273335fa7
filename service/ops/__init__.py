"""Operations: structured logs, Prometheus metrics, OpenTelemetry tracing."""
