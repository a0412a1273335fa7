"""Service configuration, read once into a frozen Settings object.

Precedence: command-line flags > environment variables (``REVIEWRANK_*``) >
defaults. Nothing else in the service reads the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from reviewrank.service.app.store import DatabaseURL

ENV_PREFIX = "REVIEWRANK_"


# The shipped data: the demo reviews, the default weights file and database.
def _data_dir() -> Path:
    """The checkout's data/ when running from one (make install, the Docker image), else
    data/ under the working directory: an installed server never writes into its
    site-packages."""
    checkout = Path(__file__).resolve().parents[2] / "data"
    return checkout if (checkout / "weights.toml").is_file() else Path("data").absolute()


DATA_DIR = _data_dir()


@dataclass(frozen=True)
class Settings:
    address: str = "127.0.0.1:50051"
    database: Path = DATA_DIR / "reviewrank.db"
    # The database as a URL, chosen over `database` (the SQLite file) when set:
    # sqlite:///relative/path, sqlite:////absolute/path, or postgresql://user@host:port/dbname
    # for several replicas sharing one store. Never shown with its password.
    database_url: str = field(default="", repr=False)
    weights: Path = DATA_DIR / "weights.toml"
    # Logging: "json" (production), "console" (development) or "auto" (console on a TTY).
    log_format: str = "auto"
    log_level: str = "info"
    # Server.
    max_workers: int = 64
    max_concurrent_rpcs: int = 512
    # Above the largest valid request of the search and feedback methods (Rank of 5,000
    # ids of 128 characters: 2.8 MB), and low enough that gRPC refuses a 4 MiB flood
    # before reading it (normal Rank p50 0.8 ms beside 4 such clients, against 10.6 ms at
    # 4 MiB). An UpsertProducts of 10,000 long names can pass it: the catalogue command
    # sends calls of at most 2 MB.
    max_message_bytes: int = 3 * 1024 * 1024
    grace_seconds: float = 10.0
    # Admission (service/api/admission.py): the most calls of each reviewrank method run at
    # once, each method on threads of its own (max_workers: those of health, reflection);
    # a call beyond gets RESOURCE_EXHAUSTED at once. One limit per class of methods.
    # Admitted calls wait for their turn (fair_turns) on threads that use no CPU, so the
    # limits of reads and writes are about memory: above what 4 connections of 32 streams
    # hold (at 64, a flood of 4 took every place and a shop's Rank was refused).
    admit_reads: int = 256  # each of Rank, Top, GetProductStats
    admit_writes: int = 256  # each FeedbackService method but SubmitBatch
    admit_batches: int = 8  # SubmitBatch
    admit_admin: int = 8  # each AdminService method
    # Reads, writes and batches run this many at once, in turns shared fairly between
    # connections (service/api/turns.py); 0: as many as admitted, unfairly.
    fair_turns: int = 1
    # Calls one client connection may have open at once (HTTP/2 max_concurrent_streams;
    # 0: no limit). Every call passes grpcio's one polling thread in arrival order, so a
    # connection holding a thousand calls delays every other caller; a client opening
    # more waits for one of its calls to end (figures: bench/results/abuse.md).
    max_streams_per_connection: int = 32
    # Open health Watch streams (each holds no thread); one more gets RESOURCE_EXHAUSTED.
    max_health_watchers: int = 100
    # Input limits.
    max_batch_events: int = 1000
    max_candidates: int = 5000
    max_stats_products: int = 1000
    max_top_limit: int = 1000
    max_id_length: int = 128
    max_catalogue_products: int = 10_000  # products in one AdminService.UpsertProducts
    # What a feedback event's category does: "fill" sets the category of a product that
    # has none and that the shop's catalogue does not hold (the first one given wins);
    # "ignore": categories come from the shop's catalogue only.
    event_categories: str = "fill"
    # How far ahead of the server's clock an event's occurred_at may be (clock skew); the
    # time kept is never later than the server's (service/api/convert.py, _occurred_at).
    max_future_seconds: float = 300.0
    # Storage: "FULL" (durable default) or "NORMAL" (may lose the last commits on power loss).
    synchronous: str = "FULL"
    busy_timeout_ms: int = 5000
    writer_queue_size: int = 10_000
    writer_group_max_events: int = 5000
    # The writer thread runs this many steps below the server's scheduling priority (nice;
    # Linux, 0-19): its database work runs without Python's lock, so while it runs the
    # operating system shares the CPU between it and the calls. Beside 4 connections
    # flooding Rank and SubmitRating, normal Rank p50 37 ms at 0, 5.6 ms at 10
    # (make bench-abuse). Writes then wait for the CPU behind reads, not the reverse.
    writer_nice: int = 10
    # After a storage fault: seconds between test writes, and the free space (bytes) the
    # database's filesystem must have again before writes are reported healthy.
    storage_probe_seconds: float = 1.0
    storage_min_free_bytes: int = 1024 * 1024
    # Multi-process serving: worker processes sharing the port (SO_REUSEPORT) and the
    # database; each follows the others' writes through the change feed every poll.
    workers: int = 1
    reuse_port: bool = False
    worker_id: int = 0  # set by the supervisor for each worker process
    feed_poll_seconds: float = 0.05
    # Write <database>.catalogue.npz at a clean shutdown (if the catalogue has at least
    # snapshot_min_products products) and start from it: seconds saved on large catalogues.
    snapshot: bool = True
    snapshot_min_products: int = 10_000
    # At start-up, PRAGMA quick_check of an embedded database (1.3 s of CPU for 544 MB,
    # while the catalogue loads): a corrupt one is served read-only (storage/sqlite/integrity.py).
    integrity_check: bool = True
    # How long a call with min_seq waits for this process to catch up before UNAVAILABLE.
    min_seq_wait_seconds: float = 2.0
    # The most calls of this process waiting for a min_seq at once (each holds a thread);
    # a call beyond gets UNAVAILABLE at once, as one whose wait ran out.
    min_seq_max_waiting: int = 16
    # Benchmarks only: register BenchService.Echo (the gRPC ceiling), and serve with no
    # interceptor at all (no per-RPC log line, no error mapping) to measure its cost.
    bench_echo: bool = False
    bench_bare: bool = False
    # Weights: poll the weights file every this many seconds and reload it when its
    # content changes (0 = off; SIGHUP and AdminService.ReloadWeights reload on demand).
    weights_watch_seconds: float = 0.0
    # The manipulation defences (service/app/vote_weights.py): every vote is weighed again
    # every this many seconds (at most a tenth of a core; at once after an admin's
    # decision); 0: no vote is weighed, every profile counts every vote in full.
    integrity_seconds: float = 60.0
    # Bearer tokens (service/api/auth.py), each set directly or as a file holding it; never
    # logged or shown in a repr. No admin token: admin RPCs answer FAILED_PRECONDITION.
    # An API token, if set, is required by the feedback and ranking services too.
    admin_token: str = field(default="", repr=False)
    admin_token_file: Path | None = None
    api_token: str = field(default="", repr=False)
    api_token_file: Path | None = None
    # Opt-out of the erasure guard: ForgetUser no longer needs the admin token (anyone who
    # reaches the port, or holds the API token if one is set, can erase any user). Logged
    # as a warning at start-up.
    open_erasure: bool = False
    # TLS for the listening port: PEM certificate chain and private key (both or neither).
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # Observability (service/ops/metrics.py, service/ops/tracing.py). Prometheus metrics over HTTP
    # on this HOST:PORT, in a thread of their own ("" = off; port 0 picks a free port).
    metrics_address: str = ""
    # The share of successful RPCs that get a log line (0 to 1); failed ones always do.
    log_sample_rate: float = 1.0
    # OpenTelemetry spans of the reviewrank RPCs: "off", "otlp" (OTLP/gRPC exporter set up
    # by the standard OTEL_EXPORTER_OTLP_* variables) or "console" (printed on stdout).
    tracing: str = "off"

    @property
    def storage(self) -> DatabaseURL:
        """The database in use: database_url if set, else the SQLite file ``database``."""
        if self.database_url:
            return DatabaseURL.parse(self.database_url)
        return DatabaseURL.for_path(self.database)

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given fields replaced; None values are ignored."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _coerce(kind: Any, text: str) -> Any:
    if kind in (bool, "bool"):
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise ValueError("expected one of " + ", ".join(_TRUE + _FALSE))
    if kind in (int, "int"):
        return int(text)
    if kind in (float, "float"):
        return float(text)
    if kind in (Path, "Path", "Path | None"):
        return Path(text)
    return text


def to_env(settings: Settings) -> dict[str, str]:
    """The ``REVIEWRANK_*`` variables that reproduce these settings (for worker processes)."""
    env = {}
    for f in fields(Settings):
        value = getattr(settings, f.name)
        if value is None:
            continue
        if isinstance(value, bool):
            value = "1" if value else "0"
        env[ENV_PREFIX + f.name.upper()] = str(value)
    return env


def from_env(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from ``REVIEWRANK_<FIELD>`` variables, then the given overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        text = env.get(ENV_PREFIX + f.name.upper())
        if text is not None and text != "":
            try:
                values[f.name] = text if f.name == "database" else _coerce(f.type, text)
            except ValueError as exc:
                raise ValueError(f"{ENV_PREFIX}{f.name.upper()}={text!r}: {exc}") from None
    if overrides.get("database") is not None:
        values.pop("database", None)  # (the flag wins over the variable, URL or not)
    _database_or_url(values)
    _database_or_url(overrides)
    settings = Settings(**values).with_overrides(**overrides)
    validate(settings)
    return settings


def _database_or_url(given: dict[str, Any]) -> None:
    """A ``database`` given as text (--database, REVIEWRANK_DATABASE) that holds "://" is
    a database URL, taken as database_url is (unless that is given too); any other text
    is the SQLite file's path. A URL must not become a path: pathlib folds its "//", and
    the store would create a directory tree named after it (postgresql:/user@host/...)
    and serve an empty catalogue there. A URL of another scheme is refused (ValueError)."""
    value = given.get("database")
    if not isinstance(value, str):
        return
    if "://" not in value:
        given["database"] = Path(value)
        return
    try:
        DatabaseURL.parse(value)
    except ValueError as exc:
        raise ValueError(f"database {exc}") from None
    del given["database"]
    if not given.get("database_url"):
        given["database_url"] = value


def validate(settings: Settings) -> None:
    """Raises ValueError naming the first setting that cannot work."""
    settings.storage  # noqa: B018 (raises ValueError naming what is wrong with the URL)
    if settings.synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
        raise ValueError("synchronous must be FULL, EXTRA or NORMAL")
    if settings.log_format not in ("auto", "json", "console"):
        raise ValueError("log_format must be auto, json or console")
    if settings.event_categories not in ("fill", "ignore"):
        raise ValueError("event_categories must be fill or ignore")
    for name in (
        "max_workers",
        "max_concurrent_rpcs",
        "max_health_watchers",
        "max_batch_events",
        "max_candidates",
        "max_stats_products",
        "max_top_limit",
        "max_id_length",
        "max_catalogue_products",
        "writer_queue_size",
        "writer_group_max_events",
        "admit_reads",
        "admit_writes",
        "admit_batches",
        "admit_admin",
        "min_seq_max_waiting",
    ):
        if getattr(settings, name) < 1:
            raise ValueError(f"{name} must be at least 1")
    if settings.fair_turns < 0:
        raise ValueError("fair_turns must be 0 (off) or more")
    if not 0 <= settings.writer_nice <= 19:
        raise ValueError("writer_nice must be from 0 to 19")
    if settings.max_streams_per_connection < 0:
        raise ValueError("max_streams_per_connection must be 0 (no limit) or more")
    if settings.storage_probe_seconds <= 0:
        raise ValueError("storage_probe_seconds must be positive")
    if settings.storage_min_free_bytes < 0:
        raise ValueError("storage_min_free_bytes must not be negative")
    if settings.max_workers <= 2:
        raise ValueError("max_workers must be at least 3")
    if not 0 <= settings.integrity_seconds < float("inf"):
        raise ValueError("integrity_seconds must be 0 (off) or a number of seconds")
    if not 0 <= settings.weights_watch_seconds < float("inf"):
        raise ValueError("weights_watch_seconds must be 0 (off) or a number of seconds")
    for name in ("admin_token", "api_token"):
        if getattr(settings, name) and getattr(settings, name + "_file") is not None:
            raise ValueError(f"set {name} or {name}_file, not both")
    if (settings.tls_cert_file is None) != (settings.tls_key_file is None):
        raise ValueError("tls_cert_file and tls_key_file go together: set both or neither")
    if not 0.0 <= settings.log_sample_rate <= 1.0:
        raise ValueError("log_sample_rate must be between 0 and 1")
    if settings.tracing not in ("off", "otlp", "console"):
        raise ValueError("tracing must be off, otlp or console")
    if settings.metrics_address and not _host_port(settings.metrics_address):
        raise ValueError("metrics_address must be HOST:PORT (e.g. 0.0.0.0:9464), or empty (off)")


def _host_port(address: str) -> tuple[str, int] | None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        return None
    return host.strip("[]"), int(port)


def metrics_host_port(settings: Settings) -> tuple[str, int] | None:
    """The host and port of the metrics endpoint; None when metrics are off."""
    return _host_port(settings.metrics_address) if settings.metrics_address else None
