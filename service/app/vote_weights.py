"""The manipulation defences in force (issue 23): every vote weighed on a thread of
its own, and what the weights take off each product's sums put in the catalogue.

A pass reads every rating and like in force (Store.load_vote_log, on a connection of the
weigher's own), makes of them the votes ranking.integrity weighs (one voice per user and
product: a user's rating and like of a product are one vote, at the earlier time, as a
review of the demo carries both), weighs them with the admins' decisions, and puts the
damped parts (service/app/damped.py) in the catalogue, whose profiles with defences on
then score without them. Every vote stays stored and counted; only its weight changes.

Passes run every ``interval`` seconds (and at once after a decision), but take at most
COST_SHARE of a core (priors.kept_seconds): on a catalogue whose pass takes a second of
CPU, the next waits ten. The first pass is made before the application is ready, so
that a restart never serves bursts in full. Vote times are the events' ``occurred_at``
as kept (never later than their receipt): a sender that backdates a crowd spreads it
over the past (docs/design-integrity.md, "What is not defended").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import structlog

from reviewrank.ranking.integrity import (
    DEFAULT_SETTINGS,
    Bursts,
    Decisions,
    IntegritySettings,
    VoteLog,
    vote_weights,
)
from reviewrank.service.app.catalogue import Catalogue
from reviewrank.service.app.damped import DampedParts
from reviewrank.service.app.priors import kept_seconds
from reviewrank.service.app.store import VOTE_RATING, BurstDecision, Follower, VoteLogRows

log = structlog.get_logger("reviewrank.integrity")

DAY_US = 86_400e6
# A voter is listed as low-weight when some vote of theirs weighs less than this.
LOW_WEIGHT = 0.5

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class BurstView:
    """A burst that damps, as admins see it and name it in a decision."""

    product_id: str
    start_us: int  # its first vote's time
    end_us: int  # its last vote's time
    votes: int
    expected: float  # the most votes the product's own rate brings in one of its windows
    damping: float  # the least weight of its votes (their voters' standing can raise it)
    dismissed: bool  # an admin dismissed it: it keeps damping, never ageing out


@dataclass(frozen=True)
class LowWeightVoter:
    user_id: str
    votes: int  # their votes weighing less than LOW_WEIGHT
    least: float  # the least weight of their votes


@dataclass(frozen=True)
class WeighPass:
    """The last pass: when it ran (Unix seconds), the votes it weighed, the bursts that
    damp, the low-weight voters, the damped votes by kind (rating, like, dislike: votes
    weighing less than 1) and the weight they lost, and what it cost."""

    at: float = 0.0
    votes: int = 0
    bursts: tuple[BurstView, ...] = ()
    low_weight: tuple[LowWeightVoter, ...] = ()
    damped_votes: dict[str, int] = field(default_factory=dict)
    weight_lost: float = 0.0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    decisions: int = 0  # the decisions it applied (as many as were recorded then)


def _codes(values: npt.NDArray[np.object_]) -> IntArray:
    """Each value's number in order of first appearance (a dict: 3 times quicker than
    np.unique on a million strings, which sorts them)."""
    numbers: dict[object, int] = {}
    return np.fromiter(
        (numbers.setdefault(v, len(numbers)) for v in values.tolist()),
        dtype=np.int64,
        count=values.size,
    )


@dataclass(frozen=True)
class _Voices:
    """The votes as ranking.integrity weighs them: one per (product, user)."""

    of_row: IntArray  # each row's voice
    product: IntArray
    user: IntArray
    time_us: IntArray  # the earliest of its rows' times
    user_ids: npt.NDArray[np.object_]  # a voice's user id

    @classmethod
    def of(cls, rows: VoteLogRows) -> _Voices:
        users = _codes(rows.user_id)
        key = rows.product_idx * (int(users.max(initial=0)) + 1) + users
        unique, first, of_row = np.unique(key, return_index=True, return_inverse=True)
        of_row = of_row.reshape(-1)
        time_us = np.full(unique.size, np.iinfo(np.int64).max)
        np.minimum.at(time_us, of_row, rows.occurred_at_us)
        return cls(of_row, rows.product_idx[first], users[first], time_us, rows.user_id[first])


def damped_parts(rows: VoteLogRows, row_weight: FloatArray) -> DampedParts:
    """Σ(1 − w) per product of what each vote adds, for the rows weighing less than 1."""
    lost = 1.0 - row_weight
    hit = lost > 1e-12
    if not hit.any():
        return DampedParts.none()
    product, kind, value = rows.product_idx[hit], rows.kind[hit], rows.value[hit]
    lost, when = lost[hit], rows.occurred_at_us[hit] / 1e6
    idx, at = np.unique(product, return_inverse=True)
    at = at.reshape(-1)
    rating = kind == VOTE_RATING

    def summed(weights: FloatArray) -> FloatArray:
        return np.bincount(at, weights=weights, minlength=idx.size).astype(np.float64)

    histogram = np.zeros((idx.size, 5))
    stars = np.clip(value, 1, 5) - 1
    np.add.at(histogram, (at[rating], stars[rating]), lost[rating])
    total = summed(lost)
    return DampedParts(
        idx=idx.astype(np.int64),
        rating_count=summed(lost * rating),
        star_sum=summed(lost * rating * value),
        histogram=histogram,
        likes=summed(lost * (~rating & (value > 0))),
        dislikes=summed(lost * (~rating & (value < 0))),
        time=summed(lost * when) / total,
    )


def _decisions(
    made: Sequence[BurstDecision], idx_of: Callable[[Sequence[str]], IntArray]
) -> Decisions:
    """The decisions as ranking.integrity takes them (products by row; times in days, a
    microsecond wider each side, so that a vote at either end is inside however its
    time rounds)."""
    rows = idx_of([d.product_id for d in made]).tolist()
    confirmed: list[tuple[int, float, float]] = []
    dismissed: list[tuple[int, float, float]] = []
    for decision, row in zip(made, rows, strict=True):
        if row <= 0:
            continue  # (a product not held yet: it has no votes here)
        burst = (row, (decision.start_us - 1) / DAY_US, (decision.end_us + 1) / DAY_US)
        (confirmed if decision.confirmed else dismissed).append(burst)
    return Decisions(tuple(confirmed), tuple(dismissed))


class VoteWeigher:
    """Weighs the votes in force: a first pass at once, then a pass every ``interval``
    seconds on a thread of its own (paced by its cost), or sooner when woken."""

    def __init__(
        self,
        reader: Follower,
        catalogue: Catalogue,
        decisions: Callable[[], list[BurstDecision]],
        interval: float,
        settings: IntegritySettings = DEFAULT_SETTINGS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._reader = reader
        self._catalogue = catalogue
        self._decisions = decisions
        self._interval = interval
        self._settings = settings
        self._clock = clock
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._done = threading.Condition()
        self._started = 0  # passes started
        self._finished = 0  # the latest of them to finish
        self.last = WeighPass()
        try:
            self.weigh_once()
        except Exception:
            log.exception("weighing the votes at start-up failed; retrying")
        self._thread = threading.Thread(target=self._run, name="reviewrank-integrity", daemon=True)
        self._thread.start()

    def weigh_once(self) -> WeighPass:
        """Reads every vote in force, weighs them, and puts the damped parts in force."""
        started, cpu_started = time.perf_counter(), time.thread_time()
        with self._done:
            self._started += 1
            mine = self._started
        made = self._decisions()
        rows = self._reader.load_vote_log()
        listed, category = self._catalogue.weighing_inputs()
        now = self._clock()
        held = rows.product_idx < listed.size  # (a product not in the catalogue yet waits)
        if not held.all():
            rows = VoteLogRows(
                rows.product_idx[held], rows.user_id[held], rows.kind[held],
                rows.value[held], rows.occurred_at_us[held],
            )  # fmt: skip
        row_weight = np.ones(rows.product_idx.size)
        bursts: tuple[BurstView, ...] = ()
        low: tuple[LowWeightVoter, ...] = ()
        if rows.product_idx.size:
            voices = _Voices.of(rows)
            decisions = _decisions(made, lambda ids: self._catalogue.lookup(ids).idx)
            weight, found = vote_weights(
                VoteLog.of(voices.product, voices.user, voices.time_us / DAY_US),
                now / 86400.0,
                _listing_days(listed, voices, now),
                np.where(category < 0, int(category.max(initial=0)) + 1, category),
                self._settings,
                decisions,
            )
            row_weight = weight[voices.of_row]
            bursts = self._views(found, decisions)
            low = _low_weight(voices, weight)
        parts = damped_parts(rows, row_weight)
        self._catalogue.set_damped(parts)
        damped = row_weight < 1.0 - 1e-12
        rating = rows.kind == VOTE_RATING
        counts = {
            "rating": int(np.sum(damped & rating)),
            "like": int(np.sum(damped & ~rating & (rows.value > 0))),
            "dislike": int(np.sum(damped & ~rating & (rows.value < 0))),
        }
        result = WeighPass(
            at=now, votes=int(rows.product_idx.size), bursts=bursts, low_weight=low,
            damped_votes=counts, weight_lost=parts.votes(),
            seconds=time.perf_counter() - started, cpu_seconds=time.thread_time() - cpu_started,
            decisions=len(made),
        )  # fmt: skip
        with self._done:
            if mine > self._finished:
                self.last = result
                self._finished = mine
            self._done.notify_all()
        return result

    def _views(self, found: Bursts, decisions: Decisions) -> tuple[BurstView, ...]:
        """The bursts as admins see them (latest first), with their product's id and
        their first and last vote's time in microseconds as kept."""
        if not found.product.size:
            return ()
        ids = self._catalogue.ids_of(found.product.tolist())
        views = []
        for i, product_id in enumerate(ids):
            row, start, end = int(found.product[i]), float(found.start[i]), float(found.end[i])
            dismissed = any(p == row and s <= end and start <= e for p, s, e in decisions.dismissed)
            views.append(
                BurstView(
                    product_id=product_id,
                    start_us=round(start * DAY_US),
                    end_us=round(end * DAY_US),
                    votes=int(found.votes[i]),
                    expected=float(found.expected[i]),
                    damping=float(found.least[i]),
                    dismissed=dismissed,
                )
            )
        views.sort(key=lambda b: (-b.end_us, b.product_id))
        return tuple(views)

    def wait_for_pass(self, timeout: float) -> bool:
        """Wakes the thread and waits until a pass that started after this call ends;
        False if none did within ``timeout`` seconds."""
        with self._done:
            target = self._started + 1
        self._wake.set()
        with self._done:
            return self._done.wait_for(lambda: self._finished >= target, timeout)

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            wait = kept_seconds(self.last.cpu_seconds, self._interval)
            self._wake.wait(wait)
            self._wake.clear()
            if self._stopping.is_set():
                break
            try:
                self.weigh_once()
                backoff = 1.0
            except Exception:  # the weights in force stay; tried again later
                if self._stopping.is_set():
                    break
                log.exception("weighing the votes failed; retrying")
                self._stopping.wait(backoff)
                backoff = min(2 * backoff, 60.0)

    def close(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(5)
        self._reader.close()


def _listing_days(listed: FloatArray, voices: _Voices, now: float) -> FloatArray:
    """Each row's listing time in days: when the catalogue first saw it (Unix seconds;
    0: never said), or its first vote if earlier, and never after ``now``."""
    first = np.where(listed > 0, listed, np.inf)
    np.minimum.at(first, voices.product, voices.time_us / 1e6)
    return np.minimum(np.where(np.isfinite(first), first, now), now) / 86400.0


def _low_weight(voices: _Voices, weight: FloatArray) -> tuple[LowWeightVoter, ...]:
    """The voters with a vote weighing less than LOW_WEIGHT, most such votes first."""
    low = weight < LOW_WEIGHT
    if not low.any():
        return ()
    users, at = np.unique(voices.user[low], return_inverse=True)
    at = at.reshape(-1)
    counts = np.bincount(at, minlength=users.size)
    least = np.full(users.size, 1.0)
    np.minimum.at(least, at, weight[low])
    first: dict[int, str] = {}
    for user, user_id in zip(voices.user[low].tolist(), voices.user_ids[low].tolist(), strict=True):
        first.setdefault(user, user_id)
    voters = [
        LowWeightVoter(str(first[u]), int(c), float(m))
        for u, c, m in zip(users.tolist(), counts.tolist(), least.tolist(), strict=True)
    ]
    voters.sort(key=lambda v: (-v.votes, v.user_id))
    return tuple(voters)
