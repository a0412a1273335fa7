"""Rank's use case in plain values: the query the edge hands the Ranker, and its result.

Nothing of the wire is here: ids as strings (and, when the edge has them at hand, their
UTF-8 bytes as plain arrays, which make a lookup in a large catalogue quicker:
service/app/id_index.py), relevances as a float array; the result says where each ranked
candidate stands in the query rather than repeating its id, so that the edge builds the
response from what it already holds (service/api/wire/results.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from reviewrank.service.app.explain import Explanation
from reviewrank.service.app.id_index import EncodedIds

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class RankQuery(NamedTuple):  # (immutable; one per call: a tuple is quicker to make)
    """Candidates to rank, valid (distinct ids, finite relevances), and how to rank them.

    ``limit`` 0: every candidate. ``profile`` "": the user's share of the traffic split,
    else the default. ``min_seq``: the order reflects every change up to it (the caller
    waits for it: Application.wait_for_seq). ``id_bytes``: the ids' UTF-8 bytes, if at
    hand."""

    product_ids: Sequence[str]
    relevance: FloatArray
    limit: int = 0
    profile: str = ""
    explain: bool = False
    user_id: str = ""
    min_seq: int = 0
    id_bytes: EncodedIds | None = None


class RankResult(NamedTuple):  # (one per call: a tuple is quicker to make)
    """The candidates best first, as their positions in the query, with their scores and
    (when asked) their explanations."""

    positions: IntArray
    scores: FloatArray
    explanations: list[Explanation] | None
    weights_version: int
    profile: str

    def product_ids(self, query: RankQuery) -> list[str]:
        """The ranked candidates' ids, best first."""
        ids = query.product_ids
        return [ids[i] for i in self.positions.tolist()]
