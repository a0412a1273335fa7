"""Time-decayed aggregates of one half-life, updated per vote without rescans.

Each vote is added once with the growing weight 2^((t − r)/h) (ranking.decay); reading
multiplies by 2^(−(now − r)/h), which turns every sum into Σ v·0.5^(age/h). Replacing
a vote subtracts its old weighted contribution and adds the new one. The reference r
moves forward (a rebase) before the growing weights get large.

Shares are summed the same way (each share counts 0.5^(age/h)), for profiles that weigh
shares with this half-life (ranking.shares); and, apart, the shares of each channel some
profile weighs differently (``channels``), so that a profile's channel weights w_c make
its share sum Σ_all + Σ_c (w_c − 1)·Σ_c without keeping a sum per channel ever seen.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from reviewrank.ranking.blend import Evidence
from reviewrank.ranking.decay import decay_factor, growth_weight, needs_rebase, rebase
from reviewrank.ranking.profiles import DecayNeed
from reviewrank.service.app.store import VOTE_LIKE, VOTE_RATING, VOTE_SHARE, VoteTable
from reviewrank.service.domain.values import COMMENT, RATING, SHARE, VoteChange

FloatArray = npt.NDArray[np.float64]
_US = 1_000_000.0
_STAR_COLUMNS = ("count", "star_sum", "likes", "dislikes", "histogram")


class DecayedAggregates:
    """Growing-scale sums per product idx; the owner serialises access (Catalogue's lock)."""

    def __init__(
        self,
        half_life_seconds: float,
        capacity: int,
        reference: float | None = None,
        channels: Iterable[str] = (),
        stars: bool = True,
    ):
        """``stars``: with the star and like sums (a profile's half_life_days), 72 bytes a
        product; without, shares only (8 bytes, and 8 per channel kept apart)."""
        self.half_life = half_life_seconds
        self.reference = time.time() if reference is None else reference
        self.stars = stars
        self._columns = (*_STAR_COLUMNS, "shares") if stars else ("shares",)
        rows = capacity if stars else 0
        self.count = np.zeros(rows)
        self.star_sum = np.zeros(rows)
        self.histogram = np.zeros((rows, 5))
        self.likes = np.zeros(rows)
        self.dislikes = np.zeros(rows)
        self.shares = np.zeros(capacity)
        self.channel_shares: dict[str, FloatArray] = {c: np.zeros(capacity) for c in channels}

    @property
    def need(self) -> DecayNeed:
        """What these sums hold (ranking.profiles.DecayNeed)."""
        return DecayNeed(self.stars, frozenset(self.channel_shares))

    def grow(self, capacity: int) -> None:
        if capacity <= self.shares.shape[0]:
            return
        for name in self._columns:
            old = getattr(self, name)
            new = np.zeros((capacity, *old.shape[1:]))
            new[: old.shape[0]] = old
            setattr(self, name, new)
        for channel, old in self.channel_shares.items():
            self.channel_shares[channel] = np.zeros(capacity)
            self.channel_shares[channel][: old.shape[0]] = old

    def load(self, votes: VoteTable) -> None:
        """Adds every vote in force (the arrays are assumed zero)."""
        if votes.product_idx.size:
            self.grow(int(votes.product_idx.max()) + 1)
        weight = growth_weight(votes.occurred_at_us / _US, self.reference, self.half_life)
        shares = votes.kind == VOTE_SHARE
        np.add.at(self.shares, votes.product_idx[shares], weight[shares])
        for channel, sums in self.channel_shares.items():
            mine = shares & (votes.channel == channel)
            np.add.at(sums, votes.product_idx[mine], weight[mine])
        if not self.stars:
            return
        ratings = votes.kind == VOTE_RATING
        idx, stars, w = votes.product_idx[ratings], votes.value[ratings], weight[ratings]
        np.add.at(self.count, idx, w)
        np.add.at(self.star_sum, idx, w * stars)
        np.add.at(self.histogram, (idx, stars - 1), w)
        likes = votes.kind == VOTE_LIKE
        idx, value, w = votes.product_idx[likes], votes.value[likes], weight[likes]
        np.add.at(self.likes, idx, np.where(value == 1, w, 0.0))
        np.add.at(self.dislikes, idx, np.where(value == -1, w, 0.0))

    def reset(self, products: npt.NDArray[np.int64], votes: VoteTable) -> None:
        """Recomputes the given products' sums from their votes (changes made elsewhere)."""
        if products.size:
            self.grow(int(products.max()) + 1)
        for name in self._columns:
            getattr(self, name)[products] = 0.0
        for sums in self.channel_shares.values():
            sums[products] = 0.0
        self.load(votes)

    def _add(
        self, idx: int, kind: str, value: int, time_us: int, sign: float, channel: str
    ) -> None:
        w = sign * float(growth_weight(time_us / _US, self.reference, self.half_life))
        if kind == SHARE:
            self.shares[idx] += w
            sums = self.channel_shares.get(channel)
            if sums is not None:
                sums[idx] += w
        elif not self.stars or kind == COMMENT:  # comments are not decayed
            return
        elif kind == RATING:
            self.count[idx] += w
            self.star_sum[idx] += w * value
            self.histogram[idx, value - 1] += w
        elif value == 1:
            self.likes[idx] += w
        elif value == -1:
            self.dislikes[idx] += w

    def apply(self, changes: Sequence[VoteChange]) -> None:
        for change in changes:
            self.grow(change.product_idx + 1)
            idx, kind = change.product_idx, change.kind
            if change.old_value is not None:
                self._add(idx, kind, change.old_value, change.old_time_us, -1.0, change.old_channel)
            if change.new_value is not None:
                self._add(idx, kind, change.new_value, change.new_time_us, 1.0, change.new_channel)

    def maybe_rebase(self, now: float) -> None:
        if needs_rebase(now, self.reference, self.half_life):
            for name in self._columns:
                setattr(
                    self, name, rebase(getattr(self, name), self.reference, now, self.half_life)
                )
            for channel, sums in self.channel_shares.items():
                self.channel_shares[channel] = rebase(sums, self.reference, now, self.half_life)
            self.reference = now

    def evidence(self, idx: npt.NDArray[np.int64], now: float) -> Evidence:
        """The decayed aggregates of the given rows as they stand at ``now``."""
        if not self.stars:
            raise ValueError(f"sums of half-life {self.half_life} s hold shares only")
        factor = decay_factor(now, self.reference, self.half_life)
        size = self.count.shape[0]
        safe = np.where(idx < size, idx, 0)
        inside = (idx < size).astype(np.float64) * factor

        def take(values: FloatArray) -> FloatArray:
            taken: FloatArray = np.clip(values[safe], 0.0, None) * inside
            return taken

        return Evidence(
            rating_count=take(self.count),
            star_sum=take(self.star_sum),
            likes=take(self.likes),
            dislikes=take(self.dislikes),
            histogram=np.clip(self.histogram[safe], 0.0, None) * inside[:, None],
        )

    def shares_at(
        self,
        idx: npt.NDArray[np.int64],
        now: float,
        channels: Sequence[tuple[str, float]] = (),
    ) -> FloatArray:
        """Σ w_c·0.5^(age/h) over each row's shares in force, at ``now``: w_c the weight of
        the share's channel in ``channels`` (each one kept here), 1 for the others."""
        factor = decay_factor(now, self.reference, self.half_life)
        size = self.shares.shape[0]
        safe = np.where(idx < size, idx, 0)
        total = self.shares[safe]
        for channel, weight in channels:
            if weight != 1.0:
                total = total + (weight - 1.0) * self.channel_shares[channel][safe]
        taken: FloatArray = np.clip(total, 0.0, None) * ((idx < size) * factor)
        return taken
