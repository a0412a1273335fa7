# reviewrank: gRPC review-driven ranking. Build: docker build -t reviewrank .
# Run:   docker run -p 50051:50051 -p 9464:9464 -v reviewrank-data:/var/lib/reviewrank reviewrank
# With Prometheus: docker compose up -d --build (docker-compose.yml; README, Operations)
# Demo:  docker run --rm -v reviewrank-data:/var/lib/reviewrank reviewrank reviewrank import --if-empty
# Admin RPCs and erasure (ForgetUser) need an admin token: mount a file holding one and set
# REVIEWRANK_ADMIN_TOKEN_FILE to its path (docker-compose.yml does); without, they are off.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY proto ./proto
COPY clients/python ./clients/python
COPY ranking ./ranking
COPY service ./service
COPY data/README.md data/weights.toml data/womens-clothing-reviews.csv.zip ./data/
# Runtime dependencies and the OpenTelemetry exporter (REVIEWRANK_TRACING=otlp), no [dev]
# extra, at the versions the tests ran with.
RUN pip install -c constraints.txt -e clients/python -e '.[tracing]' \
    && useradd --system --uid 10001 --no-create-home --home-dir /nonexistent reviewrank \
    && mkdir -p /var/lib/reviewrank \
    && chown reviewrank /var/lib/reviewrank

USER reviewrank
VOLUME ["/var/lib/reviewrank"]
ENV REVIEWRANK_ADDRESS=0.0.0.0:50051 \
    REVIEWRANK_DATABASE=/var/lib/reviewrank/reviewrank.db \
    REVIEWRANK_WEIGHTS=/app/data/weights.toml \
    REVIEWRANK_METRICS_ADDRESS=0.0.0.0:9464 \
    REVIEWRANK_LOG_FORMAT=json \
    REVIEWRANK_LOG_SAMPLE_RATE=0.01
# gRPC, and the Prometheus metrics (/metrics over HTTP).
EXPOSE 50051 9464
# Asks the standard grpc.health.v1.Health service; exit 0 only when SERVING.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["reviewrank", "health", "--server", "127.0.0.1:50051", "--timeout", "3"]
STOPSIGNAL SIGTERM
CMD ["reviewrank", "serve"]
