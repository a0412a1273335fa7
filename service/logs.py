"""structlog set-up: JSON lines in production, a readable console in development."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import MutableMapping
from typing import Any

import structlog

from service.tracing import add_trace_ids


class StderrLogger:
    """Writes each log line to the current ``sys.stderr``, one write per line.

    A log line that cannot be written (stderr closed, or a pipe to a log collector that
    died) is dropped: logging must never raise into the code that logs, or a broken log
    stream would take the writer thread, and with it every write, down.
    """

    _lock = threading.Lock()

    def msg(self, message: str) -> None:
        # A closed or broken stream drops the line (see the class docstring).
        with contextlib.suppress(OSError, ValueError), self._lock:
            sys.stderr.write(message + "\n")
            sys.stderr.flush()

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


_STDERR_LOGGER = StderrLogger()


def _stderr_logger(*_args: Any) -> StderrLogger:
    return _STDERR_LOGGER


def configure(
    log_format: str = "auto", level: str = "info", worker: int = 0, trace_ids: bool = False
) -> None:
    """``worker``: with --workers, each worker process's number (1..N), added to its lines.
    ``trace_ids``: add the OpenTelemetry trace and span ids of the span in progress
    (service/tracing.py) to every line logged within a traced call."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)

    def add_worker(
        _logger: Any, _name: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event["worker"] = worker
        return event

    console = log_format == "console" or (log_format == "auto" and sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer()
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
