"""``min_seq``: a read that waits until this process has applied a given write.

A wait holds one of the server's threads (grpcio's sync server gives a unary call no
way to answer later from another thread), so its cost is bounded rather than removed:

* a ``min_seq`` beyond every committed write can never be reached: it is refused at
  once (OUT_OF_RANGE, naming the latest committed sequence number). What this process
  has seen settles most calls; only a ``min_seq`` beyond it asks the store, and callers
  arriving together share one query (a write by another worker or replica may be newer
  than anything seen here);
* at most ``max_waiting`` calls wait at once; a call beyond gets UNAVAILABLE at once,
  the answer of a wait that ran out (retry shortly, or on another replica);
* a wait lasts at most ``wait_seconds`` (then UNAVAILABLE, as always).

So however many callers choose to wait, they hold at most ``max_waiting`` threads for at
most ``wait_seconds`` each.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from reviewrank.service.app.feed import ChangeFeed
from reviewrank.service.app.waits import giving_turn_back
from reviewrank.service.domain.errors import OutOfRange, StorageUnavailable, StoreError

log = structlog.get_logger("reviewrank.min_seq")


class LatestSeq:
    """The store's last committed sequence number. A caller that asks while a read is
    under way waits for it, then reads again only if that read began before it asked
    (a commit acknowledged before a call began is in any read begun after it)."""

    def __init__(self, read: Callable[[], int]) -> None:
        """``read``: reads it on a connection safe to use from any thread (not the
        writer's own transaction)."""
        self._read = read
        self._lock = threading.Lock()
        self._value = 0
        self._read_at = float("-inf")  # when the read that gave _value began

    def read(self) -> int:
        asked = time.monotonic()
        with self._lock:
            if self._read_at >= asked:
                return self._value
            began = time.monotonic()
            self._value = self._read()
            self._read_at = began
            return self._value


class MinSeqGate:
    """Where a read with ``min_seq`` waits, within the bounds in the module's doc."""

    def __init__(
        self,
        feed: ChangeFeed,
        applied: Callable[[], int],
        latest: LatestSeq,
        wait_seconds: float,
        max_waiting: int,
    ) -> None:
        """``applied``: the sequence number this process has applied (the catalogue's)."""
        self._feed = feed
        self._applied = applied
        self._latest = latest
        self._wait_seconds = wait_seconds
        self._max_waiting = max_waiting
        self._count_lock = threading.Lock()
        self.waiting = 0

    def wait_for(self, seq: int) -> None:
        """Returns once every change up to ``seq`` is applied here; raises OutOfRange for a
        ``seq`` never committed, StorageUnavailable when it cannot wait or catch up."""
        if self._applied() >= seq:
            return
        if seq > self._feed.seen_seq:
            self._check_committed(seq)
        with self._count_lock:
            if self.waiting >= self._max_waiting:
                raise StorageUnavailable(
                    f"this server has applied changes up to {self._applied()}, not yet {seq},"
                    f" and {self._max_waiting} calls are waiting for theirs already:"
                    " retry (or on another replica)"
                )
            self.waiting += 1
        try:
            with giving_turn_back():
                caught_up = self._feed.wait_for(seq, self._wait_seconds)
        finally:
            with self._count_lock:
                self.waiting -= 1
        if not caught_up:
            raise StorageUnavailable(
                f"this server has applied changes up to {self._applied()}, not yet {seq}:"
                " retry (or on another replica)"
            )

    def _check_committed(self, seq: int) -> None:
        try:
            latest = self._latest.read()
        except StoreError as exc:  # cannot tell: wait as before
            log.warning("could not read the latest sequence number", error=str(exc))
            return
        if seq > latest:
            raise OutOfRange(
                f"min_seq {seq} is beyond the latest committed sequence number {latest}:"
                " pass the seq of a write's response"
            )
