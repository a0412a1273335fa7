"""The attack benchmark of issue 23, offline: the demo reviews given an honest history,
attacks injected, each target's rank in its category with and without the defences of
ranking.integrity.

**Honest history.** The reviews carry no times nor reviewer ids, so both are made up,
reproducibly (``seed``), over HORIZON_DAYS (two years, ``now`` at its end):

* each product is listed at a uniform time in the first LISTED_WITHIN of the horizon;
* its reviews arrive after that: a share s ~ U(0, MAX_LAUNCH_SHARE) of them in a launch
  surge (exponential delays of mean LAUNCH_DAYS), the rest at uniform times up to ``now``
  (a product-specific Poisson rate: its count over the days it is listed);
* reviewers: the reviews, shuffled, are dealt to accounts of 1 + ⌊Pareto(REVIEWER_TAIL)⌋
  reviews each (about two thirds of the accounts review one product, a few dozens), so
  an honest account's first vote and breadth vary as in a shop.

A review is one vote carrying its stars and its recommendation (a like, or a dislike).

**Attacks**, each on its own copy of the history, on one target per category with at
least MIN_PRODUCTS reviewed products, k votes from k new accounts, REPEATS times each:

* fast shilling: five stars and a like, within the last hour, on the product at the
  category's median rank;
* brigading: one star and a dislike, within the last hour, on the category's
  BRIGADE_RANK-th product (in its top 10);
* slow shilling: five stars and a like spread over the last 30 days on the median
  product, each account also rating COVER_VOTES random products (their stars and
  recommendation drawn from the product's own reviews) in the 30 days before its vote;
  with MANY_COVER_VOTES of them, the variant that tries to buy its accounts standing;
* fast shilling a month ago: as fast shilling, ended AGED_DAYS before now, when its
  burst has aged out (what the defences do not hold: docs/design-integrity.md).

**Ranks.** Every product is scored by the profile (the shipped default in ``make
bench-integrity``) with its per-category prior fitted from the catalogue, as the service
does, on sums of weighted votes: weight 1 without defences, ranking.integrity's with. A
target's rank is its place in its category's Top (the profile's scores without
relevance) and in a Rank whose candidates are the category, each with a relevance drawn
once at random (U(0, 1), the same in every run). What an attack does is how far it
moves its target: |rank attacked − rank honest|, both with the same defences.

**Honest data.** On the history without attacks: the share of votes damped and the
products with a burst; how far the defences move each category's top TOP_CHECK products
(Top, ranks with against without); and held-out quality, the time-ordered splits of
ranking.evaluation's kind: the votes before a cut kept (weighted as at the cut), each
product's later reviews hidden, the RMSE of the kept Bayesian average predicting their
mean per hidden review, with against without defences.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from reviewrank.ranking.blend import Evidence, Prior, quality, rank_order, with_relevance
from reviewrank.ranking.evaluation import review_counts
from reviewrank.ranking.hierarchy import fit_hierarchical_prior
from reviewrank.ranking.integrity import (
    DEFAULT_SETTINGS,
    HOUR,
    Bursts,
    IntegritySettings,
    VoteLog,
    vote_weights,
)
from reviewrank.ranking.priors import expand_category_priors
from reviewrank.ranking.profiles import Profile
from reviewrank.ranking.quality import weighted_rmse
from reviewrank.ranking.scores import bayesian_average

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

HORIZON_DAYS = 730.0
LISTED_WITHIN = 1.0
MAX_LAUNCH_SHARE = 0.3
LAUNCH_DAYS = 7.0
REVIEWER_TAIL = 1.5
MIN_PRODUCTS = 20
BRIGADE_RANK = 5
COVER_VOTES = 3
SLOW_DAYS = 30.0
ATTACK_SIZES: tuple[int, ...] = (10, 50, 200)
FAST, BRIGADE, SLOW = "fast shilling", "brigading", "slow shilling"
AGED = "fast shilling a month ago"  # ended 31 days before now: aged out
COVERED = "slow shilling, 15 cover votes"  # each account votes on 15 other products
ATTACKS: tuple[str, ...] = (FAST, BRIGADE, SLOW, AGED, COVERED)
AGED_DAYS = 31.0
MANY_COVER_VOTES = 15
TOP_CHECK = 20
REPEATS = 3  # injections per target (attack times and cover votes drawn anew)
QUALITY_CUTS: tuple[float, ...] = (0.7, 0.8, 0.9)


@dataclass(frozen=True)
class History:
    """Votes (one per review, and the attack's), with their stars and like; per product
    its listing time and category."""

    log: VoteLog
    stars: IntArray
    liked: BoolArray
    listed: FloatArray
    category: IntArray
    n_categories: int

    def with_votes(
        self, product: IntArray, user: IntArray, time: FloatArray, stars: IntArray, liked: BoolArray
    ) -> History:
        log = VoteLog.of(
            np.concatenate([self.log.product, product]),
            np.concatenate([self.log.user, user]),
            np.concatenate([self.log.time, time]),
        )
        return History(
            log,
            np.concatenate([self.stars, stars]),
            np.concatenate([self.liked, liked]),
            self.listed,
            self.category,
            self.n_categories,
        )

    @property
    def next_user(self) -> int:
        return int(self.log.user.max()) + 1 if self.log.size else 0


def honest_history(
    product_index: npt.ArrayLike,
    stars: npt.ArrayLike,
    recommended: npt.ArrayLike,
    category: npt.ArrayLike,
    rng: np.random.Generator,
) -> History:
    """The reviews with made-up times and reviewers (see the module docstring)."""
    index = np.asarray(product_index, dtype=np.int64)
    codes = np.asarray(category, dtype=np.int64)
    n = codes.size
    listed = rng.uniform(0.0, LISTED_WITHIN * HORIZON_DAYS, n)
    launch_share = rng.uniform(0.0, MAX_LAUNCH_SHARE, n)
    start = listed[index]
    in_launch = rng.random(index.size) < launch_share[index]
    later = start + rng.random(index.size) * (HORIZON_DAYS - start)
    surge = np.minimum(start + rng.exponential(LAUNCH_DAYS, index.size), HORIZON_DAYS)
    time = np.where(in_launch, surge, later)
    sizes: list[int] = []
    while sum(sizes) < index.size:
        sizes.append(1 + min(int(rng.pareto(REVIEWER_TAIL)), 200))
    user = np.repeat(np.arange(len(sizes)), sizes)[: index.size]
    user = user[rng.permutation(index.size)]
    log = VoteLog.of(index, user, time)
    return History(
        log,
        np.asarray(stars, dtype=np.int64),
        np.asarray(recommended, dtype=np.bool_),
        listed,
        codes,
        int(codes.max()) + 1 if codes.size else 0,
    )


def _evidence(history: History, weights: FloatArray, n: int) -> Evidence:
    """The products' sums, each vote counting its weight (a review: a rating and a like
    or dislike of one weight)."""
    c = review_counts(history.log.product, history.stars, history.liked, n, weights)
    dislikes: FloatArray = c.count - c.likes
    return Evidence(c.count, c.star_sum, c.likes, dislikes, c.histogram)


def _prior(evidence: Evidence, history: History) -> Prior:
    """The per-category prior fitted from the (weighted) catalogue, as the service's
    default ``per_category`` "auto" prior."""
    fit = fit_hierarchical_prior(evidence.histogram, history.category, history.n_categories)
    mean, strength = expand_category_priors(
        history.category, fit.means, fit.strengths, fit.catalogue
    )
    return Prior(mean, strength, "fitted per category")


@dataclass(frozen=True)
class Scores:
    """Each product's Top score and Rank score (with the fixed random relevance), and
    how much feedback backs it (the tie-break)."""

    top: FloatArray
    rank: FloatArray
    amount: FloatArray

    def place(self, members: IntArray, product: int, ranked: bool) -> int:
        """The 1-based place of ``product`` among ``members`` (its category)."""
        score = (self.rank if ranked else self.top)[members]
        order = rank_order(score, self.amount[members])
        return int(np.flatnonzero(members[order] == product)[0]) + 1


def weights_of(
    history: History, defended: bool, settings: IntegritySettings = DEFAULT_SETTINGS
) -> FloatArray:
    """Each vote's weight at the end of the history: ranking.integrity's, or 1."""
    if not defended:
        return np.ones(history.log.size)
    weights, _ = vote_weights(history.log, HORIZON_DAYS, history.listed, history.category, settings)
    return weights


def score(history: History, profile: Profile, relevance: FloatArray, weights: FloatArray) -> Scores:
    """Every product's scores on the sums of its votes, each counting its weight."""
    evidence = _evidence(history, weights, history.listed.size)
    kept = quality(evidence, profile, _prior(evidence, history))
    return Scores(
        kept.score / max(1.0 - kept.relevance_weight, 1e-12),  # (Top: relevance dropped)
        with_relevance(kept.score, kept.relevance_weight, relevance),
        np.asarray(evidence.amount, dtype=np.float64),
    )


