"""The change feed: keeps this process's catalogue in step with writes made elsewhere.

Every committed write carries a sequence number, and every product row the sequence
number of its last change. The feed thread reads, on its own connection and in one
read transaction, the database's last sequence number and the rows changed since
what it last saw, and hands them to the catalogue, which keeps a row only if it is
newer than the one it holds. Writes by other server processes (``--workers``), by
``reviewrank import`` run beside a server, or by other replicas, so reach every
process within a poll interval, or at once on PostgreSQL, whose commits notify the
followers (LISTEN/NOTIFY; polling stays as the fallback). ``wait_for`` lets a caller
that just wrote read its own write anywhere (``min_seq``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from reviewrank.service.app.catalogue import Catalogue
from reviewrank.service.app.store import Follower
from reviewrank.service.domain.errors import StoreError

log = structlog.get_logger("reviewrank.feed")


class ChangeFeed:
    def __init__(
        self,
        follower: Follower,
        catalogue: Catalogue,
        poll_seconds: float = 0.1,
        applying: Callable[[], int] | None = None,
    ) -> None:
        """``applying``: the sequence number up to which this process's own writer is
        committing, or applying to the catalogue, its own rows (0: none): the feed does not
        read those back."""
        self._follower = follower
        self._catalogue = catalogue
        self._poll_seconds = poll_seconds
        self._applying = applying or (lambda: 0)
        self._caught_up = threading.Condition()
        self._stopping = False
        self.seen_seq = catalogue.seq  # the database's last sequence number when last read
        self._thread = threading.Thread(target=self._run, name="reviewrank-feed", daemon=True)
        self._thread.start()

    @property
    def lag(self) -> int:
        """Sequence numbers committed in the database but not yet reflected here."""
        return max(0, self.seen_seq - self._catalogue.seq)

    def poll_once(self) -> None:
        """Reads and applies whatever changed since the catalogue's sequence number."""
        store = self._follower
        latest = store.last_seq()
        self.seen_seq = max(self.seen_seq, latest)
        dirty = self._catalogue.decay_dirty
        comment_dirty = self._catalogue.comment_dirty
        if latest <= max(self._catalogue.seq, self._applying()) and not (dirty or comment_dirty):
            return
        table = store.load_products(after_seq=self._catalogue.seq)
        votes = None
        if self._catalogue.keeps_decayed_sums:
            products = sorted(set(table.idx.tolist()) | set(dirty))
            votes = store.load_votes(products, shares_only=not self._catalogue.stars_decayed)
        comments = None
        channels = self._catalogue.comment_channel_names
        if channels:
            products = sorted(set(table.idx.tolist()) | set(comment_dirty))
            comments = store.load_comment_rows(channels, products)
        self._catalogue.apply_feed(table, votes, comments)

    def _run(self) -> None:
        while not self._stopping:
            self._follower.wait(self._poll_seconds)
            if self._stopping:
                break
            try:
                self.poll_once()
            except StoreError as exc:
                log.warning("change feed read failed; retrying", error=str(exc))
                time.sleep(self._poll_seconds)
            with self._caught_up:
                self._caught_up.notify_all()
        self._follower.close()

    def wait_for(self, seq: int, timeout: float) -> bool:
        """True once every change up to ``seq`` is reflected here (False after ``timeout``)."""
        if self._catalogue.seq >= seq:
            return True
        deadline = time.monotonic() + timeout
        with self._caught_up:
            while self._catalogue.seq < seq:
                self._follower.wake()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._caught_up.wait(min(remaining, self._poll_seconds))
        return True

    def close(self) -> None:
        self._stopping = True
        self._follower.wake()
        self._thread.join(5)
