"""structlog set-up: JSON lines in production, a readable console in development."""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import re
import sys
import threading
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from reviewrank.service.ops.tracing import add_trace_ids


class StderrLogger:
    """Writes each log line to the current ``sys.stderr``, one write per line.

    A log line that cannot be written (stderr closed, or a pipe to a log collector that
    died) is dropped: logging must never raise into the code that logs, or a broken log
    stream would take the writer thread, and with it every write, down.
    """

    _lock = threading.Lock()
    # Once capture_stderr() has taken file descriptor 2, the stream to the real stderr.
    stream: TextIO | None = None

    def msg(self, message: str) -> None:
        # A closed or broken stream drops the line (see the class docstring).
        with contextlib.suppress(OSError, ValueError), self._lock:
            stream = self.stream or sys.stderr
            stream.write(message + "\n")
            stream.flush()

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


_STDERR_LOGGER = StderrLogger()


def _stderr_logger(*_args: Any) -> StderrLogger:
    return _STDERR_LOGGER


def renders_json(log_format: str) -> bool:
    """True when ``log_format`` means JSON lines ("auto": unless stderr is a terminal)."""
    return log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())


def configure(
    log_format: str = "auto", level: str = "info", worker: int = 0, trace_ids: bool = False
) -> None:
    """``worker``: with --workers, each worker process's number (1..N), added to its lines.
    ``trace_ids``: add the OpenTelemetry trace and span ids of the span in progress
    (service/ops/tracing.py) to every line logged within a traced call."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)

    def add_worker(
        _logger: Any, _name: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event["worker"] = worker
        return event

    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if renders_json(log_format)
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *([add_worker] if worker else []),
            *([add_trace_ids] if trace_ids else []),
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=True,
    )


# gRPC core's own lines: "E1204 17:21:39.405607   15841 ssl_transport_security.cc:2563] text"
# (severity letter, date, time, thread id, source file and line).
_GRPC_LINE = re.compile(r"([IWEF])\d{4} \S+\s+\d+ ([^\]\s]+)\] ?(.*)")
_GRPC_LEVELS = {"I": "info", "W": "warning", "E": "error", "F": "critical"}
DRAIN_SECONDS = 2.0  # how long an exiting process waits for its last stderr lines


def capture_stderr() -> None:
    """Makes every line written to file descriptor 2 a JSON log line (for JSON logs).

    gRPC core (C++) writes its own lines, e.g. a TLS handshake failure when a plaintext
    client reaches a TLS port, straight to file descriptor 2, as do Python warnings and
    other libraries' fallbacks; in a JSON log they were plain text a collector cannot
    parse. Descriptor 2 becomes a pipe, and a thread turns each line read from it into a
    structured record (gRPC's lines under logger "grpc.core", at their own severity;
    any other text under logger "stderr", as a warning; a line that already is a JSON
    object, such as a worker process's, passes unchanged); this process's log lines go
    to the real stderr directly. Chosen over silencing gRPC (GRPC_VERBOSITY, read once
    when gRPC starts, so only if set before its import): that loses what the lines say,
    and leaves every other writer to descriptor 2 unchanged. The cost: text written to
    descriptor 2 by a process that then dies at once (a fatal signal) can be lost.
    """
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    StderrLogger.stream = open(real, "w", encoding="utf-8", errors="replace")  # noqa: SIM115
    relay = threading.Thread(target=_relay, args=(read_end,), name="reviewrank-stderr", daemon=True)
    relay.start()

    def drain() -> None:
        """At exit, the last lines (a start-up failure's message, say) are relayed too:
        descriptor 2 is the real stderr again, so the pipe ends once read."""
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
            os.dup2(real, 2)
        relay.join(DRAIN_SECONDS)  # (a worker process may hold the pipe open longer)

    atexit.register(drain)


def print_fatal(message: str) -> None:
    """Prints the message a failing command ends with: plain text on stderr, or, once
    capture_stderr() has made every line JSON, an error record saying it."""
    if StderrLogger.stream is None:
        print(message, file=sys.stderr)
    else:
        structlog.get_logger().error(message, logger="reviewrank")


def _relay(read_end: int) -> None:
    """Reads descriptor 2's pipe until it closes (see capture_stderr). Survives anything:
    were it to stop, every write to descriptor 2 would block once the pipe filled."""
    with open(read_end, "rb") as pipe:
        for raw in pipe:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            try:
                _log_line(line)
            except Exception:  # a line that cannot be logged is written as a bare record
                _STDERR_LOGGER.msg(json.dumps({"event": line, "logger": "stderr"}))


def _log_line(line: str) -> None:
    if not line.strip():
        return
    if line.startswith("{"):
        with contextlib.suppress(ValueError):
            if isinstance(json.loads(line), dict):
                _STDERR_LOGGER.msg(line)
                return
    found = _GRPC_LINE.fullmatch(line)
    if found is None:
        structlog.get_logger().warning(line, logger="stderr")
        return
    severity, source, text = found.groups()
    log = structlog.get_logger()
    getattr(log, _GRPC_LEVELS[severity])(text, logger="grpc.core", source=source)
