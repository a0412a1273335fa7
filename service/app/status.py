"""What the application tells of itself: its status (GetStatus, ``reviewrank status``),
the prior each profile uses now, and the events it has recorded since start."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from service.domain.values import ErasureResult, Outcome, WriteResults


@dataclass(frozen=True)
class PriorInForce:
    """The global prior a profile's rankings use now (service/app/priors.py)."""

    profile: str
    mean: float
    strength: float
    source: str  # fixed, catalogue, auto, and "/category" when fitted per category


@dataclass(frozen=True)
class Status:
    """What an operator asks first: AdminService.GetStatus, ``reviewrank status``."""

    products: int
    events: int  # events recorded: the last sequence number (erasures do not lower it)
    seq: int
    weights_version: int
    queue_depth: int
    queue_capacity: int = 0
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    uptime_seconds: float = 0.0
    storage_ok: bool = True
    default_profile: str = ""
    priors: tuple[PriorInForce, ...] = ()
    # Since this process started: events by outcome, erasures, transactions.
    outcomes: dict[str, int] = field(default_factory=dict)
    erasures: int = 0
    transactions: int = 0
    failed_transactions: int = 0
    change_feed_lag: int = 0


class EventCounts:
    """Events recorded since start, by outcome, and erasures; written by the writer thread
    only (after each commit), read by anyone (plain ints: a read never sees a torn value)."""

    __slots__ = ("by_outcome", "erasures")

    def __init__(self) -> None:
        self.by_outcome = [0] * (max(Outcome) + 1)  # indexed by Outcome
        self.erasures = 0

    def add(self, results: Sequence[WriteResults | ErasureResult]) -> None:
        tally = self.by_outcome
        for result in results:
            if isinstance(result, ErasureResult):
                self.erasures += 1
                continue
            for outcome in result.outcomes:
                tally[outcome] += 1

    def outcomes(self) -> dict[str, int]:
        return {o.name.lower(): self.by_outcome[o] for o in Outcome}
