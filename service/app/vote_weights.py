"""The manipulation defences in force (issue 23): every vote weighed on a thread of
its own, and what the weights take off each product's sums put in the catalogue.

A pass reads every rating and like in force (Store.load_vote_log, on a connection of the
weigher's own), weighs each as a vote of ranking.integrity at its own time (a user's
rating and like of a product are two votes: merged at the earlier time, a crowd's likes
took the time of its old ratings and escaped), with the admins' decisions, and puts the
damped parts (service/app/damped.py) in the catalogue, whose profiles with defences on
then score without them. Every vote stays stored and counted; only its weight changes.

Passes run five seconds after writes, every ``interval`` seconds otherwise, at once
after a decision, and but for decisions take at most COST_SHARE of a core: on a
catalogue whose pass takes a second of CPU, the next waits ten. The first pass is made
before the application is ready when the catalogue is small enough (START_UP_VOTES),
so that a restart never serves bursts in full. Vote times are the events'
``occurred_at`` as kept (never later than their receipt): the shop's backend is
trusted with them (docs/design-integrity.md, "In the service").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

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
from reviewrank.service.app.damped import KIND_CODES, DampedParts, voice_keys
from reviewrank.service.app.priority import lower_priority
from reviewrank.service.app.priors import COST_SHARE
from reviewrank.service.app.store import VOTE_RATING, BurstDecision, Follower, VoteLogRows
from reviewrank.service.domain.values import LIKE, RATING

log = structlog.get_logger("reviewrank.integrity")

DAY_US = 86_400e6
# A voter is listed as low-weight when some vote of theirs weighs less than this; the
# first this many are kept for ListBursts (its largest limit).
LOW_WEIGHT = 0.5
MAX_LISTED = 1000
# The first pass is made before the server is ready when the catalogue holds at most
# this many votes (a pass took 0.14 s of CPU on the demo's 46,972 and about 10 s on 1.8
# million); above, in the background, while the server starts serving.
START_UP_VOTES = 500_000
# After votes are written, a pass within this many seconds (at most a tenth of a core):
# a burst bought in an hour is damped seconds after its votes, not at the next interval.
WRITES_SECONDS = 5.0

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
    low_weight: tuple[LowWeightVoter, ...] = ()  # the first MAX_LISTED
    low_weight_total: int = 0
    damped_votes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0


def _codes(values: npt.NDArray[np.object_]) -> tuple[IntArray, IntArray]:
    """Each value's number, dense, by its hash (Python's 64-bit string hash, salted per
    process: two users sharing one is a chance of about n²/2⁶⁵), and the hashes. On 1.8
    million ids, 0.23 s, against 0.96 s for a dict and 2.8 s for np.unique of the
    strings."""
    hashes = np.fromiter(map(hash, values.tolist()), dtype=np.int64, count=values.size)
    codes: IntArray = np.unique(hashes, return_inverse=True)[1].reshape(-1).astype(np.int64)
    return codes, hashes


def damped_parts(rows: VoteLogRows, row_weight: FloatArray, user_hashes: IntArray) -> DampedParts:
    """Σ(1 − w) per product of what each vote adds, for the rows weighing less than 1,
    with each such vote's 1 − w (DampedParts.adjusted); ``user_hashes``: hash() of each
    row's user id (_codes)."""
    lost = 1.0 - row_weight
    hit = lost > 1e-12
    if not hit.any():
        return DampedParts.none()
    kinds = np.where(rows.kind[hit] == VOTE_RATING, KIND_CODES[RATING], KIND_CODES[LIKE])
    keys = voice_keys(rows.product_idx[hit], user_hashes[hit], kinds)
    by_key = np.argsort(keys)
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
        voice=keys[by_key],
        lost=lost[by_key],
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
        if catalogue.vote_total() <= START_UP_VOTES:
            try:
                self.weigh_once()
            except Exception:
                log.exception("weighing the votes at start-up failed; retrying")
        else:
            log.info(
                "weighing the votes in the background: bursts count in full until it ends",
                votes=catalogue.vote_total(),
            )
            self._asked = True
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
            rows = rows.where(held)
        row_weight = np.ones(rows.product_idx.size)
        users, user_hashes = _codes(rows.user_id)
        bursts: tuple[BurstView, ...] = ()
        low: tuple[LowWeightVoter, ...] = ()
        low_total = 0
        if rows.product_idx.size:
            decisions = _decisions(made, lambda ids: self._catalogue.lookup(ids).idx)
            row_weight, found = vote_weights(
                VoteLog.of(rows.product_idx, users, rows.occurred_at_us / DAY_US, rows.verified),
                now / 86400.0,
                _listing_days(listed, rows, now),
                np.where(category < 0, int(category.max(initial=0)) + 1, category),
                self._settings,
                decisions,
            )
            bursts = self._views(found, decisions)
            low, low_total = _low_weight(users, rows.user_id, row_weight)
        parts = damped_parts(rows, row_weight, user_hashes)
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
            low_weight_total=low_total,
            damped_votes=counts,
            seconds=time.perf_counter() - started, cpu_seconds=time.thread_time() - cpu_started,
        )  # fmt: skip
        with self._done:
            if mine > self._finished:
                _log_changes(self.last, result)
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
        self.wake()
        with self._done:
            return self._done.wait_for(lambda: self._finished >= target, timeout)

    def forget(self, user_id: str) -> None:
        """Leaves an erased user out of the low-weight voters at once (their votes leave
        the weights at the next pass, which the erasure's commit asks for)."""
        with self._done:
            kept = tuple(v for v in self.last.low_weight if v.user_id != user_id)
            if gone := len(self.last.low_weight) - len(kept):
                total = self.last.low_weight_total - gone
                self.last = replace(self.last, low_weight=kept, low_weight_total=total)

    def wake(self) -> None:
        """Asks for a pass at once."""
        self._asked = True
        self._wake.set()

    def note_writes(self) -> None:
        """Votes were written: a pass within WRITES_SECONDS (paced as any), so that a
        burst is damped within seconds rather than at the next interval."""
        if not self._written:
            self._written = True
            self._wake.set()

    _asked = False
    _written = False

    def _next_wait(self, since: float) -> float:
        """Seconds until the next pass is due: ``interval`` after the last (at once when
        asked, WRITES_SECONDS after it when votes were written), and, unless asked, never
        sooner than ten times the last pass's CPU after it."""
        if self._asked:  # (an admin's decision: rare, and waited for)
            return 0.0
        floor = self.last.cpu_seconds / COST_SHARE
        due = WRITES_SECONDS if self._written else self._interval
        return max(due, floor) - (time.monotonic() - since)

    def _run(self) -> None:
        # The lowest priority: a pass over a million votes takes seconds of CPU, which
        # the calls and the writer (writer_nice) have first (a pass at the writer's
        # priority cut SubmitRating from 1,688 to 250 calls a second in a paired A/B).
        lower_priority(19, "the vote weigher")
        backoff = 1.0
        since = time.monotonic()
        while not self._stopping.is_set():
            wait = self._next_wait(since)
            if wait > 0:
                self._wake.wait(wait)
                self._wake.clear()
                continue  # (woken: what is due may have changed)
            if self._stopping.is_set():
                break
            self._asked = self._written = False
            since = time.monotonic()
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


