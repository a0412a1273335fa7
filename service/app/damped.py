"""What the manipulation defences take off products' sums (issue 23): for each product
with a damped vote, Σ(1 − w) over its votes of what each adds (a rating, its stars and
its histogram bin; a like or a dislike), w the vote's weight (ranking.integrity).

Kept sparse, rows in order: bursts are rare (0 to 4 % of the votes of the benchmark's
made-up history), so a catalogue of a million products holds a few thousand rows here,
and scores of a profile with defences on are its plain sums less these (``less``).
Time-decayed sums lose the damped part decayed from the damped votes' mean time: exact
for the usual burst of an hour or a day, an approximation for one spread over weeks.

Each damped vote's lost weight 1 − w is kept too, by a hash of (product row, user,
kind), so that a write replacing or removing it between two weighings moves the part
with it (``adjusted``): a damped crowd that re-votes keeps its weight until the next
weighing rather than counting in full (or, with the part left as it was, taking away
votes it no longer has).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from reviewrank.ranking.blend import Evidence
from reviewrank.service.domain.values import LIKE, RATING, VoteChange

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class DampedParts:
    """The damped part of each product that has one; ``idx`` sorted, distinct."""

    idx: IntArray
    rating_count: FloatArray
    star_sum: FloatArray
    histogram: FloatArray  # (rows, 5)
    likes: FloatArray
    dislikes: FloatArray
    time: FloatArray  # the damped votes' mean time, weighed by 1 − w (Unix seconds)
    # Each damped vote's 1 − w, by voice_key(row, user, kind), keys sorted.
    voice: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    lost: FloatArray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def none(cls) -> DampedParts:
        empty = np.zeros(0)
        return cls(np.zeros(0, np.int64), empty, empty, np.zeros((0, 5)), empty, empty, empty)

    def lost_of(self, row: int, user_id: str, kind: str) -> float:
        """The weight one vote lost (0: none)."""
        if not self.voice.size:
            return 0.0
        key = voice_key(row, user_id, kind)
        at = int(np.searchsorted(self.voice, key))
        return float(self.lost[at]) if at < self.voice.size and self.voice[at] == key else 0.0

    def adjusted(self, changes: Iterable[VoteChange]) -> DampedParts:
        """The parts after these votes were replaced or removed: a damped vote's part
        follows its new value (the same weight), or goes with it."""
        moves: dict[int, npt.NDArray[np.float64]] = {}
        for change in changes:
            if change.old_value is None or change.kind not in (RATING, LIKE):
                continue
            lost = self.lost_of(change.product_idx, change.user_id, change.kind)
            if not lost:
                continue
            move = moves.setdefault(change.product_idx, np.zeros(9))
            move -= lost * _contribution(change.kind, change.old_value)
            if change.new_value is not None:
                move += lost * _contribution(change.kind, change.new_value)
        if not moves:
            return self
        rows = np.fromiter(moves, dtype=np.int64, count=len(moves))
        where, mine = self.match(rows)
        numbers = self._rows()
        numbers[mine] = np.maximum(numbers[mine] + np.stack([moves[r] for r in rows[where]]), 0.0)
        return replace(
            self,
            rating_count=numbers[:, 0].copy(),
            star_sum=numbers[:, 1].copy(),
            histogram=numbers[:, 2:7].copy(),
            likes=numbers[:, 7].copy(),
            dislikes=numbers[:, 8].copy(),
        )

    @property
    def size(self) -> int:
        return int(self.idx.size)

    def _rows(self) -> FloatArray:
        """Every number of each row side by side (changed_against compares them)."""
        return np.column_stack(
            [self.rating_count, self.star_sum, self.histogram, self.likes, self.dislikes]
        )

    def changed_against(self, before: DampedParts) -> IntArray:
        """The rows whose damped part differs between ``before`` and this."""
        rows = np.union1d(self.idx, before.idx)
        mine, theirs = np.zeros((rows.size, 9)), np.zeros((rows.size, 9))
        mine[np.searchsorted(rows, self.idx)] = self._rows()
        theirs[np.searchsorted(rows, before.idx)] = before._rows()
        return rows[np.any(np.abs(mine - theirs) > 1e-9, axis=1)]

    def match(self, rows: IntArray) -> tuple[IntArray, IntArray]:
        """Positions in ``rows`` that have a damped part, and their positions here."""
        if not self.size or not rows.size:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        at = np.searchsorted(self.idx, rows)
        at_safe = np.minimum(at, self.size - 1)
        hit = self.idx[at_safe] == rows
        return np.flatnonzero(hit), at_safe[hit]

    def less(
        self, evidence: Evidence, rows: IntArray, half_life: float | None, now: float
    ) -> Evidence:
        """``evidence`` of ``rows`` without the damped parts (decayed by ``half_life``
        seconds to ``now`` when the evidence is); the same object when none applies."""
        where, mine = self.match(rows)
        if not where.size:
            return evidence
        factor = np.ones(where.size)
        if half_life is not None:
            factor = np.exp2(-np.maximum(now - self.time[mine], 0.0) / half_life)

        def take(column: npt.NDArray[np.generic], part: FloatArray) -> FloatArray:
            out = column.astype(np.float64)  # (a copy: the evidence is the caller's)
            out[where] = np.maximum(out[where] - part[mine] * factor, 0.0)
            return out

        # The count and the sum of stars from the histogram left: one consistent with
        # the other whatever the part (a mean within 1 to 5).
        histogram = evidence.histogram.astype(np.float64)
        left = np.maximum(histogram[where] - self.histogram[mine] * factor[:, None], 0.0)
        histogram[where] = left
        count = evidence.rating_count.astype(np.float64)
        count[where] = left.sum(axis=1)
        stars = evidence.star_sum.astype(np.float64)
        stars[where] = left @ _STARS
        return replace(
            evidence,
            rating_count=count,
            star_sum=stars,
            likes=take(evidence.likes, self.likes),
            dislikes=take(evidence.dislikes, self.dislikes),
            histogram=histogram,
        )


_STARS = np.arange(1.0, 6.0)


KIND_CODES = {RATING: 1, LIKE: 2}  # (voice_keys' kinds)
_MIX = (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0xD6E8FEB86659FD93)


def voice_keys(rows: IntArray, user_hashes: IntArray, kinds: IntArray) -> IntArray:
    """Votes' keys among the damped ones, from their product rows, their users' hashes
    (Python's, salted per process: the weigher and the catalogue share the process) and
    their kinds' codes, mixed as splitmix64 does: vectorised (hashing a million tuples
    took over a second)."""
    x = user_hashes.astype(np.int64).view(np.uint64) ^ (rows.astype(np.uint64) * np.uint64(_MIX[0]))
    x = x ^ (kinds.astype(np.uint64) * np.uint64(_MIX[3]))
    x = (x ^ (x >> np.uint64(30))) * np.uint64(_MIX[1])
    x = (x ^ (x >> np.uint64(27))) * np.uint64(_MIX[2])
    keys: IntArray = (x ^ (x >> np.uint64(31))).view(np.int64)
    return keys


def voice_key(row: int, user_id: str, kind: str) -> int:
    """One vote's key (voice_keys)."""
    one = voice_keys(np.array([row]), np.array([hash(user_id)]), np.array([KIND_CODES[kind]]))
    return int(one[0])


def _contribution(kind: str, value: int) -> npt.NDArray[np.float64]:
    """What one vote adds to a row of numbers (count, stars, histogram, likes, dislikes)."""
    numbers = np.zeros(9)
    if kind == RATING:
        numbers[0], numbers[1], numbers[1 + value] = 1.0, value, 1.0
    elif value:
        numbers[7 if value > 0 else 8] = 1.0
    return numbers
