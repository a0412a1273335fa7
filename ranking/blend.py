"""Blending components into one score, and the order that follows from it.

Each component is normalised to [0, 1]:

* ``bayesian_average``: (B − 1) / 4, B the Bayesian average on the 1–5 scale;
* ``wilson``: the Wilson lower bound of likes / (likes + dislikes), already in [0, 1];
* ``relevance``: the search engine's score, min–max scaled within the request
  (all equal → 1 for all, so it cannot reorder anything);
* ``star_lower_bound``: the Dirichlet lower bound of the mean stars (ranking.stars), as
  (bound − 1) / 4;
* ``beta_mean`` and ``beta_lower_bound``: the Beta posterior mean and lower credible
  bound of the like share (ranking.beta);
* ``shares``: the lower bound q of the time-decayed share rate under its Gamma
  posterior, as q / (q + R), R the catalogue's reference rate (ranking.shares);
* ``sentiment``: the Bayesian average of the comments' sentiment scores, (C·m + Σ
  scores) / (m + n) in [−1, 1], as (average + 1) / 2 (ranking.sentiment);
* ``polls``: the product's Bradley–Terry strength γ fitted from every poll vote with a
  Gamma prior of mode 1, as γ / (γ + 1): the chance of being chosen over a product no
  poll showed (ranking.polls).

score = Σ wᵢ · normalisedᵢ with Σ wᵢ = 1, so the score lies in [0, 1]. A
component that is unavailable (no relevance in a Top request, no share or comment sums
in the evidence) is dropped and the remaining weights are rescaled to sum to 1.

Order: score descending, then more evidence (ratings + likes + dislikes), then
the position the caller sent the candidate in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from reviewrank.ranking.beta import beta_lower_bound, beta_posterior_mean
from reviewrank.ranking.polls import poll_score
from reviewrank.ranking.priors import StarPrior
from reviewrank.ranking.profiles import Profile
from reviewrank.ranking.scores import bayesian_average, mean_stars, wilson_lower_bound
from reviewrank.ranking.sentiment import (
    DEFAULT_SENTIMENT_PRIOR,
    normalise_sentiment,
    sentiment_average,
)
from reviewrank.ranking.shares import (
    DEFAULT_SHARE_PRIOR,
    ShareRatePrior,
    rate_lower_bound,
    share_score,
)
from reviewrank.ranking.stars import dirichlet_star_bound, normalise_stars

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
# Counts are integers, or floats once votes are weighted by time decay.
Counts = npt.NDArray[np.int64] | npt.NDArray[np.float64]


@dataclass(frozen=True)
class Evidence:
    """Aggregates of the products being scored, one element (row) per product."""

    rating_count: Counts
    star_sum: Counts
    likes: Counts
    dislikes: Counts
    histogram: Counts  # shape (n, 5): number of 1..5 star ratings
    # Time-decayed shares and exposure in days (ranking.shares), when the profile weighs
    # shares; None otherwise.
    shares: FloatArray | None = None
    exposure: FloatArray | None = None
    # Comments in force and the sum of their scores (in [−1, 1] each), when the profile
    # weighs sentiment; None otherwise.
    comments: Counts | None = None
    sentiment_sum: FloatArray | None = None
    # Poll strengths (ranking.polls; 1 for a product no poll showed), and the poll votes
    # that showed and that chose each product, when known.
    poll_strength: FloatArray | None = None
    polls_shown: Counts | None = None
    polls_won: Counts | None = None

    @property
    def amount(self) -> Counts:
        """How much feedback backs each product: ratings + likes + dislikes."""
        total: Counts = self.rating_count + self.likes + self.dislikes
        return total


@dataclass(frozen=True)
class Prior:
    """The prior of the Bayesian average: mean C and strength m (scalars or per product);
    and the like share's Beta(α, β) when fitted (None: the profile's likes_prior)."""

    mean: float | FloatArray
    strength: float | FloatArray
    source: str
    likes: tuple[float, float] | None = None
    shares: ShareRatePrior | None = None  # the share rate's (None: the profile's or default)
    sentiment: StarPrior | None = None  # the comments' (None: the profile's or default)


@dataclass(frozen=True)
class Component:
    name: str
    weight: float
    value: FloatArray
    normalized: FloatArray

    @property
    def contribution(self) -> FloatArray:
        return self.weight * self.normalized


@dataclass(frozen=True)
class Breakdown:
    """Every part of the score of each product."""

    score: FloatArray
    stars_mean: FloatArray
    bayesian_average: FloatArray
    wilson_lower_bound: FloatArray
    relevance: FloatArray | None
    relevance_normalized: FloatArray | None
    components: tuple[Component, ...]


def normalize_relevance(relevance: npt.ArrayLike) -> FloatArray:
    """Min–max scaling to [0, 1]; 1 everywhere when all values are equal.

    Finite values always give finite results in [0, 1], in the same order: when the
    spread high − low overflows (1e308 and −1e308), the halves are scaled instead,
    (r/2 − low/2) / (high/2 − low/2), whose every difference is finite. Only then, so
    that the usual case stays exact (halving loses the last bit of subnormal values)."""
    r = np.asarray(relevance, dtype=np.float64)
    if r.size == 0:
        return r.copy()
    low, high = float(r.min()), float(r.max())
    if high <= low:
        return np.ones_like(r)
    spread = high - low
    if math.isfinite(spread):
        scaled: FloatArray = (r - low) / spread
        return scaled
    half_low = low / 2.0
    halved: FloatArray = (r / 2.0 - half_low) / (high / 2.0 - half_low)
    return halved


def effective_weights(weights: Mapping[str, float], available: set[str]) -> dict[str, float]:
    """The profile's weights restricted to available components, rescaled to sum to 1."""
    kept = {name: w for name, w in weights.items() if name in available and w > 0}
    total = sum(kept.values())
    return {name: w / total for name, w in kept.items()} if total > 0 else {}


