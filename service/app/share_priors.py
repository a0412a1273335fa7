"""The share rate's Gamma prior (ranking.shares), fitted from the catalogue per share
half-life, for profiles that weigh shares with ``prior = "auto"``.

A fit is redone when the catalogue changed since it, or a minute passed (rates decay
with the clock, though slowly), and no sooner than ``refresh_seconds`` after it, or ten
times its cost when that is longer (at most a tenth of a core: service/app/priors.py's
rule). A fit under CHEAP_FIT_SECONDS is redone by the call that finds it stale; a
costlier one (a large catalogue: the marginal likelihood is summed over every product at
each step) on the refresher's thread, while calls use the fit they have.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from reviewrank.ranking.profiles import SharesSpec
from reviewrank.ranking.shares import ShareRatePrior, fit_share_prior
from reviewrank.service.app.catalogue import Catalogue, Extra
from reviewrank.service.app.priors import CHEAP_FIT_SECONDS, kept_seconds
from reviewrank.service.app.refresher import Refresher

CLOCK_REFIT_SECONDS = 60.0


@dataclass(frozen=True)
class ShareFit:
    prior: ShareRatePrior
    generation: int  # of the catalogue it was fitted on
    at: float  # time.monotonic() of the fit
    cost: float  # seconds


class SharePriors:
    def __init__(
        self,
        catalogue: Catalogue,
        refresh_seconds: float = 1.0,
        background: Refresher | None = None,
    ) -> None:
        self._catalogue = catalogue
        self._refresh_seconds = refresh_seconds
        self._background = background
        self._lock = threading.Lock()
        self._fits: dict[float, ShareFit] = {}  # by share half-life (seconds)
        self._refitting: set[float] = set()

    def prior(self, spec: SharesSpec, extra: Extra = None) -> ShareRatePrior:
        """The prior rankings with this spec use now: the profile's own, or the fit.
        ``extra``: decayed sums of half-lives the catalogue does not keep (a preview's),
        fitted on at once and not kept."""
        if spec.prior is not None:
            return spec.prior
        half_life = spec.half_life_seconds
        if half_life not in self._catalogue.half_lives:
            _, shares, exposure = self._catalogue.share_exposures(half_life, time.time(), extra)
            return fit_share_prior(shares, exposure)
        return self.fit(half_life).prior

    def fit(self, half_life: float) -> ShareFit:
        """The fit in force for a share half-life the catalogue keeps sums of."""
        with self._lock:
            fit = self._fits.get(half_life)
            if fit is not None and not self._stale(fit):
                return fit
            if fit is not None and fit.cost >= CHEAP_FIT_SECONDS:
                if half_life not in self._refitting:
                    self._refitting.add(half_life)
                    if self._background is None:
                        background = False
                    else:
                        background = self._background.submit(
                            ("share prior", half_life), lambda: self._refit(half_life)
                        )
                    if not background:
                        self._refitting.discard(half_life)
                        return self._refit(half_life, lock_held=True)
                return fit
        return self._refit(half_life)

    def _stale(self, fit: ShareFit) -> bool:
        age = time.monotonic() - fit.at
        if age < kept_seconds(fit.cost, self._refresh_seconds) and fit.cost >= CHEAP_FIT_SECONDS:
            return False
        return fit.generation != self._catalogue.generation or age >= CLOCK_REFIT_SECONDS

    def _refit(self, half_life: float, lock_held: bool = False) -> ShareFit:
        started = time.perf_counter()
        generation, shares, exposure = self._catalogue.share_exposures(half_life, time.time())
        prior = fit_share_prior(shares, exposure)
        fit = ShareFit(prior, generation, time.monotonic(), time.perf_counter() - started)
        if lock_held:
            self._fits[half_life] = fit
            return fit
        with self._lock:
            self._refitting.discard(half_life)
            kept = self._fits.get(half_life)
            if kept is None or kept.generation <= fit.generation:
                self._fits[half_life] = fit
            return self._fits[half_life]