def _log_changes(before: WeighPass, after: WeighPass) -> None:
    """Logs the bursts a pass found that the one before did not list, and how many it
    no longer lists (aged out, confirmed, or their votes erased)."""
    seen = {(b.product_id, b.start_us) for b in before.bursts}
    now = {(b.product_id, b.start_us) for b in after.bursts}
    for burst in after.bursts:
        if (burst.product_id, burst.start_us) not in seen:
            log.info(
                "burst of votes found",
                product_id=burst.product_id,
                votes=burst.votes,
                expected=round(burst.expected, 3),
                weight=round(burst.damping, 3),
            )
    if gone := len(seen - now):
        log.info("bursts no longer damping", bursts=gone)


def _listing_days(listed: FloatArray, rows: VoteLogRows, now: float) -> FloatArray:
    """Each row's listing time in days: when the catalogue first saw it (Unix seconds;
    0: never said), or its first vote if earlier, and never after ``now``."""
    first = np.where(listed > 0, listed, np.inf)
    np.minimum.at(first, rows.product_idx, rows.occurred_at_us / 1e6)
    return np.minimum(np.where(np.isfinite(first), first, now), now) / 86400.0


def _low_weight(
    user: IntArray, user_ids: npt.NDArray[np.object_], weight: FloatArray
) -> tuple[tuple[LowWeightVoter, ...], int]:
    """The voters with a vote weighing less than LOW_WEIGHT, most such votes first, then
    the lightest: the first MAX_LISTED of them, and how many there are. (Objects for the
    listed only: for all 1.8 million voters of a write benchmark, 6.5 s.)"""
    low = np.flatnonzero(weight < LOW_WEIGHT)
    if not low.size:
        return (), 0
    users, first, at = np.unique(user[low], return_index=True, return_inverse=True)
    at = at.reshape(-1)
    counts = np.bincount(at, minlength=users.size)
    least = np.full(users.size, 1.0)
    np.minimum.at(least, at, weight[low])
    chosen = np.lexsort((least, -counts))[:MAX_LISTED]
    voters = [
        LowWeightVoter(str(user_id), int(c), float(m))
        for user_id, c, m in zip(
            user_ids[low[first[chosen]]].tolist(),
            counts[chosen].tolist(),
            least[chosen].tolist(),
            strict=True,
        )
    ]
    voters.sort(key=lambda v: (-v.votes, v.least, v.user_id))
    return tuple(voters), int(users.size)