def _values(
    evidence: Evidence, profile: Profile, prior: Prior
) -> tuple[dict[str, tuple[FloatArray, FloatArray]], FloatArray, FloatArray]:
    """Every wanted component but relevance, as (value, normalised), in blending order;
    and the Bayesian average and Wilson bound (explanations show them whatever the weights).
    """
    bayes = bayesian_average(evidence.star_sum, evidence.rating_count, prior.mean, prior.strength)
    wilson = wilson_lower_bound(
        evidence.likes, evidence.likes + evidence.dislikes, profile.confidence
    )
    values: dict[str, tuple[FloatArray, FloatArray]] = {
        "bayesian_average": (bayes, normalise_stars(bayes)),
        "wilson": (wilson, wilson),
    }
    wanted = {name for name, weight in profile.weights.items() if weight > 0}
    if "star_lower_bound" in wanted:
        bound = dirichlet_star_bound(
            evidence.histogram, profile.confidence, profile.stars_pseudo_count
        )
        values["star_lower_bound"] = (bound, normalise_stars(bound))
    alpha, beta = profile.likes_prior if prior.likes is None else prior.likes
    if "beta_mean" in wanted:
        mean = beta_posterior_mean(evidence.likes, evidence.dislikes, alpha, beta)
        values["beta_mean"] = (mean, mean)
    if "beta_lower_bound" in wanted:
        low = beta_lower_bound(evidence.likes, evidence.dislikes, profile.confidence, alpha, beta)
        values["beta_lower_bound"] = (low, low)
    if "shares" in wanted and evidence.shares is not None and evidence.exposure is not None:
        share_prior = share_prior_of(profile, prior)
        k, e, c = evidence.shares, evidence.exposure, profile.confidence
        bound = rate_lower_bound(k, e, share_prior, c)
        values["shares"] = (bound, share_score(k, e, share_prior, c))
    if "sentiment" in wanted and evidence.comments is not None:
        said = sentiment_prior_of(profile, prior)
        sums = evidence.sentiment_sum
        assert sums is not None
        average = sentiment_average(evidence.comments, sums, said)
        values["sentiment"] = (average, normalise_sentiment(average))
    if "polls" in wanted and evidence.poll_strength is not None:
        strength = evidence.poll_strength
        values["polls"] = (strength, poll_score(strength))
    return values, bayes, wilson


def sentiment_prior_of(profile: Profile, prior: Prior) -> StarPrior:
    """The comments' sentiment prior in force: the fitted one, else the profile's, else
    the default (neutral)."""
    return prior.sentiment or profile.sentiment.prior or DEFAULT_SENTIMENT_PRIOR


def share_prior_of(profile: Profile, prior: Prior) -> ShareRatePrior:
    """The share rate's prior in force: the fitted one, else the profile's, else the
    default."""
    return prior.shares or profile.shares.prior or DEFAULT_SHARE_PRIOR


def _components(
    values: dict[str, tuple[FloatArray, FloatArray]], weights: Mapping[str, float]
) -> tuple[Component, ...]:
    """The weighted components, in blending order."""
    return tuple(
        Component(name, weights[name], *values[name]) for name in values if name in weights
    )


