"""What the catalogue (service/app/catalogue.py) hands its readers: the rows of the
products asked for (Gathered, Lookup), the rows changed since a generation (ScoringRows),
the star histograms priors are fitted on (Histograms), and a consistent copy of every
product (Snapshot) with its ids as a view of the catalogue's list (RowIds)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, overload

import numpy as np
import numpy.typing as npt

from reviewrank.ranking.blend import Evidence

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Gathered:
    """The rows of the products asked for, in the order asked (zeros for unknown ones).

    ``evidence`` is what scores use (time-decayed when asked); ``raw`` the plain counts.
    """

    evidence: Evidence
    raw: Evidence
    known: npt.NDArray[np.bool_]
    category_code: npt.NDArray[np.int32]
    category_names: list[str]  # the catalogue's, indexed by code (append-only)

    @property
    def category(self) -> list[str]:
        names = self.category_names
        return [names[c] if c >= 0 else "" for c in self.category_code.tolist()]


@dataclass(frozen=True)
class Histograms:
    """Every product's star histogram and category: what the prior is fitted on."""

    seq: int  # the catalogue's generation
    histogram: IntArray
    category_code: npt.NDArray[np.int32]
    n_categories: int
    # Every product's likes and dislikes, when asked for (the like share's prior).
    likes: IntArray | None = None
    dislikes: IntArray | None = None


class Lookup(NamedTuple):  # (one per call: a tuple is quicker to make)
    """Rows of the products asked for (0: unknown), looked up at ``generation``."""

    idx: IntArray
    generation: int


@dataclass(frozen=True)
class ScoringRows:
    """Rows of the catalogue as of ``generation``, with what scores are computed from."""

    generation: int
    idx: IntArray
    evidence: Evidence
    category_code: npt.NDArray[np.int32]
    size: int  # rows in use (idx < size); row 0 is the all-zero unknown product
    # When asked for (changed_rows(listing=True)): whether each is listed, and the codes
    # of the other categories the shop lists it in.
    active: npt.NDArray[np.bool_] | None = None
    more: tuple[tuple[int, ...], ...] | None = None


class RowIds(Sequence[str]):
    """The product ids of rows 1, 2, … of a catalogue, item ``i`` being row ``i + 1``'s
    (row 0 is never used): a view of the catalogue's own list rather than a copy.

    Rows are only ever added to that list (a row left empty by a change applied out of
    order may be filled later), so what a view shows does not change otherwise. A copy
    of a million references cost about 12 ms under the catalogue's lock, and, being a new
    container, each collection of the garbage collector that it survived walked all of
    it: pauses of 14 to 110 ms of the whole process (measured with gc.callbacks under
    Top with writes on a million products).
    """

    __slots__ = ("_ids", "_size")

    def __init__(self, ids: list[str], size: int) -> None:
        self._ids = ids
        self._size = size  # rows 1 .. size - 1

    def __len__(self) -> int:
        return self._size - 1

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return self.take(range(*index.indices(len(self))))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("row out of range")
        return self._ids[index + 1]

    def take(self, items: Iterable[int]) -> list[str]:
        """The ids of these items (each in range), at the cost of list indexing."""
        ids = self._ids
        return [ids[i + 1] for i in items]


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy of every product, for whole-catalogue work (Top); the ids are
    a view (RowIds)."""

    seq: int  # the catalogue's generation
    through_seq: int  # every change up to this sequence number is in it
    product_ids: RowIds
    evidence: Evidence
    raw: Evidence
    category_code: npt.NDArray[np.int32]
    categories: dict[str, int]
    active: npt.NDArray[np.bool_]  # False: delisted by the shop (Top leaves it out)
    # category code -> positions of the products the shop also lists in it
    also_in: dict[int, npt.NDArray[np.int64]] = field(default_factory=dict)


class Listing(NamedTuple):
    """What the shop's catalogue says of a product beside its category."""

    inactive: bool
    more_categories: tuple[str, ...]
    display: str  # its display fields as a JSON object ("" for none)
