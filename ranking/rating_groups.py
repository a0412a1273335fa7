"""Star ratings summed by how many ratings each product has: all the maximum-marginal-
likelihood fit of the star prior (ranking.marginal) needs of a catalogue.

For every distinct rating count n, the number of products rated n times and the sums of
their star totals S_i and of S_i²; and, over the whole catalogue, Σ Q_i, Q_i being the
sum of a product's squared stars. Every one of these is a sum over products, so a service
can keep them up to date by subtracting a product's old terms and adding its new ones
(O(1) per product written) instead of reading every product at each refit, and a fit then
costs in the number of distinct counts (see ``RatingTally``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from reviewrank.ranking.priors import check_histogram, star_sums

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
SQUARES = np.array([1, 4, 9, 16, 25], dtype=np.int64)
STARS = np.array([1, 2, 3, 4, 5], dtype=np.int64)
SMALL = 256  # products at once up to which RatingTally.add updates element by element


@dataclass(frozen=True)
class RatingGroups:
    """Rated products grouped by their number of ratings (only groups with a product)."""

    counts: FloatArray  # n, distinct and positive
    products: FloatArray  # products rated n times
    star_sum: FloatArray  # Σ S_i over them
    star_sum_squared: FloatArray  # Σ S_i² over them
    square_sum: float  # Σ Q_i over every product


def rating_groups(histogram: npt.ArrayLike) -> RatingGroups:
    """The groups of an (n_products, 5) histogram of 1..5 star counts. Whole counts are
    summed exactly (as integers); fractional ones (time-decayed) as floats."""
    h = check_histogram(histogram)
    whole = h.astype(np.int64)
    if np.array_equal(whole, h):
        return _whole_groups(whole)
    n = h.sum(axis=1)
    s, q = star_sums(h)
    rated = n > 0
    counts, position = np.unique(n[rated], return_inverse=True)
    s = s[rated]
    return RatingGroups(
        counts=counts,
        products=np.bincount(position).astype(np.float64),
        star_sum=np.bincount(position, weights=s).astype(np.float64),
        star_sum_squared=np.bincount(position, weights=s * s).astype(np.float64),
        square_sum=float(q.sum()),
    )


def _whole_groups(h: IntArray) -> RatingGroups:
    tally = RatingTally()
    tally.add(h)
    return tally.groups()


class RatingTally:
    """RatingGroups of whole counts kept up to date as products change (not thread-safe:
    its owner serialises changes and reads)."""

    def __init__(self) -> None:
        # Indexed by the rating count n (0, unrated products, is never read).
        self._products = np.zeros(1, dtype=np.int64)
        self._star_sum = np.zeros(1, dtype=np.int64)
        self._star_sum_squared = np.zeros(1, dtype=np.int64)
        self._square_sum = 0

    def add(self, histograms: npt.ArrayLike) -> None:
        """Adds products of these (k, 5) star counts."""
        h = np.asarray(histograms, dtype=np.int64).reshape(-1, 5)
        self._update(h, np.ones(h.shape[0], dtype=np.int64))

    def replace(self, before: npt.ArrayLike, after: npt.ArrayLike) -> None:
        """Products' star counts change from ``before`` to ``after`` (both (k, 5))."""
        old = np.asarray(before, dtype=np.int64).reshape(-1, 5)
        new = np.asarray(after, dtype=np.int64).reshape(-1, 5)
        sign = np.repeat(np.array([-1, 1], dtype=np.int64), (old.shape[0], new.shape[0]))
        self._update(np.concatenate((old, new)), sign)

    def _update(self, h: IntArray, sign: IntArray) -> None:
        if not h.shape[0]:
            return
        n = h.sum(axis=1)
        s = h @ STARS
        top = int(n.max())
        if top >= self._products.size:
            self._grow(top + 1)
        if n.size <= SMALL:  # a few products written: a few elements updated
            np.add.at(self._products, n, sign)
            np.add.at(self._star_sum, n, sign * s)
            np.add.at(self._star_sum_squared, n, sign * s * s)
        else:  # (float sums of integers: exact below 2⁵³)
            size = self._products.size
            self._products += np.bincount(n, weights=sign, minlength=size).astype(np.int64)
            self._star_sum += np.bincount(n, weights=sign * s, minlength=size).astype(np.int64)
            squared = np.bincount(n, weights=sign * s * s, minlength=size)
            self._star_sum_squared += squared.astype(np.int64)
        self._square_sum += int(sign @ (h @ SQUARES))

    def _grow(self, size: int) -> None:
        size = max(size, 2 * self._products.size)
        for name in ("_products", "_star_sum", "_star_sum_squared"):
            grown = np.zeros(size, dtype=np.int64)
            old = getattr(self, name)
            grown[: old.size] = old
            setattr(self, name, grown)

    def groups(self) -> RatingGroups:
        present = np.flatnonzero(self._products[1:] > 0) + 1
        return RatingGroups(
            counts=present.astype(np.float64),
            products=self._products[present].astype(np.float64),
            star_sum=self._star_sum[present].astype(np.float64),
            star_sum_squared=self._star_sum_squared[present].astype(np.float64),
            square_sum=float(self._square_sum),
        )