def attack(history: History, kind: str, k: int, target: int, rng: np.random.Generator) -> History:
    """``history`` with k attacking votes on ``target`` (see the module docstring)."""
    first = history.next_user
    users = np.arange(first, first + k)
    now = HORIZON_DAYS
    if kind in (FAST, BRIGADE, AGED):
        times = now - (AGED_DAYS if kind == AGED else 0.0) - rng.uniform(0.0, HOUR, k)
        good = kind != BRIGADE
        stars = np.full(k, 5 if good else 1)
        return history.with_votes(np.full(k, target), users, times, stars, np.full(k, good))
    if kind not in (SLOW, COVERED):
        raise ValueError(f"unknown attack {kind!r}")
    times = now - rng.uniform(0.0, SLOW_DAYS, k)
    reviewed = np.unique(history.log.product)
    covers = MANY_COVER_VOTES if kind == COVERED else COVER_VOTES
    cover = rng.choice(reviewed, (k, covers))
    cover_times = times[:, None] - rng.uniform(0.0, SLOW_DAYS, (k, covers))
    # The cover votes copy a random honest review of each product (stars, like).
    order = np.argsort(history.log.product, kind="stable")
    starts = np.searchsorted(history.log.product[order], cover)
    counts = np.bincount(history.log.product, minlength=history.listed.size)[cover]
    pick = order[starts + (rng.random(cover.shape) * counts).astype(np.int64)]
    return history.with_votes(
        np.concatenate([np.full(k, target), cover.ravel()]),
        np.concatenate([users, np.repeat(users, covers)]),
        np.concatenate([times, cover_times.ravel()]),
        np.concatenate([np.full(k, 5), history.stars[pick].ravel()]),
        np.concatenate([np.full(k, True), history.liked[pick].ravel()]),
    )