def _weighted_sum(components: tuple[Component, ...], shape: tuple[int, ...]) -> FloatArray:
    """Σ wᵢ · normalisedᵢ, added in the components' order (relevance, when present, last)."""
    score = np.zeros(shape, dtype=np.float64)
    for component in components:
        score += component.contribution
    return score


def blend(
    evidence: Evidence,
    profile: Profile,
    prior: Prior,
    relevance: npt.ArrayLike | None = None,
) -> Breakdown:
    """Scores products: weighted sum of normalised components (see the module docstring)."""
    values, bayes, wilson = _values(evidence, profile, prior)
    raw_relevance: FloatArray | None = None
    relevance_normalized: FloatArray | None = None
    if relevance is not None:
        raw_relevance = np.asarray(relevance, dtype=np.float64)
        relevance_normalized = normalize_relevance(raw_relevance)
        values["relevance"] = (raw_relevance, relevance_normalized)
    components = _components(values, effective_weights(profile.weights, set(values)))
    return Breakdown(
        score=_weighted_sum(components, bayes.shape),
        stars_mean=mean_stars(evidence.star_sum, evidence.rating_count),
        bayesian_average=bayes,
        wilson_lower_bound=wilson,
        relevance=raw_relevance,
        relevance_normalized=relevance_normalized,
        components=components,
    )


@dataclass(frozen=True)
class Quality:
    """The part of each product's score that does not depend on the request: the weighted
    sum of every component but relevance, weighted as when relevance is sent.

    ``with_relevance(score[rows], relevance_weight, r)`` equals
    ``blend(evidence, profile, prior, r).score[rows]`` bit for bit (relevance is added
    last in both), so a service can keep ``score`` per product and add only the
    request's relevance at query time.
    """

    score: FloatArray
    relevance_weight: float  # 0 when the profile does not weigh relevance


def with_relevance(
    quality_score: FloatArray, relevance_weight: float, relevance: npt.ArrayLike
) -> FloatArray:
    """The full scores of products of these quality scores, given the request's relevance."""
    if not relevance_weight:
        return quality_score
    total: FloatArray = quality_score + relevance_weight * normalize_relevance(relevance)
    return total


def quality(evidence: Evidence, profile: Profile, prior: Prior) -> Quality:
    """The request-independent part of ``blend``'s score (see Quality)."""
    values, bayes, _ = _values(evidence, profile, prior)
    weights = effective_weights(profile.weights, {*values, "relevance"})
    components = _components(values, weights)
    return Quality(_weighted_sum(components, bayes.shape), weights.get("relevance", 0.0))


def order_if_no_ties(score: FloatArray) -> IntArray | None:
    """Indices by descending score when no two scores are equal (usually the case: one
    sort instead of three keys); None when some are, and the tie-breaks decide."""
    # With distinct scores the ascending order reversed is the descending one.
    order: IntArray = np.argsort(score)[::-1].astype(np.int64, copy=False)
    ranked = score[order]
    if ranked.size and ranked[0] != ranked[0]:
        # A NaN (argsort puts them last, so first once reversed): the three keys put it
        # last instead, so that a score that is not a number never ranks first.
        return None
    if np.count_nonzero(ranked[1:] == ranked[:-1]):  # (0.0 and -0.0 are equal too)
        return None
    return order


# From this many scores (a whole catalogue), ties are taken for granted: products with
# the same feedback, or none, share a score. A million synthetic products: 94 % tie.
TIES_EXPECTED_FROM = 10_000


def rank_order(score: npt.ArrayLike, amount: npt.ArrayLike) -> IntArray:
    """Indices best first: higher score, then more evidence, then earlier position.

    Below TIES_EXPECTED_FROM scores, one sort by score when no two are equal; from there,
    the three-key sort at once (on a million synthetic products 0.12 s instead of 0.24:
    the single sort only found the ties)."""
    s = np.asarray(score, dtype=np.float64)
    if s.size >= TIES_EXPECTED_FROM:
        return tie_break_order(s, amount)
    order = order_if_no_ties(s)
    return tie_break_order(s, amount) if order is None else order


def tie_break_order(score: npt.ArrayLike, amount: npt.ArrayLike) -> IntArray:
    """rank_order by its three keys, when some scores are equal (or one is NaN: np.lexsort
    sorts NaN after every number, so −NaN, like NaN, comes last)."""
    s = np.asarray(score, dtype=np.float64)
    a = np.asarray(amount, dtype=np.float64)
    position = np.arange(s.size)
    # np.lexsort sorts by the last key first.
    return np.lexsort((position, -a, -s)).astype(np.int64)
