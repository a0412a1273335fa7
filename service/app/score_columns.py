"""Each product's request-independent score, kept per weights profile: Rank's fast path.

A Rank score is Σ wᵢ·componentᵢ + w_rel·relevance (ranking.blend). Everything but the
relevance term depends only on the product's aggregates, the profile and the prior, so
it is kept as one column indexed by catalogue row (ranking.blend.Quality). Before each
read the column catches up with the catalogue's change log, recomputing only the rows
written since; a call then takes one number per candidate instead of recomputing every
component for it. The values are bit for bit those ``blend`` computes.

A column is rebuilt from every row when the weights version or the prior in force
changes (a fitted prior is refitted as feedback arrives, and put in force when it moves
a score: service/app/priors.py) or when the change log no longer reaches back to it.
A column that took long to build (a large catalogue: 20-75 ms of CPU for a million
products) is rebuilt on the refresher's thread (service/app/refresher.py), a part of
the rows at a time; meanwhile calls use the column they have, with the prior it was
computed with (its own rows kept up to date), or, when it cannot be used, score their
candidates the direct way. Time-decayed profiles have no column: their scores move
with the clock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from reviewrank.ranking.blend import Quality, quality
from reviewrank.ranking.profiles import Profile
from reviewrank.service.app.catalogue import Catalogue
from reviewrank.service.app.catalogue_views import ScoringRows
from reviewrank.service.app.priors import FittedPrior, PriorResolver
from reviewrank.service.app.refresher import Refresher, pause

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
MAX_COLUMNS = 8  # profiles with a column at once (one per profile in use)
CHEAP_BUILD_SECONDS = 0.005  # a column that took longer is rebuilt on the refresher's thread
CHUNK_ROWS = 65_536  # rows read and scored at a time there (about 1 ms of CPU)


@dataclass
class _Column:
    version: int  # of the weights
    fit: FittedPrior | None  # the prior's fit it was computed with (None: fixed prior)
    generation: int  # of the catalogue it reflects
    score: FloatArray  # indexed by catalogue row
    relevance_weight: float
    cost: float = 0.0  # seconds it took to build


class QualityScores(NamedTuple):  # (one per call: a tuple is quicker to make)
    """The quality scores of the rows asked for, and the weight relevance is added with."""

    score: FloatArray
    relevance_weight: float


class ScoreColumns:
    def __init__(
        self, catalogue: Catalogue, priors: PriorResolver, refresher: Refresher | None = None
    ) -> None:
        self._catalogue = catalogue
        self._priors = priors
        self._refresher = refresher
        self._lock = threading.Lock()
        self._columns: dict[str, _Column] = {}
        self._building: set[str] = set()

    def gather(
        self, version: int, profile: Profile, idx: IntArray, generation: int
    ) -> QualityScores | None:
        """Quality scores of catalogue rows ``idx``, reflecting at least ``generation``.

        None while this profile's column is being built (or rebuilt, when the one kept
        cannot serve): the caller then scores its candidates the direct way rather than
        wait.
        """
        fit = self._priors.fit_of(profile.prior)
        with self._lock:
            column = self._columns.get(profile.name)
            usable = (
                column is not None
                and column.version == version
                and (column.generation >= generation or self._catch_up(column, profile))
            )
            later = (  # rebuilt on the refresher's thread, as it took long
                self._refresher is not None
                and column is not None
                and column.cost >= CHEAP_BUILD_SECONDS
            )
            if usable:
                assert column is not None
                if column.fit is fit:
                    return QualityScores(column.score[idx], column.relevance_weight)
                if later:  # the prior in force moved: served as it was until rebuilt
                    self._rebuild_later(version, profile)
                    return QualityScores(column.score[idx], column.relevance_weight)
            if later:
                self._rebuild_later(version, profile)
                return None
            if profile.name in self._building:
                return None
            self._building.add(profile.name)
        try:
            built = self._build(version, profile, fit)
        finally:
            with self._lock:
                self._building.discard(profile.name)
        with self._lock:
            self._install(built, profile.name)
            # It reflects at least `generation`: it was built after that was read.
            return QualityScores(built.score[idx], built.relevance_weight)

    def _install(self, built: _Column, name: str) -> None:
        """Keeps ``built`` unless the column kept is newer (lock held)."""
        kept = self._columns.get(name)
        if kept is not None and kept.version > built.version:
            return
        same = kept is not None and kept.fit is built.fit and kept.version == built.version
        if same and kept is not None and kept.generation >= built.generation:
            return
        if kept is None and len(self._columns) >= MAX_COLUMNS:
            self._columns.clear()
        self._columns[name] = built

    def _rebuild_later(self, version: int, profile: Profile) -> None:
        """Has the refresher rebuild this profile's column (lock held)."""
        assert self._refresher is not None

        def rebuild() -> None:
            fit = self._priors.fit_of(profile.prior)  # the one in force by then
            built = self._build(version, profile, fit, CHUNK_ROWS)
            with self._lock:
                # The rows written while it was built, from the generation it started at.
                if self._catch_up(built, profile):
                    self._install(built, profile.name)

        self._refresher.submit(("score column", profile.name, version), rebuild)

    def _build(
        self, version: int, profile: Profile, fit: FittedPrior | None, chunk: int | None = None
    ) -> _Column:
        """The column from every row, read and scored ``chunk`` rows at a time (None: at
        once). Its generation is that of the first part read: rows written later are
        recomputed by catching up from there."""
        started = time.perf_counter()
        weighing = profile.comment_weighing
        first = self._catalogue.rows_between(0, chunk, weighing, profile.integrity)
        parts = [self._quality(profile, first, fit)]
        done = first.idx.size
        while chunk is not None and done < first.size:
            pause()
            rows = self._catalogue.rows_between(
                done, min(done + chunk, first.size), weighing, profile.integrity
            )
            if not rows.idx.size:  # (the catalogue was replaced meanwhile)
                break
            parts.append(self._quality(profile, rows, fit))
            done += rows.idx.size
        score = parts[0].score if len(parts) == 1 else np.concatenate([p.score for p in parts])
        cost = time.perf_counter() - started
        return _Column(version, fit, first.generation, score, parts[0].relevance_weight, cost)

    def _quality(self, profile: Profile, rows: ScoringRows, fit: FittedPrior | None) -> Quality:
        prior = self._priors.prior(profile.prior, rows.category_code, fit)
        return quality(rows.evidence, profile, prior)

    def _catch_up(self, column: _Column, profile: Profile) -> bool:
        """Recomputes the rows written since the column's generation (lock held); False
        when the catalogue's change log no longer reaches back that far."""
        rows = self._catalogue.changed_rows(
            since=column.generation,
            comments=profile.comment_weighing,
            weighed=profile.integrity,
        )
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
