"""Background threads' scheduling priority (Linux: a thread has a nice value of its own)."""

from __future__ import annotations

import os
import sys
import threading

import structlog

log = structlog.get_logger("reviewrank.priority")


def lower_priority(steps: int, setting: str) -> None:
    """Lowers the calling thread's scheduling priority by ``steps`` (at most to 19), set
    through its thread id; ``setting`` names what asked for it, in warnings."""
    if not sys.platform.startswith("linux"):
        log.warning(f"{setting} is only applied on Linux", steps=steps)
        return
    thread = threading.get_native_id()
    try:
        now = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(now + steps, 19))
    except OSError as exc:
        log.warning(f"could not lower a thread's priority for {setting}", error=str(exc))
