"""What the application tells of itself: its counters and status (metrics scrapes,
GetStatus, ``reviewrank status``), the prior each profile uses now, the events it has
recorded since start, and the observers it calls as things happen. The layers above
read the application through these, never through its parts."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import compress

from reviewrank.service.app.store import JobResult
from reviewrank.service.domain.values import ErasureResult, EventBatch, Outcome, WriteResults


@dataclass(frozen=True)
class PriorInForce:
    """The global prior a profile's rankings use now (service/app/priors.py)."""

    profile: str
    mean: float
    strength: float
    source: str  # priors.prior_source: e.g. "auto/marginal", "catalogue/category", "fixed+likes"
    likes: tuple[float, float] = (1.0, 1.0)  # the like share's Beta(a, b)
    shares: tuple[float, float] = (0.0, 0.0)  # the share rate's Gamma(shape, rate), if weighed
    sentiment: tuple[float, float] = (0.0, 0.0)  # the comments' (mean, strength), if weighed


@dataclass(frozen=True)
class Counters:
    """What the application counts and holds now, each value cheap to read: what a metrics
    scrape reads (service/ops/metrics.py), and the greater part of the status."""

    products: int
    seq: int  # of the last event applied in memory
    weights_version: int
    queue_depth: int  # write calls waiting for the writer thread
    queue_capacity: int
    storage_ok: bool
    # Since this process started: events by outcome, erasures, transactions.
    outcomes: dict[str, int]
    erasures: int
    transactions: int
    failed_transactions: int
    writes_expired: int  # write calls dropped unapplied: their deadline passed in the queue
    change_feed_lags: dict[str, int]  # per feed (Application.change_feed_lag)
    # Events recorded (not DUPLICATE) by this process since start, by (kind, channel).
    kinds: dict[tuple[str, str], int] = field(default_factory=dict)
    # The poll strengths (service/app/poll_fitter.py): the votes the last fit read, what it
    # took, and whether poll counts changed since the strengths in force were fitted.
    poll_votes: int = 0
    poll_fit_seconds: float = 0.0
    poll_fit_pending: bool = False
    # Votes weighing less than 1 at the last weighing (service/app/vote_weights.py), by
    # kind: "rating", "like", "dislike".
    damped_votes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Status(Counters):
    """What an operator asks first: AdminService.GetStatus, ``reviewrank status``."""

    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    uptime_seconds: float = 0.0
    default_profile: str = ""
    priors: tuple[PriorInForce, ...] = ()

    @property
    def events(self) -> int:
        """Events recorded: the last sequence number (erasures do not lower it)."""
        return self.seq

    @property
    def change_feed_lag(self) -> int:
        """The greatest lag of any feed."""
        return max(self.change_feed_lags.values(), default=0)


@dataclass(frozen=True)
class Observers:
    """Callbacks the application calls as things happen, given when it is built (before
    any of its threads start), each called in turn; an observer that raises is logged
    and the work it observes carries on. service/ops/metrics.py provides them."""

    # On the writer thread after each committed transaction: its write calls, its events
    # and the seconds it took.
    transaction: tuple[Callable[[int, int, float], None], ...] = ()
    # After every weights reload or rollback asked for: its trigger (rpc, sighup,
    # file-watch), its source (file, inline, rollback) and outcome (applied, invalid,
    # conflict, not_found, failed), named as in the weights history.
    weights_change: tuple[Callable[[str, str, str], None], ...] = ()


class EventCounts:
    """Events recorded since start, by outcome, and erasures; written by the writer thread
    only (after each commit), read by anyone (plain ints: a read never sees a torn value)."""

    __slots__ = ("by_outcome", "erasures")

    def __init__(self) -> None:
        self.by_outcome = [0] * (max(Outcome) + 1)  # indexed by Outcome
        self.erasures = 0

    def add(self, results: Sequence[JobResult]) -> None:
        tally = self.by_outcome
        for result in results:
            if isinstance(result, ErasureResult):
                self.erasures += 1
                continue
            if not isinstance(result, WriteResults):  # catalogue entries: no event
                continue
            for outcome in result.outcomes:
                tally[outcome] += 1

    def outcomes(self) -> dict[str, int]:
        return {o.name.lower(): self.by_outcome[o] for o in Outcome}


# Channels named apart in the counts by kind and channel; the ones seen after these
# count as OTHER_CHANNEL (a channel is free text: a caller inventing one per event must
# not grow the metrics without bound).
MAX_CHANNELS = 20
OTHER_CHANNEL = "other"


class KindCounts:
    """Events recorded (APPLIED or SUPERSEDED) since start by kind and channel ("" for
    none), counted by the calls that sent them once committed (under a lock: several
    calls finish at once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._channels: set[str] = {""}

    def add(self, events: EventBatch, results: WriteResults) -> None:
        recorded = [outcome is not Outcome.DUPLICATE for outcome in results.outcomes]
        pairs = Counter(compress(zip(events.kinds, events.channels, strict=True), recorded))
        with self._lock:
            for (kind, channel), count in pairs.items():
                named = channel
                if channel not in self._channels:
                    if len(self._channels) > MAX_CHANNELS:
                        named = OTHER_CHANNEL
                    else:
                        self._channels.add(channel)
                self._counts[(kind, named)] += count

    def counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)
