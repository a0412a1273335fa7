"""Each product's request-independent score, kept per weights profile: Rank's fast path.

A Rank score is Σ wᵢ·componentᵢ + w_rel·relevance (ranking.blend). Everything but the
relevance term depends only on the product's aggregates, the profile and the prior, so
it is kept as one column indexed by catalogue row (ranking.blend.Quality). Before each
read the column catches up with the catalogue's change log, recomputing only the rows
written since; a call then takes one number per candidate instead of recomputing every
component for it. The values are bit for bit those ``blend`` computes.

A column is rebuilt from every row when the weights version or the prior's fit changes
(a fitted prior is refitted as feedback arrives, see service/app/priors.py) or when the
change log no longer reaches back to it. Time-decayed profiles have no column: their
scores move with the clock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from reviewrank.ranking.blend import Quality, quality
from reviewrank.ranking.profiles import Profile
from reviewrank.service.app.catalogue import Catalogue
from reviewrank.service.app.catalogue_views import ScoringRows
from reviewrank.service.app.priors import FittedPrior, PriorResolver

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
MAX_COLUMNS = 8  # profiles with a column at once (one per profile in use)


@dataclass
class _Column:
    version: int  # of the weights
    fit: FittedPrior | None  # the prior's fit it was computed with (None: fixed prior)
    generation: int  # of the catalogue it reflects
    score: FloatArray  # indexed by catalogue row
    relevance_weight: float


class QualityScores(NamedTuple):  # (one per call: a tuple is quicker to make)
    """The quality scores of the rows asked for, and the weight relevance is added with."""

    score: FloatArray
    relevance_weight: float


class ScoreColumns:
    def __init__(self, catalogue: Catalogue, priors: PriorResolver) -> None:
        self._catalogue = catalogue
        self._priors = priors
        self._lock = threading.Lock()
        self._columns: dict[str, _Column] = {}
        self._building: set[str] = set()

    def gather(
        self, version: int, profile: Profile, idx: IntArray, generation: int
    ) -> QualityScores | None:
        """Quality scores of catalogue rows ``idx``, reflecting at least ``generation``.

        None while another thread rebuilds this profile's column: the caller then scores
        its candidates the direct way rather than wait.
        """
        fit = self._priors.fit_of(profile.prior)
        with self._lock:
            column = self._columns.get(profile.name)
            current = (
                column is not None
                and column.version == version
                and column.fit is fit
                and (column.generation >= generation or self._catch_up(column, profile))
            )
            if current:
                assert column is not None
                return QualityScores(column.score[idx], column.relevance_weight)
            if profile.name in self._building:
                return None
            self._building.add(profile.name)
        try:
            built = self._build(version, profile, fit)
        finally:
            with self._lock:
                self._building.discard(profile.name)
        with self._lock:
            kept = self._columns.get(profile.name)
            same = kept is not None and kept.fit is fit and kept.version == version
            if not same or kept is None or kept.generation < built.generation:
                if len(self._columns) >= MAX_COLUMNS:
                    self._columns.clear()
                self._columns[profile.name] = built
            # It reflects at least `generation`: it was built after that was read.
            return QualityScores(built.score[idx], built.relevance_weight)

    def _build(self, version: int, profile: Profile, fit: FittedPrior | None) -> _Column:
        rows = self._catalogue.changed_rows()
        assert rows is not None  # every row: always available
        result = self._quality(profile, rows, fit)
        return _Column(version, fit, rows.generation, result.score, result.relevance_weight)

    def _quality(self, profile: Profile, rows: ScoringRows, fit: FittedPrior | None) -> Quality:
        prior = self._priors.prior(profile.prior, rows.category_code, fit)
        return quality(rows.evidence, profile, prior)

    def _catch_up(self, column: _Column, profile: Profile) -> bool:
        """Recomputes the rows written since the column's generation (lock held); False
        when the catalogue's change log no longer reaches back that far."""
        rows = self._catalogue.changed_rows(since=column.generation)
        if rows is None:
            return False
        if rows.size > column.score.size:  # new products: room for twice as many
            grown = np.zeros(max(rows.size, 2 * column.score.size), dtype=np.float64)
            grown[: column.score.size] = column.score
            column.score = grown
        if rows.idx.size:
            column.score[rows.idx] = self._quality(profile, rows, column.fit).score
        column.generation = rows.generation
        return True
