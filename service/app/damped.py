"""What the manipulation defences take off products' sums (issue 23): for each product
with a damped vote, Σ(1 − w) over its votes of what each adds (a rating, its stars and
its histogram bin; a like or a dislike), w the vote's weight (ranking.integrity).

Kept sparse, rows in order: bursts are rare (0 to 4 % of the votes of the benchmark's
made-up history), so a catalogue of a million products holds a few thousand rows here,
and scores of a profile with defences on are its plain sums less these
(Catalogue._weighed). Time-decayed sums lose the damped part decayed from the damped
votes' mean time: exact for the usual burst of an hour or a day, an approximation for
one spread over weeks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from reviewrank.ranking.blend import Evidence

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

    @classmethod
    def none(cls) -> DampedParts:
        empty = np.zeros(0)
        return cls(np.zeros(0, np.int64), empty, empty, np.zeros((0, 5)), empty, empty, empty)

    @property
    def size(self) -> int:
        return int(self.idx.size)

    def votes(self) -> float:
        """The votes' weight taken off, in votes: ratings plus likes and dislikes."""
        return float(self.rating_count.sum() + self.likes.sum() + self.dislikes.sum())

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

        histogram = evidence.histogram.astype(np.float64)
        histogram[where] = np.maximum(
            histogram[where] - self.histogram[mine] * factor[:, None], 0.0
        )
        return replace(
            evidence,
            rating_count=take(evidence.rating_count, self.rating_count),
            star_sum=take(evidence.star_sum, self.star_sum),
            likes=take(evidence.likes, self.likes),
            dislikes=take(evidence.dislikes, self.dislikes),
            histogram=histogram,
        )

    def of_rows(self, rows: IntArray) -> DampedParts:
        """The parts of these rows (those that have one), in ``rows``' order."""
        _, mine = self.match(rows)
        return DampedParts(
            self.idx[mine], self.rating_count[mine], self.star_sum[mine],
            self.histogram[mine], self.likes[mine], self.dislikes[mine], self.time[mine],
        )  # fmt: skip
