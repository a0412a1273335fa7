"""Star ratings summed by how many ratings each product has (and by its category): all
the marginal-likelihood fits of the star prior (ranking.marginal, ranking.hierarchy) need
of a catalogue.

For every distinct rating count n (and category), the number of products rated n times
and the sums of their star totals S_i and of S_i²; and, over the whole catalogue, Σ Q_i,
Q_i being the sum of a product's squared stars. Every one of these is a sum over
products, so a service can keep them up to date by subtracting a product's old terms and
adding its new ones (O(log pairs) per product written) instead of reading every product
at each refit, and a fit then costs in the number of distinct (category, count) pairs
(see ``RatingTally``).
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
    """The groups of an (n_products, 5) histogram of 1..5 star counts, whole or
    fractional (time-decayed)."""
    h = check_histogram(histogram)
    return category_rating_groups(h, np.full(h.shape[0], -1)).by_count()


@dataclass(frozen=True)
class CategoryRatingGroups:
    """Rated products grouped by (category code, number of ratings): one element per pair
    that has a product; code −1 for products without a category. All the hierarchical
    prior (ranking.hierarchy) needs of a catalogue."""

    codes: IntArray
    counts: FloatArray  # n, positive
    products: FloatArray
    star_sum: FloatArray  # Σ S_i over them
    star_sum_squared: FloatArray  # Σ S_i² over them
    square_sum: float  # Σ Q_i over every product

    def by_count(self) -> RatingGroups:
        """The same products grouped by their number of ratings alone."""
        counts, position = np.unique(self.counts, return_inverse=True)

        def total(values: FloatArray) -> FloatArray:
            return np.bincount(position, weights=values, minlength=counts.size).astype(float)

        return RatingGroups(
            counts=counts.astype(np.float64),
            products=total(self.products),
            star_sum=total(self.star_sum),
            star_sum_squared=total(self.star_sum_squared),
            square_sum=self.square_sum,
        )


def category_rating_groups(
    histogram: npt.ArrayLike, category_codes: npt.ArrayLike
) -> CategoryRatingGroups:
    """The (category, count) groups of an (n_products, 5) histogram of 1..5 star counts
    whose products have these category codes (negative: none)."""
    h = check_histogram(histogram)
    codes = np.asarray(category_codes, dtype=np.int64)
    if codes.shape != (h.shape[0],):
        raise ValueError(f"category_codes must have shape ({h.shape[0]},), got {codes.shape}")
    n = h.sum(axis=1)
    s, q = star_sums(h)
    rated = n > 0
    n, s, code = n[rated], s[rated], np.maximum(codes[rated], -1)
    whole = n.astype(np.int64)
    if np.array_equal(whole, n) and n.size:
        keys, position = _distinct_keys(code + 1, whole)
        pair_codes, pair_counts = (keys >> 32) - 1, (keys & 0xFFFFFFFF).astype(np.float64)
    else:  # fractional (time-decayed) counts
        pairs, position = np.unique(np.stack((code, n)), axis=1, return_inverse=True)
        pair_codes, pair_counts = pairs[0].astype(np.int64), pairs[1]
        position = position.reshape(-1)

    def total(values: FloatArray | None) -> FloatArray:
        return np.bincount(position, weights=values, minlength=pair_codes.size).astype(float)

    return CategoryRatingGroups(
        codes=pair_codes.astype(np.int64),
        counts=pair_counts.astype(np.float64),
        products=total(None),
        star_sum=total(s),
        star_sum_squared=total(s * s),
        square_sum=float(q.sum()),
    )


class RatingTally:
    """Rated products' star sums grouped by (category code, number of ratings), kept up
    to date as products change (not thread-safe: its owner serialises changes and reads).

    Each pair has a slot in arrays ordered by its key (code + 1) · 2³² + n, found by
    binary search: a write to k products costs O(k log pairs), plus a copy of the arrays
    when it makes a pair not seen before (see _slots)."""

    def __init__(self) -> None:
        self._keys = np.zeros(0, dtype=np.int64)
        self._products = np.zeros(0, dtype=np.int64)
        self._star_sum = np.zeros(0, dtype=np.int64)
        self._star_sum_squared = np.zeros(0, dtype=np.int64)
        self._square_sum = 0

    def add(self, histograms: npt.ArrayLike, codes: npt.ArrayLike | None = None) -> None:
        """Adds products of these (k, 5) star counts and category codes (default: none)."""
        h = np.asarray(histograms, dtype=np.int64).reshape(-1, 5)
        self._update(h, _codes(codes, h), np.ones(h.shape[0], dtype=np.int64))

    def replace(
        self,
        before: npt.ArrayLike,
        after: npt.ArrayLike,
        codes_before: npt.ArrayLike | None = None,
        codes_after: npt.ArrayLike | None = None,
    ) -> None:
        """Products' star counts (and category codes) change from ``before`` to ``after``
        (both (k, 5); codes default to none)."""
        old = np.asarray(before, dtype=np.int64).reshape(-1, 5)
        new = np.asarray(after, dtype=np.int64).reshape(-1, 5)
        sign = np.repeat(np.array([-1, 1], dtype=np.int64), (old.shape[0], new.shape[0]))
        codes = np.concatenate((_codes(codes_before, old), _codes(codes_after, new)))
        self._update(np.concatenate((old, new)), codes, sign)

    def _update(self, h: IntArray, codes: IntArray, sign: IntArray) -> None:
        if not h.shape[0]:
            return
        self._square_sum += int(sign @ (h @ SQUARES))
        n = h.sum(axis=1)
        rated = n > 0
        if not np.all(rated):
            h, codes, sign, n = h[rated], codes[rated], sign[rated], n[rated]
        s = h @ STARS
        if n.size <= SMALL:  # a few products written: a few elements updated
            slot = self._slots(((codes + 1) << 32) | n)
            np.add.at(self._products, slot, sign)
            np.add.at(self._star_sum, slot, sign * s)
            np.add.at(self._star_sum_squared, slot, sign * s * s)
        else:  # (float sums of integers: exact below 2⁵³)
            distinct, position = _distinct_keys(codes + 1, n)
            slot = self._slots(distinct)[position]
            size = self._keys.size
            self._products += np.bincount(slot, weights=sign, minlength=size).astype(np.int64)
            self._star_sum += np.bincount(slot, weights=sign * s, minlength=size).astype(np.int64)
            squared = np.bincount(slot, weights=sign * s * s, minlength=size)
            self._star_sum_squared += squared.astype(np.int64)

    def _slots(self, keys: IntArray) -> IntArray:
        """Each key's slot, making slots for keys not seen before: inserted in order (a
        copy of each array, without sorting them again), after dropping the empty slots
        when they outnumber the others, so that there are never more than twice as many
        slots as pairs that have a product."""
        slot, found = self._find(keys)
        if np.all(found):
            return slot
        empty = self._products == 0
        if 2 * int(np.count_nonzero(empty)) > self._keys.size:
            for name in ("_keys", "_products", "_star_sum", "_star_sum_squared"):
                setattr(self, name, getattr(self, name)[~empty])
            slot, found = self._find(keys)  # (some were in slots just dropped)
        new = np.unique(keys[~found])
        at = np.searchsorted(self._keys, new)
        self._keys = np.insert(self._keys, at, new)
        for name in ("_products", "_star_sum", "_star_sum_squared"):
            setattr(self, name, np.insert(getattr(self, name), at, 0))
        return np.searchsorted(self._keys, keys)

    def _find(self, keys: IntArray) -> tuple[IntArray, npt.NDArray[np.bool_]]:
        """Where each key is or would go, and whether it is there."""
        slot = np.searchsorted(self._keys, keys)
        inside = slot < self._keys.size
        found = np.zeros(keys.size, dtype=np.bool_)
        found[inside] = self._keys[slot[inside]] == keys[inside]
        return slot, found

    def category_groups(self) -> CategoryRatingGroups:
        present = self._products > 0
        keys = self._keys[present]
        return CategoryRatingGroups(
            codes=(keys >> 32) - 1,
            counts=(keys & 0xFFFFFFFF).astype(np.float64),
            products=self._products[present].astype(np.float64),
            star_sum=self._star_sum[present].astype(np.float64),
            star_sum_squared=self._star_sum_squared[present].astype(np.float64),
            square_sum=float(self._square_sum),
        )

    def groups(self) -> RatingGroups:
        return self.category_groups().by_count()


def _distinct_keys(rows: IntArray, n: IntArray) -> tuple[IntArray, IntArray]:
    """The distinct keys (row << 32 | n) of these pairs and each pair's position among
    them: by a table of pairs where it is small (a sort of a million keys costs about
    70 ms), else by np.unique."""
    width = int(n.max()) + 1
    if (int(rows.max()) + 1) * width <= 4 * n.size + 4096:
        dense = rows * width + n
        present = np.bincount(dense) > 0
        cells = np.flatnonzero(present)
        position = (np.cumsum(present) - 1)[dense]
        return ((cells // width) << 32) | (cells % width), position
    distinct, position = np.unique((rows << 32) | n, return_inverse=True)
    return distinct, position.reshape(-1)


def _codes(codes: npt.ArrayLike | None, h: IntArray) -> IntArray:
    """Category codes of the rows of h: −1 (none) where not given or negative."""
    if codes is None:
        return np.full(h.shape[0], -1, dtype=np.int64)
    return np.maximum(np.asarray(codes, dtype=np.int64).reshape(-1), -1)
