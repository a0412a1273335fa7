"""Resolves a profile's prior for the products being scored, fitting it from the catalogue.

A fitted prior (``mean``/``strength`` = "auto", see ranking.priors; ``likes_prior`` =
"auto", see ranking.like_prior) is refitted as
feedback arrives: when the catalogue has changed since the last fit, and either the
last fit was cheap (under ``CHEAP_FIT_SECONDS``, so small catalogues are always
current) or ``refresh_seconds`` have passed since it, or ten times the last fit's
cost when that is longer (so that refitting takes at most a tenth of a core).

An expensive refit runs outside the resolver's lock, and while one thread runs it the
others use the fit they have: every Rank takes the fit, and with 50 writes a second on a
million products, Rank used to wait behind a refit every second (asked at 800 calls/s it
served 174, with a p99 of 2.3 s). The marginal-likelihood priors (one level, or
per category) are refitted from sums the catalogue keeps as rows change
(ranking.rating_groups): about 2 ms, and 4 ms per category warm-started (12 ms cold),
on a million products in 28 categories, against 0.1 s from every row; moment and like
priors still read every row.

On a catalogue of EXACT_BELOW products or more, even a cheap refit waits
``refresh_seconds`` after the last (at every write, the refits of the usual prior cost
4 % of a core under 500 writes a second, to no end: see the next paragraph).

A refit is put in force only when it matters: on a catalogue of EXACT_BELOW products or
more, when it would move some product's Bayesian average (or like share) by more than
PRIOR_TOLERANCE (a thousandth of a star; bounds in ranking.prior_shift), and, unless it
moves one by more than PRIOR_URGENT, once the fit in force has been so for
PRIOR_HOLD_SECONDS. Otherwise the fit in force stays, and with it what was computed from
it (Rank's kept scores, service/app/score_columns.py; Top's order, service/app/ranker.py):
on a million products every refit used to have them recomputed (20-150 ms and 0.15-0.9 s
of CPU, every second or two under 50 writes a second) for moves of a millionth of a star.
Each product's own writes reach rankings at once all the same: only the prior waits.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from reviewrank.ranking.blend import Prior, sentiment_prior_of
from reviewrank.ranking.hierarchy import (
    HierarchicalPrior,
    fit_hierarchical_groups,
    fit_hierarchical_prior,
)
from reviewrank.ranking.like_prior import LikePrior, fit_like_prior
from reviewrank.ranking.marginal import fit_marginal_groups, fit_marginal_prior, marginal_mean
from reviewrank.ranking.prior_shift import average_shift, like_share_shift
from reviewrank.ranking.priors import (
    StarPrior,
    expand_category_priors,
    fit_category_priors,
    fit_star_prior,
)
from reviewrank.ranking.profiles import PriorSpec, Profile
from reviewrank.ranking.rating_groups import rating_groups
from reviewrank.ranking.sentiment import fit_sentiment_prior
from reviewrank.service.app.catalogue import Catalogue
from reviewrank.service.app.refresher import Refresher

CHEAP_FIT_SECONDS = 0.005
# Of a core, at most, spent redoing expensive whole-catalogue work after writes: a refit
# here, Top's order in service/app/ranker.py.
COST_SHARE = 0.1
# On catalogues of this many products or more, a refit replaces the prior in force only
# when it moves some product's estimate by more than PRIOR_TOLERANCE (stars of a
# Bayesian average, or a like share's posterior mean); below, every refit does (what
# depends on the prior costs little to redo there).
EXACT_BELOW = 10_000
PRIOR_TOLERANCE = 1e-3
# There, a fit stays in force at least this long, unless a refit moves a score by more
# than PRIOR_URGENT (each change of prior has what depends on it recomputed).
PRIOR_HOLD_SECONDS = 60.0
PRIOR_URGENT = 1e-2
FloatArray = npt.NDArray[np.float64]


def kept_seconds(cost: float, floor: float) -> float:
    """How long whole-catalogue work that took ``cost`` seconds is kept after a change:
    ``floor``, or longer when it is costlier than COST_SHARE of that, so that redoing it
    takes at most COST_SHARE of a core."""
    return max(floor, cost / COST_SHARE)


@dataclass(frozen=True)
class FittedPrior:
    seq: int
    fitted_at: float
    cost: float
    global_prior: StarPrior
    category_means: FloatArray | None
    category_strengths: FloatArray | None
    likes: LikePrior | None = None  # the like share's fitted prior, if the spec asks
    sentiment: StarPrior | None = None  # the comments' fitted prior, if the spec asks
    tiers: HierarchicalPrior | None = None  # the per-category fit, which warm-starts refits


@dataclass(frozen=True)
class _Check:
    """The latest refit of a spec, whether or not it was put in force."""

    seq: int
    at: float
    cost: float


def _with_sentiment(fit: FittedPrior, spec: PriorSpec, catalogue: Catalogue) -> FittedPrior:
    """The fit with the comments' sentiment prior fitted too, if the spec asks (from
    every product's comment sums: ranking.sentiment)."""
    if not spec.sentiment_fitted:
        return fit
    started = time.perf_counter()
    _, counts, sums, squares = catalogue.comment_sums()
    sentiment = fit_sentiment_prior(counts, sums, squares)
    cost = fit.cost + time.perf_counter() - started
    return replace(fit, sentiment=sentiment, cost=cost)


