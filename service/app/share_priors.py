"""The share rate's Gamma prior (ranking.shares) for profiles that weigh shares: fitted
from the catalogue per share half-life and channel weights with ``prior = "auto"``, else
the profile's own; either with the catalogue's reference rate (the rate scoring 0.5).

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

import numpy as np
import numpy.typing as npt

from reviewrank.ranking.profiles import DecayNeed, ShareWeighing
from reviewrank.ranking.shares import ShareRatePrior, fit_share_prior, with_reference
from reviewrank.service.app.catalogue import Catalogue, Extra
from reviewrank.service.app.priors import CHEAP_FIT_SECONDS, kept_seconds
from reviewrank.service.app.refresher import Refresher

CLOCK_REFIT_SECONDS = 60.0
# What a fit is kept by: the share sums read, and the profile's fixed prior (None: fitted).
_Key = tuple[ShareWeighing, ShareRatePrior | None]


def _prior_of(
    fixed: ShareRatePrior | None, shares: npt.NDArray[np.float64], exposure: npt.NDArray[np.float64]
) -> ShareRatePrior:
    """The fixed prior with these products' reference rate, or the fit on them."""
    if fixed is None:
        return fit_share_prior(shares, exposure)
    return with_reference(fixed, shares, exposure)


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
        self._fits: dict[_Key, ShareFit] = {}
        self._refitting: set[_Key] = set()

    def prior(
        self, weighing: ShareWeighing, fixed: ShareRatePrior | None, extra: Extra = None
    ) -> ShareRatePrior:
        """The prior rankings weighing shares so use now: ``fixed`` (the profile's), or
        the fit, with the catalogue's reference rate. ``extra``: decayed sums the
        catalogue does not keep (a preview's), fitted on at once and not kept."""
        if self._catalogue.decay_missing({weighing.half_life: DecayNeed(channels=weighing.names)}):
            _, shares, exposure = self._catalogue.share_exposures(weighing, time.time(), extra)
            return _prior_of(fixed, shares, exposure)
        return self.fit((weighing, fixed)).prior

    def fit(self, key: _Key) -> ShareFit:
        """The fit in force for share sums the catalogue keeps (and a fixed prior). A
        stale fit that was costly is redone on the refresher's thread (without one, by
        this call outside the lock) while the others use it."""
        with self._lock:
            fit = self._fits.get(key)
            if fit is not None and not self._stale(fit):
                return fit
            if fit is not None and fit.cost >= CHEAP_FIT_SECONDS:
                if key in self._refitting:
                    return fit
                self._refitting.add(key)
                if self._background is not None:
                    if not self._background.submit(("share prior", key), lambda: self._refit(key)):
                        self._refitting.discard(key)
                    return fit
        return self._refit(key)

    def _stale(self, fit: ShareFit) -> bool:
        age = time.monotonic() - fit.at
        if age < kept_seconds(fit.cost, self._refresh_seconds) and fit.cost >= CHEAP_FIT_SECONDS:
            return False
        return fit.generation != self._catalogue.generation or age >= CLOCK_REFIT_SECONDS

    def _refit(self, key: _Key) -> ShareFit:
        """A fit of ``key`` now, outside the lock, kept unless a newer one is; the fit in
        force after."""
        started = time.perf_counter()
        sums, fixed = key
        generation, shares, exposure = self._catalogue.share_exposures(sums, time.time())
        prior = _prior_of(fixed, shares, exposure)
        fit = ShareFit(prior, generation, time.monotonic(), time.perf_counter() - started)
        with self._lock:
            self._refitting.discard(key)
            kept = self._fits.get(key)
            if kept is None or kept.generation <= fit.generation:
                self._fits[key] = fit
            return self._fits[key]
