"""A thread of its own for whole-catalogue work that no caller needs to wait for.

On a large catalogue, recomputing what is kept for every product (Rank's kept scores
after the prior in force moved, service/app/score_columns.py; Top's order after writes,
service/app/ranker.py) costs tens to hundreds of milliseconds of CPU. Done by the call
that found it stale, it held that call, and with it every call queued behind, for as
long: Rank's p99 on a million products went from 1.8 ms to 96 ms with 50 writes a
second. Callers now serve what they have meanwhile and hand the work here.

Work is keyed: work submitted while the same key's is queued or running is dropped
(it would compute the same thing). The thread works in chunks (``pause``), so that a
call waiting for Python's lock gets it within a chunk's time rather than a switch
interval's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

import structlog

log = structlog.get_logger("reviewrank.refresher")


def pause() -> None:
    """Between two chunks of work: lets any thread waiting for Python's lock have it."""
    time.sleep(0)


class Refresher:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._queued: dict[Hashable, Callable[[], object]] = {}
        self._running: Hashable | None = None
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, key: Hashable, work: Callable[[], object]) -> bool:
        """Queues ``work`` unless work of this key is queued or running (False then)."""
        with self._lock:
            if self._closed or key in self._queued or key == self._running:
                return False
            self._queued[key] = work
            if self._thread is None:  # started at the first work: most servers need none
                self._thread = threading.Thread(
                    target=self._run, name="reviewrank-refresh", daemon=True
                )
                self._thread.start()
            self._lock.notify()
            return True

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queued and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                key = next(iter(self._queued))
                work = self._queued.pop(key)
                self._running = key
            try:
                work()
            except Exception:  # a failed refresh leaves what was kept in use
                log.exception("refresh failed", work=repr(key))
            finally:
                with self._lock:
                    self._running = None
                    self._lock.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Until no work is queued or running (True), or ``timeout`` seconds (False)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._queued or self._running is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
            return True

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._queued.clear()
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(5)
