"""Offline evidence for the social signals beyond stars (issue 22): comment sentiment on
the reviews' texts, and poll strengths on polls simulated from the reviews' stars.

Sentiment (``evaluate_sentiment``): each review's text scored by a lexicon analyzer
stands for a comment on its product.

* Agreement: Spearman's ρ of each review's sentiment with its own stars.
* Prediction: for each kept fraction f and each random split, a random f of the
  reviews is kept (the comments and stars seen so far) and the rest hidden (the future
  stars). Every predictor sees only the kept reviews and predicts each product's hidden
  mean stars; the error is the RMSE per hidden review (weights: hidden counts) over the
  products with a hidden review. ``prior alone``: the kept stars' mean for every
  product. ``sentiment alone``: the kept comments only, the stars never seen per
  product: the product's Bayesian average of sentiment (ranking.sentiment, prior fitted
  on the kept comments) mapped to stars by the least-squares line of the kept reviews'
  stars on their own sentiment (fitted on kept data only, so nothing hidden leaks).
  ``stars, Bayesian average``: the kept stars with the marginal-likelihood prior, the
  service's estimator, for scale. Reported as RMSE and as the ratio to the prior alone
  (below 1: the predictor beats the prior).

Polls (``evaluate_polls``): products with at least MIN_TRUTH_REVIEWS reviews get a true
strength exp(SCALE · (mean stars − their average)); each simulated poll shows 2 (or,
one in four, 3 or 4) products drawn at random and its voter picks one with the
Bradley–Terry/Luce probability. As polls accumulate, ranking.polls fits the strengths
(warm-started from the previous fit: the incremental update the service runs), and
Kendall's τ_b of the fitted strengths against the true ones is reported over all those
products (those no poll has shown yet tie at the prior), for a few prior strengths b,
with the share of the fitted top 20 that rest on a single poll (the regularisation's
job: one won poll should not top the list).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import spearmanr

from reviewrank.ranking.marginal import fit_marginal_prior
from reviewrank.ranking.polls import PollPrior, PollVotes, checked_votes, poll_fit
from reviewrank.ranking.quality import kendall_tau, weighted_rmse
from reviewrank.ranking.scores import bayesian_average
from reviewrank.ranking.sentiment import fit_sentiment_prior, sentiment_average

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

PRIOR_ALONE = "prior alone (kept mean stars)"
SENTIMENT_ALONE = "comment sentiment alone"
STARS_BAYES = "stars, Bayesian average (for scale)"
SENTIMENT_FRACTIONS: tuple[float, ...] = (0.05, 0.10, 0.30)
SENTIMENT_SPLITS = 20

MIN_TRUTH_REVIEWS = 5
SCALE = 1.0  # log-strength per star of true mean: a star better wins a pair 73 % of the time
POLL_COUNTS: tuple[int, ...] = (100, 300, 1_000, 3_000, 10_000, 30_000)
POLL_PRIORS: tuple[float, ...] = (0.5, 2.0, 8.0)
TOP = 20


@dataclass(frozen=True)
class SentimentRow:
    fraction: float
    splits: int
    rmse: dict[str, float]  # predictor -> mean RMSE over the splits
    ratio: dict[str, float]  # predictor -> mean RMSE / the prior alone's
    strengths: tuple[float, float]  # median fitted sentiment prior (C, m)


@dataclass(frozen=True)
class SentimentReport:
    reviews: int
    with_text: int
    spearman: float  # review sentiment against its stars
    rows: list[SentimentRow]


def _sums(index: IntArray, values: FloatArray, n: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    count = np.bincount(index, minlength=n).astype(np.float64)
    total = np.bincount(index, weights=values, minlength=n).astype(np.float64)
    square = np.bincount(index, weights=values * values, minlength=n).astype(np.float64)
    return count, total, square


def evaluate_sentiment(
    product_index: npt.ArrayLike,
    stars: npt.ArrayLike,
    sentiment: npt.ArrayLike,
    has_text: npt.ArrayLike,
    n_products: int,
    fractions: Sequence[float] = SENTIMENT_FRACTIONS,
    splits: int = SENTIMENT_SPLITS,
    seed: int = 0,
) -> SentimentReport:
    """The agreement and prediction figures of the module docstring. Reviews without a
    text (``has_text`` False) count as stars only: no comment is made of them."""
    index = np.asarray(product_index, dtype=np.int64)
    y = np.asarray(stars, dtype=np.float64)
    score = np.asarray(sentiment, dtype=np.float64)
    text = np.asarray(has_text, dtype=np.bool_)
    if not (index.shape == y.shape == score.shape == text.shape):
        raise ValueError("product_index, stars, sentiment and has_text must have one shape")
    rho = float(spearmanr(score[text], y[text]).statistic) if text.sum() > 2 else math.nan
    rng = np.random.default_rng(seed)
    rows = []
    for fraction in fractions:
        errors: dict[str, list[float]] = {PRIOR_ALONE: [], SENTIMENT_ALONE: [], STARS_BAYES: []}
        fitted: list[tuple[float, float]] = []
        for _ in range(splits):
            kept = rng.random(index.size) < fraction
            hidden = ~kept
            h_count, h_sum, _ = _sums(index[hidden], y[hidden], n_products)
            target = np.divide(h_sum, h_count, out=np.zeros(n_products), where=h_count > 0)
            cells = index[kept] * 5 + (y[kept].astype(np.int64) - 1)
            histogram = np.bincount(cells, minlength=n_products * 5).reshape(n_products, 5)
            k_count, k_sum = histogram.sum(axis=1), histogram @ np.arange(1.0, 6.0)
            catalogue_mean = float(k_sum.sum() / max(k_count.sum(), 1.0))
            commented = kept & text
            c_count, c_sum, c_square = _sums(index[commented], score[commented], n_products)
            prior = fit_sentiment_prior(c_count, c_sum, c_square)
            fitted.append((prior.mean, prior.strength))
            slope, intercept = np.polyfit(score[commented], y[commented], 1)
            by_sentiment = intercept + slope * sentiment_average(c_count, c_sum, prior)
            star_prior = fit_marginal_prior(histogram)
            by_stars = bayesian_average(k_sum, k_count, star_prior.mean, star_prior.strength)
            for name, estimate in (
                (PRIOR_ALONE, np.full(n_products, catalogue_mean)),
                (SENTIMENT_ALONE, by_sentiment),
                (STARS_BAYES, by_stars),
            ):
                errors[name].append(weighted_rmse(estimate, target, h_count))
        means = {name: float(np.mean(values)) for name, values in errors.items()}
        rows.append(
            SentimentRow(
                fraction=fraction,
                splits=splits,
                rmse=means,
                ratio={name: value / means[PRIOR_ALONE] for name, value in means.items()},
                strengths=(
                    float(np.median([f[0] for f in fitted])),
                    float(np.median([f[1] for f in fitted])),
                ),
            )
        )
    return SentimentReport(int(index.size), int(text.sum()), rho, rows)


@dataclass(frozen=True)
class PollRow:
    polls: int
    tau: dict[float, float]  # prior strength b -> Kendall τ_b against the true strengths
    single_poll_top: dict[float, float]  # b -> share of the fitted top 20 shown in one poll
    steps: dict[float, float]  # b -> MM steps the warm-started update took


@dataclass(frozen=True)
class PollReport:
    products: int
    rows: list[PollRow]


def simulate_polls(
    true_log_strength: FloatArray, polls: int, rng: np.random.Generator
) -> PollVotes:
    """``polls`` votes: each shows 2 products (3 or 4 one time in four, equally likely)
    drawn without replacement, and picks one with probability γ_i / Σ γ_j."""
    n = true_log_strength.size
    sizes = np.where(rng.random(polls) < 0.75, 2, rng.integers(3, 5, polls))
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    shown = np.empty(int(offsets[-1]), dtype=np.int64)
    chosen = np.empty(polls, dtype=np.int64)
    for v in range(polls):
        members = rng.choice(n, size=int(sizes[v]), replace=False)
        weights = np.exp(true_log_strength[members])
        shown[offsets[v] : offsets[v + 1]] = members
        chosen[v] = members[rng.choice(members.size, p=weights / weights.sum())]
    return checked_votes(shown, offsets, chosen)


def _first(votes: PollVotes, count: int) -> PollVotes:
    end = int(votes.offsets[count])
    return PollVotes(votes.shown[:end], votes.offsets[: count + 1], votes.chosen[:count])


def evaluate_polls(
    product_index: npt.ArrayLike,
    stars: npt.ArrayLike,
    n_products: int,
    counts: Sequence[int] = POLL_COUNTS,
    priors: Sequence[float] = POLL_PRIORS,
    seed: int = 0,
) -> PollReport:
    """Kendall τ_b of fitted against true strengths as simulated polls accumulate."""
    index = np.asarray(product_index, dtype=np.int64)
    y = np.asarray(stars, dtype=np.float64)
    count, total, _ = _sums(index, y, n_products)
    reliable = np.flatnonzero(count >= MIN_TRUTH_REVIEWS)
    quality = total[reliable] / count[reliable]
    true_log = SCALE * (quality - quality.mean())
    rng = np.random.default_rng(seed)
    votes = simulate_polls(true_log, max(counts), rng)
    n = reliable.size
    previous = {b: np.ones(n) for b in priors}
    rows = []
    for polls in sorted(counts):
        seen = _first(votes, polls)
        shown_in = np.bincount(seen.shown, minlength=n)
        taus, singles, steps = {}, {}, {}
        for b in priors:
            strengths, taken = poll_fit(seen, n, PollPrior(b), previous[b])
            previous[b] = strengths
            taus[b] = kendall_tau(strengths, true_log)
            top = np.argsort(-strengths, kind="stable")[:TOP]
            singles[b] = float(np.mean(shown_in[top] == 1))
            steps[b] = float(taken)
        rows.append(PollRow(polls, taus, singles, steps))
    return PollReport(int(n), rows)


def format_sentiment(report: SentimentReport) -> str:
    lines = [
        f"{report.reviews} reviews, {report.with_text} with a text scored as a comment. "
        f"Spearman's ρ of a review's sentiment with its own stars: **{report.spearman:.3f}**.",
        "",
        "Predicting each product's hidden mean stars from the kept reviews: RMSE per hidden"
        " review, and its ratio to the prior alone (below 1: better than the prior).",
        "",
        "| kept | splits | prior alone | sentiment alone | ratio | stars, Bayesian average "
        "| ratio | sentiment prior C / m (median) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report.rows:
        lines.append(
            f"| {row.fraction:.0%} | {row.splits} | {row.rmse[PRIOR_ALONE]:.4f} "
            f"| {row.rmse[SENTIMENT_ALONE]:.4f} | {row.ratio[SENTIMENT_ALONE]:.3f} "
            f"| {row.rmse[STARS_BAYES]:.4f} | {row.ratio[STARS_BAYES]:.3f} "
            f"| {row.strengths[0]:.3f} / {row.strengths[1]:.1f} |"
        )
    return "\n".join(lines) + "\n"


def format_polls(report: PollReport) -> str:
    priors = sorted(report.rows[0].tau) if report.rows else []
    middle = priors[len(priors) // 2] if priors else 0.0
    head = " | ".join(f"τ_b, b = {b:g}" for b in priors)
    single = " | ".join(f"top {TOP} on one poll, b = {b:g}" for b in priors)
    lines = [
        f"{report.products} products with at least {MIN_TRUTH_REVIEWS} reviews; true strength"
        f" exp({SCALE:g} · (mean stars − their average)); polls of 2 products (3 or 4 one"
        " time in four), the pick drawn with the Luce probability; strengths fitted by"
        " ranking.polls, warm-started from the previous row's fit.",
        "",
        f"| polls | {head} | {single} | MM steps of the update, b = {middle:g} |",
        "|---:|" + "---:|" * (2 * len(priors) + 1),
    ]
    for row in report.rows:
        taus = " | ".join(f"{row.tau[b]:.3f}" for b in priors)
        singles = " | ".join(f"{row.single_poll_top[b]:.0%}" for b in priors)
        lines.append(f"| {row.polls:,} | {taus} | {singles} | {row.steps[middle]:.0f} |")
    return "\n".join(lines) + "\n"