@dataclass(frozen=True)
class AttackRow:
    """One attack at one size, over the targets and repeats: ranks moved (summed)
    without and with defences, in Top and in Rank, and the worst injection's share
    (moved with / moved without, over the injections that moved their target)."""

    attack: str
    k: int
    injections: int
    top_without: int
    top_with: int
    rank_without: int
    rank_with: int
    worst_top_share: float
    worst_rank_share: float

    @property
    def top_share(self) -> float:
        return self.top_with / self.top_without if self.top_without else math.nan

    @property
    def rank_share(self) -> float:
        return self.rank_with / self.rank_without if self.rank_without else math.nan


@dataclass(frozen=True)
class HonestReport:
    votes: int
    damped_share: float  # of the honest votes, those a burst damps
    products_with_bursts: int
    mean_weight: float
    categories: int
    top_moved_most: int  # the largest move, in places, of a top-TOP_CHECK product
    top_moved_over_two: int  # top-TOP_CHECK products moved more than 2 places
    quality: tuple[tuple[float, float, float], ...]  # (cut, RMSE without, RMSE with)


@dataclass(frozen=True)
class IntegrityReport:
    products: int
    votes: int
    users: int
    repeats: int
    settings: IntegritySettings
    honest: HonestReport
    rows: tuple[AttackRow, ...]


def _members(history: History, min_products: int) -> dict[int, IntArray]:
    reviewed = np.bincount(history.log.product, minlength=history.listed.size) > 0
    out: dict[int, IntArray] = {}
    for code in range(history.n_categories):
        members = np.flatnonzero((history.category == code) & reviewed)
        if members.size >= min_products:
            out[code] = members
    return out


def _order(scores: Scores, members: IntArray) -> IntArray:
    return members[rank_order(scores.top[members], scores.amount[members])]


