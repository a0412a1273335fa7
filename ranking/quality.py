"""Parts of the offline evaluation (ranking.evaluation) that stand alone: the long-tailed
resample of a review set, and the measures of an estimate against held-out truth (error,
Kendall's τ, weighted pairwise accuracy, precision and NDCG at k; their definitions are
in ranking.evaluation's docstring)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.stats import kendalltau

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def long_tail_resample(
    product_index: npt.ArrayLike, rng: np.random.Generator, alpha: float = 1.2
) -> BoolArray:
    """Which reviews a long-tailed resample keeps: each product a random
    min(its count, 1 + floor(Pareto(alpha))) of its reviews, so that most products keep
    one to three, as in real catalogues, and a few keep many."""
    index = np.asarray(product_index, dtype=np.int64)
    order = rng.permutation(index.size)
    shuffled = index[order]
    counts = np.bincount(index)
    wanted = np.minimum(counts, np.floor(rng.pareto(alpha, size=counts.size)).astype(np.int64) + 1)
    # The rank of each shuffled review among its product's: kept if below its wanted count.
    by_product = np.argsort(shuffled, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty(index.size, dtype=np.int64)
    rank[by_product] = np.arange(index.size) - np.repeat(starts, counts)
    keep = np.zeros(index.size, dtype=np.bool_)
    keep[order] = rank < wanted[shuffled]
    return keep


def precision_at_k(estimate: FloatArray, truth: FloatArray, k: int) -> float:
    """The share of the k products the estimate ranks first that are among the k best by
    the truth (ties broken by position); nan with fewer than k products."""
    if estimate.size < k or k < 1:
        return math.nan
    mine = np.argsort(-estimate, kind="stable")[:k]
    best = np.argsort(-truth, kind="stable")[:k]
    return float(np.intersect1d(mine, best).size) / k


def ndcg_at_k(estimate: FloatArray, truth: FloatArray, k: int) -> float:
    """Normalised discounted cumulative gain of the estimate's first k, the truth as the
    gain (Σ truth_i / log2(rank_i + 1), over the same sum for the truth's own first k);
    nan with fewer than k products or a truth of no gain."""
    if estimate.size < k or k < 1:
        return math.nan
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    gained = float(truth[np.argsort(-estimate, kind="stable")[:k]] @ discount)
    ideal = float(np.sort(truth)[::-1][:k] @ discount)
    return gained / ideal if ideal > 0 else math.nan


def weighted_rmse(estimate: FloatArray, truth: FloatArray, weight: FloatArray) -> float:
    """sqrt(Σ w (estimate − truth)² / Σ w); nan when the weights sum to 0."""
    total = float(np.sum(weight))
    if total <= 0:
        return math.nan
    return math.sqrt(float(np.sum(weight * (estimate - truth) ** 2)) / total)


def kendall_tau(estimate: FloatArray, truth: FloatArray) -> float:
    """Kendall's τ_b of estimate against truth; nan if either is constant or too short."""
    if estimate.size < 2 or np.all(estimate == estimate[0]) or np.all(truth == truth[0]):
        return math.nan
    return float(kendalltau(estimate, truth).statistic)


class Pairs:
    """The product pairs of one split: hidden order and precision weights, built once."""

    def __init__(self, truth: FloatArray, hidden_count: FloatArray) -> None:
        first, second = np.triu_indices(truth.size, k=1)
        sign = np.sign(truth[first] - truth[second])
        differ = sign != 0
        self.first = first[differ]
        self.second = second[differ]
        h_first = hidden_count[self.first]
        h_second = hidden_count[self.second]
        gap = np.abs(truth[first] - truth[second])[differ]
        self.signed_weight = sign[differ] * gap * h_first * h_second / (h_first + h_second)
        self.total = float(np.sum(np.abs(self.signed_weight)))

    def accuracy(self, estimate: FloatArray) -> float:
        if self.total <= 0:
            return math.nan
        agreement = np.sign(estimate[self.first] - estimate[self.second]) @ self.signed_weight
        return 0.5 + 0.5 * float(agreement) / self.total


def pairwise_accuracy(estimate: FloatArray, truth: FloatArray, hidden_count: FloatArray) -> float:
    """Gap- and precision-weighted share of correctly ordered pairs; see the module docstring.

    nan when no two truth values differ.
    """
    return Pairs(truth, hidden_count).accuracy(estimate)
