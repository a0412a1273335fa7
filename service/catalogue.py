"""The in-memory mirror of the products table: numpy arrays indexed by ``products.idx``.

The writer thread sets rows after each commit (before acknowledging), so a
read that starts after an acknowledgement sees the write. Readers copy the rows
they need under the lock, then compute without it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ranking.blend import Evidence
from service.decayed import DecayedAggregates
from service.domain import ProductRow, VoteChange
from service.store import ProductTable, VoteTable

IntArray = npt.NDArray[np.int64]
NO_CATEGORY = -1


@dataclass(frozen=True)
class Gathered:
    """The rows of the products asked for, in the order asked (zeros for unknown ones).

    ``evidence`` is what scores use (time-decayed when asked); ``raw`` the plain counts.
    """

    evidence: Evidence
    raw: Evidence
    known: npt.NDArray[np.bool_]
    category_code: npt.NDArray[np.int32]
    category: list[str]


@dataclass(frozen=True)
class Histograms:
    """Every product's star histogram and category: what the prior is fitted on."""

    seq: int
    histogram: IntArray
    category_code: npt.NDArray[np.int32]
    n_categories: int


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy of every product, for whole-catalogue work (Top)."""

    seq: int
    product_ids: list[str]
    evidence: Evidence
    raw: Evidence
    category_code: npt.NDArray[np.int32]
    categories: dict[str, int]


class Catalogue:
    def __init__(self, capacity: int = 1024) -> None:
        self._lock = threading.Lock()
        self._index: dict[str, int] = {}
        self._ids: list[str] = [""]  # idx 0 is never used (SQLite rowids start at 1)
        self._categories: dict[str, int] = {}
        self._category_names: list[str] = []
        self._size = 1
        self._allocate(max(capacity, 2))
        self.seq = 0
        self._decayed: dict[float, DecayedAggregates] = {}

    def _allocate(self, capacity: int) -> None:
        def grow(old: IntArray | None, shape: tuple[int, ...]) -> IntArray:
            new = np.zeros(shape, dtype=np.int64)
            if old is not None:
                new[: old.shape[0]] = old
            return new

        existing = getattr(self, "rating_count", None)
        self.rating_count = grow(existing, (capacity,))
        self.star_sum = grow(getattr(self, "star_sum", None), (capacity,))
        self.histogram = grow(getattr(self, "histogram", None), (capacity, 5))
        self.likes = grow(getattr(self, "likes", None), (capacity,))
        self.dislikes = grow(getattr(self, "dislikes", None), (capacity,))
        codes = np.full(capacity, NO_CATEGORY, dtype=np.int32)
        old_codes = getattr(self, "category_code", None)
        if old_codes is not None:
            codes[: old_codes.shape[0]] = old_codes
        self.category_code = codes

    def __len__(self) -> int:
        return len(self._index)

    def _category(self, name: str) -> int:
        if not name:
            return NO_CATEGORY
        code = self._categories.get(name)
        if code is None:
            code = len(self._category_names)
            self._categories[name] = code
            self._category_names.append(name)
        return code

    def _set(self, idx: int, product_id: str, category: str, values: Sequence[int]) -> None:
        """values: rating_count, star_sum, s1..s5, likes, dislikes."""
        if idx >= self.rating_count.shape[0]:
            self._allocate(max(idx + 1, 2 * self.rating_count.shape[0]))
        if idx >= len(self._ids):
            self._ids.extend([""] * (idx + 1 - len(self._ids)))
        self._ids[idx] = product_id
        self._index[product_id] = idx
        self._size = max(self._size, idx + 1)
        self.rating_count[idx] = values[0]
        self.star_sum[idx] = values[1]
        self.histogram[idx] = values[2:7]
        self.likes[idx] = values[7]
        self.dislikes[idx] = values[8]
        self.category_code[idx] = self._category(category)

    def load(self, table: ProductTable) -> None:
        """Replaces everything with a bulk-loaded products table."""
        with self._lock:
            size = int(table.idx.max()) + 1 if table.idx.size else 1
            self._allocate(max(1024, size))
            self.rating_count[:] = 0
            self.star_sum[:] = 0
            self.histogram[:] = 0
            self.likes[:] = 0
            self.dislikes[:] = 0
            self.category_code[:] = NO_CATEGORY
            self._ids = [""] * size
            self._index = {}
            idx = table.idx
            self.rating_count[idx] = table.rating_count
            self.star_sum[idx] = table.star_sum
            self.histogram[idx] = table.histogram
            self.likes[idx] = table.likes
            self.dislikes[idx] = table.dislikes
            for i, product_id, category in zip(
                idx.tolist(), table.product_ids, table.categories, strict=True
            ):
                self._ids[i] = product_id
                self._index[product_id] = i
                self.category_code[i] = self._category(category)
            self._size = size
            self.seq = table.seq

    def apply(self, rows: Sequence[ProductRow], seq: int, votes: Sequence[VoteChange] = ()) -> None:
        """Sets the committed state of the given products (rows are absolute, not deltas);
        ``votes`` are the vote replacements behind them, for the time-decayed sums."""
        with self._lock:
            for row in rows:
                values = (row.rating_count, row.star_sum, *row.histogram, row.likes, row.dislikes)
                self._set(row.idx, row.product_id, row.category, values)
            for decayed in self._decayed.values():
                decayed.apply(votes)
            self.seq = max(self.seq, seq)

    def enable_decay(self, half_lives: Sequence[float], votes: VoteTable) -> None:
        """Keeps time-decayed sums for these half-lives (seconds), starting from every vote.

        The caller must make sure no write is applied between reading ``votes`` and the end
        of this call: before the writer starts, or on the writer thread between two
        transactions (Writer.run_exclusive). The sums are built before taking the lock, so
        readers are not held up meanwhile.
        """
        built = [
            decayed_from_votes(h, votes, self.rating_count.shape[0])
            for h in half_lives
            if h not in self._decayed
        ]
        with self._lock:
            for decayed in built:
                self._decayed.setdefault(decayed.half_life, decayed)

    @property
    def half_lives(self) -> set[float]:
        return set(self._decayed)

    def _evidence(
        self,
        idx: npt.NDArray[np.int64],
        half_life: float | None,
        now: float,
        extra: DecayedAggregates | None = None,
    ) -> Evidence:
        if half_life is not None:
            decayed = self._decayed.get(half_life)
            if decayed is None and extra is not None and extra.half_life == half_life:
                decayed = extra
            if decayed is None:
                raise KeyError(f"no decayed aggregates for half-life {half_life} s")
            decayed.maybe_rebase(now)
            return decayed.evidence(idx, now)
        return Evidence(
            rating_count=self.rating_count[idx],
            star_sum=self.star_sum[idx],
            likes=self.likes[idx],
            dislikes=self.dislikes[idx],
            histogram=self.histogram[idx],
        )

    def gather(
        self,
        product_ids: Sequence[str],
        half_life: float | None = None,
        now: float = 0.0,
        extra: DecayedAggregates | None = None,
    ) -> Gathered:
        """The products' aggregates (time-decayed to ``now`` when a half-life is given).

        ``extra``: decayed sums of a half-life the catalogue does not keep (a preview's).
        """
        n = len(product_ids)
        with self._lock:
            lookup = self._index.get
            idx = np.fromiter((lookup(p, 0) for p in product_ids), dtype=np.int64, count=n)
            # Row 0 is all zeros, so unknown products gather zeros.
            raw = self._evidence(idx, None, now)
            evidence = raw if half_life is None else self._evidence(idx, half_life, now, extra)
            codes = self.category_code[idx]
            names = self._category_names
            category = [names[c] if c >= 0 else "" for c in codes.tolist()]
        return Gathered(evidence, raw, idx > 0, codes, category)

    def histograms(self) -> Histograms:
        with self._lock:
            size = self._size
            return Histograms(
                seq=self.seq,
                histogram=self.histogram[1:size].copy(),
                category_code=self.category_code[1:size].copy(),
                n_categories=len(self._category_names),
            )

    def snapshot(
        self,
        half_life: float | None = None,
        now: float = 0.0,
        extra: DecayedAggregates | None = None,
    ) -> Snapshot:
        with self._lock:
            size = self._size
            rows = np.arange(1, size, dtype=np.int64)
            raw = self._evidence(rows, None, now)
            evidence = raw if half_life is None else self._evidence(rows, half_life, now, extra)
            return Snapshot(
                seq=self.seq,
                product_ids=self._ids[1:size],
                evidence=evidence,
                raw=raw,
                category_code=self.category_code[1:size].copy(),
                categories=dict(self._categories),
            )


def decayed_from_votes(half_life: float, votes: VoteTable, capacity: int) -> DecayedAggregates:
    """Time-decayed sums of one half-life (seconds) over every vote given."""
    decayed = DecayedAggregates(half_life, capacity)
    decayed.load(votes)
    return decayed
