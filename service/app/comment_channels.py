"""Comments summed per channel, for profiles whose channel weights count a comment from
some channels more or less than once (``[profiles.x.channels]``, e.g. ``store = 2``).

The product row holds the count and sum of scores of all its comments; these sums hold,
for each channel some profile names, the count and sum of that channel's comments alone.
A profile's weights w_c then make the weighted count ``n + Σ_c (w_c − 1)·n_c`` and the
weighted sum ``s + Σ_c (w_c − 1)·s_c``, without keeping sums of every channel ever seen
(12 bytes per product and channel named). Built from the comments in force, moved by each
committed comment change, and recomputed from the comments for rows another process
changed (the change feed), as service/app/decayed.py does for shares.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from reviewrank.ranking.profiles import CommentWeighing
from reviewrank.service.app.store import CommentRows
from reviewrank.service.domain.values import COMMENT, SENTIMENT_SCALE, VoteChange

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class CommentChannels:
    """Per channel: each product's comments from it and their scores' sum (in
    1/SENTIMENT_SCALE), indexed by product idx; the owner serialises access (the
    catalogue's lock)."""

    def __init__(self, names: Iterable[str], capacity: int) -> None:
        self.count: dict[str, npt.NDArray[np.int32]] = {
            name: np.zeros(capacity, dtype=np.int32) for name in names
        }
        self.total: dict[str, IntArray] = {
            name: np.zeros(capacity, dtype=np.int64) for name in self.count
        }

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.count)

    def grow(self, capacity: int) -> None:
        for sums in (self.count, self.total):
            for name, old in sums.items():
                if old.shape[0] < capacity:
                    new = np.zeros(capacity, dtype=old.dtype)
                    new[: old.shape[0]] = old
                    sums[name] = new

    def load(self, rows: CommentRows) -> None:
        """Adds every comment given (of the channels held; the others are skipped)."""
        if rows.product_idx.size:
            self.grow(int(rows.product_idx.max()) + 1)
        for name in self.count:
            mine = rows.channel == name
            idx = rows.product_idx[mine]
            np.add.at(self.count[name], idx, 1)
            np.add.at(self.total[name], idx, rows.score[mine])

    def reset(self, products: IntArray, rows: CommentRows) -> None:
        """Recomputes these products' sums from their comments (changed elsewhere)."""
        if products.size:
            self.grow(int(products.max()) + 1)
        for name in self.count:
            self.count[name][products] = 0
            self.total[name][products] = 0
        self.load(rows)

    def apply(self, changes: Sequence[VoteChange]) -> None:
        """Moves the sums by committed comment changes (other kinds are skipped)."""
        for change in changes:
            if change.kind != COMMENT:
                continue
            idx = change.product_idx
            self.grow(idx + 1)
            if change.old_value is not None and change.old_channel in self.count:
                self.count[change.old_channel][idx] -= 1
                self.total[change.old_channel][idx] -= change.old_value
            if change.new_value is not None and change.new_channel in self.count:
                self.count[change.new_channel][idx] += 1
                self.total[change.new_channel][idx] += change.new_value

    def weighted(
        self,
        idx: IntArray | slice,
        weighing: CommentWeighing,
        comments: npt.ArrayLike,
        sums: npt.ArrayLike,
    ) -> tuple[FloatArray, FloatArray]:
        """The rows' weighted comment counts and sums of scores (scores in [−1, 1]), from
        their plain ``comments`` and ``sums`` (in 1/SENTIMENT_SCALE)."""
        count = np.asarray(comments, dtype=np.float64).copy()
        total = np.asarray(sums, dtype=np.float64).copy()
        for name, weight in weighing.channels:
            if weight != 1.0:
                count += (weight - 1.0) * self.count[name][idx]
                total += (weight - 1.0) * self.total[name][idx]
        # (a weight below 1 can leave a rounding residue below 0)
        np.maximum(count, 0.0, out=count)
        return count, total / SENTIMENT_SCALE