def _honest(
    history: History,
    baseline: dict[bool, Scores],
    weights: FloatArray,
    bursts: Bursts,
    settings: IntegritySettings,
    categories: dict[int, IntArray],
) -> HonestReport:
    """The honest history's figures; ``baseline``: its scores without and with the
    defences' ``weights`` (and ``bursts``)."""
    plain, defended = baseline[False], baseline[True]
    most, over = 0, 0
    for members in categories.values():
        before = _order(plain, members)
        after = _order(defended, members)
        place = {int(p): i for i, p in enumerate(after)}
        for i, p in enumerate(before[:TOP_CHECK]):
            moved = abs(place[int(p)] - i)
            most = max(most, moved)
            over += moved > 2
    cuts = tuple((cut, *_held_out(history, cut * HORIZON_DAYS, settings)) for cut in QUALITY_CUTS)
    return HonestReport(
        votes=history.log.size,
        damped_share=float(np.mean(bursts.damping < 1.0)),
        products_with_bursts=int(np.unique(bursts.product).size),
        mean_weight=float(np.mean(weights)),
        categories=len(categories),
        top_moved_most=most,
        top_moved_over_two=over,
        quality=cuts,
    )


def _held_out(history: History, cut: float, settings: IntegritySettings) -> tuple[float, float]:
    """RMSE of the kept Bayesian average predicting each product's hidden mean stars, per
    hidden review: without and with defences (weights as at the cut)."""
    log = history.log
    kept = log.time <= cut
    n = history.listed.size
    hidden = ~kept
    hidden_count = np.bincount(log.product[hidden], minlength=n).astype(np.float64)
    hidden_sum = np.bincount(log.product[hidden], weights=history.stars[hidden], minlength=n)
    truth = np.divide(hidden_sum, hidden_count, out=np.zeros(n), where=hidden_count > 0)
    part = History(
        VoteLog.of(log.product[kept], log.user[kept], log.time[kept]),
        history.stars[kept],
        history.liked[kept],
        history.listed,
        history.category,
        history.n_categories,
    )
    listed_then = np.minimum(history.listed, cut)
    errors = []
    for defended in (False, True):
        if defended:
            w, _ = vote_weights(part.log, cut, listed_then, part.category, settings)
        else:
            w = np.ones(part.log.size)
        evidence = _evidence(part, w, n)
        prior = _prior(evidence, part)
        estimate = bayesian_average(
            evidence.star_sum, evidence.rating_count, prior.mean, prior.strength
        )
        errors.append(weighted_rmse(estimate, truth, hidden_count))
    return errors[0], errors[1]


