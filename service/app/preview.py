"""How a top-k changes from one ranking of a sample to another (PreviewWeights): the
samples asked about, and each one's change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RankShift:
    product_id: str
    current_rank: int  # 1 = best, within the whole sample
    candidate_rank: int
    current_score: float
    candidate_score: float

    @property
    def shift(self) -> int:
        """Negative: the product moves up."""
        return self.candidate_rank - self.current_rank


@dataclass(frozen=True)
class SampleChange:
    sample: str
    current_top: list[str]
    candidate_top: list[str]
    moved_in: list[str]
    moved_out: list[str]
    shifts: list[RankShift]  # every product of either top-k, in candidate order
    overlap: float  # share of the current top-k still in the candidate top-k


def compare(
    sample: str,
    current: Sequence[tuple[str, float]],
    candidate: Sequence[tuple[str, float]],
    k: int,
) -> SampleChange:
    """Compares two complete rankings (product, score), best first, of the same products."""
    rank_now = {product: (i + 1, score) for i, (product, score) in enumerate(current)}
    rank_then = {product: (i + 1, score) for i, (product, score) in enumerate(candidate)}
    top_now = [product for product, _ in current[:k]]
    top_then = [product for product, _ in candidate[:k]]
    now, then = set(top_now), set(top_then)
    shown = top_then + [p for p in top_now if p not in then]
    shifts = [
        RankShift(p, rank_now[p][0], rank_then[p][0], rank_now[p][1], rank_then[p][1])
        for p in shown
    ]
    return SampleChange(
        sample=sample,
        current_top=top_now,
        candidate_top=top_then,
        moved_in=[p for p in top_then if p not in now],
        moved_out=[p for p in top_now if p not in then],
        shifts=shifts,
        overlap=len(now & then) / len(now) if now else 1.0,
    )


@dataclass(frozen=True)
class Sample:
    """A candidate list to preview: product ids and the search's relevance."""

    product_ids: list[str]
    relevance: list[float]


@dataclass(frozen=True)
class Preview:
    current_version: int
    current_profile: str
    candidate_profile: str
    changes: list[SampleChange]