def from_kept_sums(spec: PriorSpec) -> bool:
    """Whether the spec is fitted from the sums the catalogue keeps (the default prior:
    by marginal likelihood, for the catalogue or per category, like share not fitted)."""
    return spec.stars_fitted and spec.estimator == "marginal" and not spec.likes_fitted


def _as_asked(spec: PriorSpec, fitted: StarPrior) -> StarPrior:
    """The fit, with the mean or strength the spec fixes in place of the fitted one."""
    return StarPrior(
        mean=fitted.mean if spec.mean is None else spec.mean,
        strength=fitted.strength if spec.strength is None else spec.strength,
    )


def _category_as_asked(
    spec: PriorSpec, means: FloatArray, strengths: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Per-category fits, with the mean or strength the spec fixes in place of the
    fitted ones."""
    if spec.mean is not None:
        means = np.full_like(means, spec.mean)
    if spec.strength is not None:
        strengths = np.full_like(strengths, spec.strength)
    return means, strengths


def prior_shift(kept: FittedPrior, refit: FittedPrior) -> float:
    """The most a product's Bayesian average or like share moves if ``refit`` replaces
    ``kept`` (ranking.prior_shift)."""
    k, r = kept.global_prior, refit.global_prior
    shift = average_shift(k.mean, k.strength, r.mean, r.strength)
    if (kept.category_means is None) != (refit.category_means is None):
        return float("inf")
    if kept.category_means is not None and refit.category_means is not None:
        assert kept.category_strengths is not None and refit.category_strengths is not None
        shift = max(
            shift,
            average_shift(
                kept.category_means,
                kept.category_strengths,
                refit.category_means,
                refit.category_strengths,
            ),
        )
    if (kept.likes is None) != (refit.likes is None):
        return float("inf")
    if kept.likes is not None and refit.likes is not None:
        shift = max(shift, like_share_shift(*kept.likes.parameters, *refit.likes.parameters))
    if (kept.sentiment is None) != (refit.sentiment is None):
        return float("inf")
    if kept.sentiment is not None and refit.sentiment is not None:
        k, r = kept.sentiment, refit.sentiment
        shift = max(shift, average_shift(k.mean, k.strength, r.mean, r.strength))
    return shift


def prior_source(spec: PriorSpec) -> str:
    """How the prior was obtained: fixed, the catalogue's mean, or empirical Bayes; and
    "+likes" ("+sentiment") when the like share's (the comments') prior is fitted too."""
    likes = ("+likes" if spec.likes_fitted else "") + (
        "+sentiment" if spec.sentiment_fitted else ""
    )
    if not spec.stars_fitted:
        return "fixed" + likes
    source = "auto" if spec.strength is None else "catalogue"
    marginal = "/marginal" if spec.estimator == "marginal" else ""
    return source + marginal + ("/category" if spec.per_category else "") + likes


class PriorResolver:
    def __init__(
        self,
        catalogue: Catalogue,
        refresh_seconds: float = 1.0,
        background: Refresher | None = None,
    ) -> None:
        """``background``: where refits of a large catalogue's prior run (see fitted)."""
        self._catalogue = catalogue
        self._refresh_seconds = refresh_seconds
        self._background = background
        self._lock = threading.Lock()
        self._fits: dict[PriorSpec, FittedPrior] = {}  # in force
        self._checked: dict[PriorSpec, _Check] = {}  # the latest refit
        self._refitting: set[PriorSpec] = set()  # expensive refits under way

    def _fit(self, spec: PriorSpec, previous: FittedPrior | None) -> FittedPrior:
        """A fit of ``spec`` now; ``previous`` (the fit in force) warm-starts the like and
        the per-category fits."""
        return _with_sentiment(self._fit_stars(spec, previous), spec, self._catalogue)

    def _fit_stars(self, spec: PriorSpec, previous: FittedPrior | None) -> FittedPrior:
        """A fit of the stars' (and the like share's) prior of ``spec``."""
        if not (spec.stars_fitted or spec.likes_fitted):  # the sentiment's only
            assert spec.mean is not None and spec.strength is not None
            fixed = StarPrior(spec.mean, spec.strength)
            return FittedPrior(self._catalogue.generation, time.monotonic(), 0.0, fixed, None, None)
        if from_kept_sums(spec) and spec.per_category:
            return self._fit_tiers(spec, previous)
        if from_kept_sums(spec):
            started = time.perf_counter()
            seq, groups = self._catalogue.rating_groups()
            if spec.strength is None:
                global_prior = _as_asked(spec, fit_marginal_groups(groups))
            else:  # only C fitted: the best C at that strength
                global_prior = StarPrior(marginal_mean(groups, spec.strength), spec.strength)
            cost = time.perf_counter() - started
            return FittedPrior(seq, time.monotonic(), cost, global_prior, None, None)
        data = self._catalogue.histograms(likes=spec.likes_fitted)
        started = time.perf_counter()
        hierarchy = None
        if spec.stars_fitted and spec.per_category and spec.estimator == "marginal":
            hierarchy = fit_hierarchical_prior(
                data.histogram, data.category_code, data.n_categories
            )
            global_prior = _as_asked(spec, hierarchy.catalogue)
        elif spec.stars_fitted and spec.estimator == "marginal" and spec.strength is not None:
            mean = marginal_mean(rating_groups(data.histogram), spec.strength)
            global_prior = StarPrior(mean, spec.strength)
        elif spec.stars_fitted:
            fit = fit_marginal_prior if spec.estimator == "marginal" else fit_star_prior
            global_prior = _as_asked(spec, fit(data.histogram))
        else:  # only the like (or the sentiment) prior is fitted
            assert spec.mean is not None and spec.strength is not None
            global_prior = StarPrior(spec.mean, spec.strength)
        likes = None
        if data.likes is not None and data.dislikes is not None:
            start = previous.likes if previous is not None else None
            likes = fit_like_prior(data.likes, data.dislikes, start)
        means = strengths = None
        if hierarchy is not None:
            means, strengths = hierarchy.means, hierarchy.strengths
        elif spec.per_category:
            means, strengths = fit_category_priors(
                data.histogram,
                data.category_code,
                data.n_categories,
                global_prior,
                min_ratings=spec.min_category_ratings,
                min_products=spec.min_category_products,
            )
        if means is not None and strengths is not None:
            means, strengths = _category_as_asked(spec, means, strengths)
        cost = time.perf_counter() - started
        return FittedPrior(data.seq, time.monotonic(), cost, global_prior, means, strengths, likes)

    def _fit_tiers(self, spec: PriorSpec, previous: FittedPrior | None) -> FittedPrior:
        """The per-category prior from the sums the catalogue keeps, warm-started from
        ``previous``."""
        started = time.perf_counter()
        seq, pairs, n_categories = self._catalogue.category_rating_groups()
        start = previous.tiers if previous is not None else None
        tiers = fit_hierarchical_groups(pairs, n_categories, start)
        means, strengths = _category_as_asked(spec, tiers.means, tiers.strengths)
        cost = time.perf_counter() - started
        global_prior = _as_asked(spec, tiers.catalogue)
        return FittedPrior(seq, time.monotonic(), cost, global_prior, means, strengths, tiers=tiers)

    def _stale(self, check: _Check) -> bool:
        if check.seq == self._catalogue.generation:
            return False
        if check.cost < CHEAP_FIT_SECONDS and len(self._catalogue) < EXACT_BELOW:
            return True  # (on a large catalogue a refit waits: see below)
        return time.monotonic() - check.at >= kept_seconds(check.cost, self._refresh_seconds)

    def _adopt(self, spec: PriorSpec, refit: FittedPrior) -> FittedPrior:
        """Records ``refit`` and puts it in force if it matters (see the module
        docstring); the fit in force after (lock held)."""
        self._checked[spec] = _Check(refit.seq, refit.fitted_at, refit.cost)
        kept = self._fits.get(spec)
        if kept is None or len(self._catalogue) < EXACT_BELOW:
            self._fits[spec] = refit
            return refit
        shift = prior_shift(kept, refit)
        held = refit.fitted_at - kept.fitted_at < PRIOR_HOLD_SECONDS
        if shift > PRIOR_URGENT or (shift > PRIOR_TOLERANCE and not held):
            self._fits[spec] = kept = refit
        return kept

    def fitted(self, spec: PriorSpec) -> FittedPrior:
        """The fit in force of a fitted spec, refitting it if it is stale (see the module
        docstring: an expensive refit does not hold the other callers). On a catalogue of
        EXACT_BELOW products or more, with a ``background`` given, a stale fit's refit
        runs there and the caller gets the fit in force: even a cheap refit (a few
        milliseconds with Python's lock held, per-category) held every call waiting for
        the prior."""
        with self._lock:
            fit = self._fits.get(spec)
            check = self._checked.get(spec)
            if fit is not None and check is not None and not self._stale(check):
                return fit
            if (
                fit is not None
                and check is not None
                and self._background is not None
                and len(self._catalogue) >= EXACT_BELOW
            ):
                if spec not in self._refitting:
                    self._refitting.add(spec)
                    if not self._background.submit(("prior", spec), lambda: self._refit(spec, fit)):
                        self._refitting.discard(spec)
                return fit
            if fit is None or check is None or check.cost < CHEAP_FIT_SECONDS:
                # The first fit, or a cheap one: everyone waits (briefly).
                return self._adopt(spec, self._fit(spec, fit))
            if spec in self._refitting:
                return fit
            self._refitting.add(spec)
        return self._refit(spec, fit)

    def _refit(self, spec: PriorSpec, fit: FittedPrior) -> FittedPrior:
        """A refit of ``spec`` outside the lock (the caller marked it refitting), put in
        force if it matters and not older than the latest; the fit in force after."""
        try:
            refit = self._fit(spec, fit)
            with self._lock:
                check = self._checked.get(spec)
                if check is None or check.seq <= refit.seq:
                    return self._adopt(spec, refit)
                return self._fits[spec]
        finally:
            with self._lock:
                self._refitting.discard(spec)

    def in_force(self, spec: PriorSpec) -> StarPrior:
        """The global prior that rankings with this spec would use now (refitted when
        stale, as for a ranking): what operators see in metrics and the status."""
        if not spec.stars_fitted:
            assert spec.mean is not None and spec.strength is not None
            return StarPrior(mean=spec.mean, strength=spec.strength)
        return self.fitted(spec).global_prior

    def likes_in_force(self, spec: PriorSpec, fixed: tuple[float, float]) -> tuple[float, float]:
        """The like share's Beta(a, b) that rankings with this spec use now: the fit (when
        ``likes_prior`` is "auto"), else the profile's ``fixed`` one."""
        if not spec.likes_fitted:
            return fixed
        likes = self.fitted(spec).likes
        return fixed if likes is None else likes.parameters

    def sentiment_in_force(self, profile: Profile) -> StarPrior:
        """The comments' sentiment prior that rankings with this profile use now."""
        fit = self.fit_of(profile.prior)
        fitted = None if fit is None else fit.sentiment
        return sentiment_prior_of(profile, Prior(0.0, 0.0, "", sentiment=fitted))

    def fit_of(self, spec: PriorSpec) -> FittedPrior | None:
        """The fit rankings with this spec use now; None for a fixed prior."""
        return self.fitted(spec) if spec.fitted else None

    def prior(
        self,
        spec: PriorSpec,
        category_code: npt.NDArray[np.int32],
        fit: FittedPrior | None = None,
    ) -> Prior:
        """The prior of each product whose category codes are given (from ``fit`` when
        given, else from the current fit)."""
        source = prior_source(spec)
        if not spec.fitted:
            assert spec.mean is not None and spec.strength is not None
            return Prior(spec.mean, spec.strength, source)
        fit = fit or self.fitted(spec)
        likes = None if fit.likes is None else fit.likes.parameters
        if fit.category_means is None or fit.category_strengths is None:
            return Prior(
                fit.global_prior.mean, fit.global_prior.strength, source, likes,
                sentiment=fit.sentiment,
            )  # fmt: skip
        means, strengths = expand_category_priors(
            category_code, fit.category_means, fit.category_strengths, fit.global_prior
        )
        return Prior(means, strengths, source, likes, sentiment=fit.sentiment)
