"""Explanations of scores: every figure behind each result's score, per row asked for.

Built a column at a time (one numpy call per figure, not one per row), then zipped into
one tuple per row: Rank with explain, Top with explain and GetProductStats read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from reviewrank.ranking.blend import (
    Breakdown,
    Evidence,
    Prior,
    sentiment_prior_of,
    share_prior_of,
)
from reviewrank.ranking.profiles import Profile
from reviewrank.ranking.sentiment import sentiment_average


class ContributionView(NamedTuple):  # (built per result: a tuple is quick to make)
    component: str
    value: float
    normalized: float
    weight: float
    contribution: float


class Explanation(NamedTuple):
    known: bool
    rating_count: int
    stars_mean: float
    prior_mean: float
    prior_strength: float
    prior_source: str
    bayesian_average: float
    likes: int
    dislikes: int
    wilson_lower_bound: float
    confidence: float
    relevance: float
    relevance_normalized: float
    contributions: tuple[ContributionView, ...]
    half_life_days: float
    weighted_ratings: float
    weighted_likes: float
    weighted_dislikes: float
    shares_half_life_days: float  # 0: the profile weighs no shares (nor the four below)
    weighted_shares: float
    exposure_days: float
    share_prior_shape: float
    share_prior_rate_days: float
    share_reference_rate: float
    comments: int
    sentiment_mean: float  # the comments' plain mean, 0 with none
    sentiment_prior_mean: float  # 0 and 0: the profile weighs no sentiment (nor below)
    sentiment_prior_strength: float
    sentiment_average: float
    weighted_comments: float  # the comments with the profile's channel weights
    polls_shown: int  # poll votes in force that showed it
    polls_won: int  # that chose it
    poll_strength: float  # its Bradley-Terry strength in force (1: the prior's)
    # What the manipulation defences leave out of its ratings, likes and dislikes (votes).
    damped_ratings: float = 0.0
    damped_likes: float = 0.0
    damped_dislikes: float = 0.0

    @property
    def share_rate(self) -> float:
        """The shrunk share rate, shares a day (ranking.shares.shrunk_rate); 0 when the
        profile weighs no shares."""
        if not self.shares_half_life_days:
            return 0.0
        return (self.share_prior_shape + self.weighted_shares) / (
            self.share_prior_rate_days + self.exposure_days
        )


def explain_rows(
    breakdown: Breakdown,
    evidence: Evidence,
    raw: Evidence,
    known: np.ndarray,
    prior: Prior,
    profile: Profile,
    rows: Sequence[int],
    damped: npt.NDArray[np.float64] | None = None,
) -> list[Explanation]:
    """One explanation per row of ``rows``; ``damped``: what the defences leave out of
    each such row's ratings, likes and dislikes (Catalogue.damped_votes), in that order."""
    at = np.fromiter(rows, dtype=np.intp)

    def column(values: npt.ArrayLike) -> list[Any]:
        """The rows' values as Python numbers (one numpy call, not one per row)."""
        taken: list[Any] = np.broadcast_to(np.asarray(values), known.shape)[at].tolist()
        return taken

    def floats(values: npt.ArrayLike) -> list[float]:
        return column(np.asarray(values, dtype=np.float64))  # (no copy when float)

    def counts(values: npt.ArrayLike) -> list[int]:
        return [int(v) for v in column(values)]

    def relevance_column(values: npt.ArrayLike | None) -> list[float]:
        return [0.0] * len(at) if values is None else floats(values)

    # Each row's contributions, one tuple per row: built a component at a time.
    contributions = list(
        zip(
            *(
                list(
                    map(
                        ContributionView,
                        repeat(c.name),
                        floats(c.value),
                        floats(c.normalized),
                        repeat(c.weight),
                        floats(c.contribution),
                    )
                )
                for c in breakdown.components
            ),
            strict=True,
        )
    ) or [()] * len(at)
    count = len(at)
    zeros = [0.0] * count
    shares_half_life = weighted_shares = exposure = shape = rate = reference = zeros
    if evidence.shares is not None and evidence.exposure is not None:
        share_prior = share_prior_of(profile, prior)
        shares_half_life = [profile.shares.half_life_days] * count
        weighted_shares, exposure = floats(evidence.shares), floats(evidence.exposure)
        shape, rate = [share_prior.shape] * count, [share_prior.rate] * count
        reference = [share_prior.reference_rate] * count
    comments: list[int] = [0] * count
    mean = prior_mean = prior_strength = average = weighted = zeros
    if raw.comments is not None and raw.sentiment_sum is not None:
        comments = counts(raw.comments)
        sums = floats(raw.sentiment_sum)
        mean = [s / n if n else 0.0 for s, n in zip(sums, comments, strict=True)]
        weighted = [float(n) for n in comments]
        if profile.weighs_sentiment and evidence.comments is not None:
            said = sentiment_prior_of(profile, prior)
            prior_mean, prior_strength = [said.mean] * count, [said.strength] * count
            assert evidence.sentiment_sum is not None
            weighted = floats(evidence.comments)  # (weighed by channel, if the profile does)
            average = floats(sentiment_average(evidence.comments, evidence.sentiment_sum, said))
    shown: list[int] = [0] * count
    won: list[int] = [0] * count
    strength = [1.0] * count
    if raw.polls_shown is not None and raw.polls_won is not None:
        shown, won = counts(raw.polls_shown), counts(raw.polls_won)
    if raw.poll_strength is not None:
        strength = floats(raw.poll_strength)
    left_out = np.zeros((count, 3)) if damped is None else damped
    return list(
        map(
            Explanation,
            column(known),
            counts(raw.rating_count),
            floats(breakdown.stars_mean),
            floats(prior.mean),
            floats(prior.strength),
            repeat(prior.source, count),
            floats(breakdown.bayesian_average),
            counts(raw.likes),
            counts(raw.dislikes),
            floats(breakdown.wilson_lower_bound),
            repeat(profile.confidence, count),
            relevance_column(breakdown.relevance),
            relevance_column(breakdown.relevance_normalized),
            contributions,
            repeat(profile.half_life_days or 0.0, count),
            floats(evidence.rating_count),
            floats(evidence.likes),
            floats(evidence.dislikes),
            shares_half_life,
            weighted_shares,
            exposure,
            shape,
            rate,
            reference,
            comments,
            mean,
            prior_mean,
            prior_strength,
            average,
            weighted,
            shown,
            won,
            strength,
            left_out[:, 0].tolist(),
            left_out[:, 1].tolist(),
            left_out[:, 2].tolist(),
        )
    )