def evaluate_integrity(
    product_index: npt.ArrayLike,
    stars: npt.ArrayLike,
    recommended: npt.ArrayLike,
    category: npt.ArrayLike,
    profile: Profile,
    seed: int = 0,
    sizes: tuple[int, ...] = ATTACK_SIZES,
    attacks: tuple[str, ...] = ATTACKS,
    settings: IntegritySettings = DEFAULT_SETTINGS,
    min_products: int = MIN_PRODUCTS,
    repeats: int = REPEATS,
    progress: Callable[[str], None] | None = None,
) -> IntegrityReport:
    """Runs the benchmark (see the module docstring)."""
    rng = np.random.default_rng(seed)
    history = honest_history(product_index, stars, recommended, category, rng)
    relevance = rng.random(history.listed.size)
    categories = _members(history, min_products)
    weights, bursts = vote_weights(
        history.log, HORIZON_DAYS, history.listed, history.category, settings
    )
    baseline = {
        False: score(history, profile, relevance, np.ones(history.log.size)),
        True: score(history, profile, relevance, weights),
    }
    honest = _honest(history, baseline, weights, bursts, settings, categories)
    targets = {}
    for code, members in categories.items():
        order = _order(baseline[False], members)
        targets[code] = (int(order[order.size // 2]), int(order[BRIGADE_RANK - 1]))
    rows = []
    for number, kind in enumerate(attacks):
        for k in sizes:
            moved: dict[str, list[int]] = {key: [] for key in ("top0", "top1", "rank0", "rank1")}
            for (code, members), repeat in itertools.product(categories.items(), range(repeats)):
                target = targets[code][1 if kind == BRIGADE else 0]
                # (each injection its own stream: a row does not depend on the rows before)
                stream = np.random.default_rng([seed, number, k, code, repeat])
                attacked = attack(history, kind, k, target, stream)
                for defended in (False, True):
                    weights = weights_of(attacked, defended, settings)
                    now = score(attacked, profile, relevance, weights)
                    then = baseline[defended]
                    for ranked, name in ((False, "top"), (True, "rank")):
                        shift = abs(
                            now.place(members, target, ranked) - then.place(members, target, ranked)
                        )
                        moved[f"{name}{int(defended)}"].append(shift)
            if progress:
                progress(f"{kind}, k = {k}")
            rows.append(_row(kind, k, moved))
    return IntegrityReport(
        products=int(history.listed.size),
        votes=history.log.size,
        users=history.next_user,
        repeats=repeats,
        settings=settings,
        honest=honest,
        rows=tuple(rows),
    )


def _row(kind: str, k: int, moved: dict[str, list[int]]) -> AttackRow:
    def worst(name: str) -> float:
        shares = [w / o for o, w in zip(moved[f"{name}0"], moved[f"{name}1"], strict=True) if o]
        return max(shares) if shares else math.nan

    return AttackRow(
        kind, k, len(moved["top0"]),
        sum(moved["top0"]), sum(moved["top1"]), sum(moved["rank0"]), sum(moved["rank1"]),
        worst("top"), worst("rank"),
    )  # fmt: skip


def _share(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.0%}"


def format_integrity(report: IntegrityReport) -> str:
    s = report.settings
    h = report.honest
    lines = [
        f"Honest history: {report.votes:,} votes (the reviews) of {report.products:,} "
        f"products from {report.users:,} made-up accounts over {HORIZON_DAYS:g} days"
        f" (ranking/integrity_evaluation.py); {h.categories} categories with at least"
        f" {MIN_PRODUCTS} reviewed products, one target each per attack, each attack"
        f" injected {report.repeats} times at each size.",
        "",
        "Defences (ranking/integrity.py, its defaults): standing, age past "
        f"{s.young_days:g} days over {s.trust_age_days:g} times products past "
        f"{s.few_products} over {s.trust_products:g}; lone-vote weight "
        f"{s.new_voter_weight:g}; burst windows "
        + ", ".join(_days(w) for w in s.windows_days)
        + f" of at least {s.min_burst_votes} votes, α = {s.burst_alpha:g}, allowance "
        f"{s.allowance:g}, baseline "
        f"{s.baseline_days:g} days, prior {s.prior_days:g} days, age-out {s.age_out_days:g}"
        " days.",
        "",
        "## Attacks: ranks moved, summed over the targets",
        "",
        "| attack | k | Top: without | with | share | worst"
        " | Rank: without | with | share | worst |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report.rows:
        lines.append(
            f"| {r.attack} | {r.k} | {r.top_without} | {r.top_with} | {_share(r.top_share)} "
            f"| {_share(r.worst_top_share)} | {r.rank_without} | {r.rank_with} "
            f"| {_share(r.rank_share)} | {_share(r.worst_rank_share)} |"
        )
    lines += [
        "",
        "Top: the category's Top; Rank: a Rank of the category's products with a random "
        "relevance each. without / with: ranks moved by the attack, summed over the targets, "
        "without and with defences; share: with over without; worst: the largest share of "
        "one injection (over those that moved their target without defences).",
        "",
        "## Honest data",
        "",
        f"- votes damped: {h.damped_share:.2%}, in {h.products_with_bursts} products' bursts "
        f"at the end; mean vote weight {h.mean_weight:.4f}",
        f"- each category's top {TOP_CHECK} in Top, with defences against without: at most"
        f" {h.top_moved_most} places moved; {h.top_moved_over_two} products moved more than 2",
        "- held-out quality: the votes up to a time kept (weighed as then), the rest hidden;"
        " RMSE of the kept Bayesian average (its prior fitted per category) predicting each"
        " product's hidden mean stars, per hidden review:",
        "",
        "| time-ordered cut | RMSE without | with | ratio |",
        "|---|---|---|---|",
    ]
    for cut, without, with_ in h.quality:
        lines.append(f"| {cut:.0%} | {without:.4f} | {with_:.4f} | {with_ / without:.4f} |")
    return "\n".join(lines) + "\n"


def _days(w: float) -> str:
    return f"{w * 24:g} h" if w < 1 else f"{w:g} d"
