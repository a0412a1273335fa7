"""The ranking application: candidates in, ordered and explained products out.

The Ranker resolves the weights profile and the prior, gathers the products' aggregates
from the in-memory catalogue and hands the arrays to ``ranking``.
Explanations are built in service/app/explain.py; Top's cached order, page size and
page token are in service/app/top_order.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from reviewrank.ranking.blend import (
    Prior,
    blend,
    order_if_no_ties,
    rank_order,
    tie_break_order,
    with_relevance,
)
from reviewrank.ranking.profiles import Profile
from reviewrank.service.app.catalogue import Catalogue, Extra
from reviewrank.service.app.explain import Explanation, explain_rows
from reviewrank.service.app.priors import FittedPrior, PriorResolver, kept_seconds
from reviewrank.service.app.rank_query import RankQuery, RankResult
from reviewrank.service.app.refresher import Refresher, pause
from reviewrank.service.app.score_columns import CHUNK_ROWS, ScoreColumns
from reviewrank.service.app.share_priors import SharePriors
from reviewrank.service.app.top_order import (
    DEFAULT_TOP_LIMIT,
    Changed,
    TopOrder,
    decode_page_token,
    encode_page_token,
    merged_page,
    no_change,
    page_size,
    with_rows,
)
from reviewrank.service.app.weights import WeightsRegistry, WeightsState
from reviewrank.service.domain.errors import InvalidArgument, NotFound
from reviewrank.service.domain.values import display_fields

# (DEFAULT_TOP_LIMIT: what service/api/convert_admin.py reads here)
__all__ = ["DEFAULT_TOP_LIMIT", "ProductStats", "Ranker", "Ranking"]


class Ranking(NamedTuple):  # (one per call: a tuple is quicker to make)
    """Top's page: products best first, their scores, and (when asked) their explanations."""

    product_ids: Sequence[str]
    scores: npt.NDArray[np.float64]
    explanations: list[Explanation] | None
    weights_version: int
    profile: str
    next_page_token: str = ""
    display: list[dict[str, str]] | None = None  # the page's display fields, if any has some


class ProductStats(NamedTuple):
    product_id: str
    known: bool
    category: str
    rating_count: int
    histogram: tuple[int, ...]
    stars_mean: float
    bayesian_average: float
    prior_mean: float
    prior_strength: float
    prior_source: str
    likes: int
    dislikes: int
    wilson_lower_bound: float
    confidence: float
    inactive: bool = False  # delisted by the shop's catalogue
    more_categories: tuple[str, ...] = ()  # the others the catalogue lists it in
    display: dict[str, str] | None = None  # the catalogue's display fields
    shares: int = 0  # users who shared it
    weighted_shares: float = 0.0  # with a profile weighing shares (ranking.shares)
    exposure_days: float = 0.0
    share_rate: float = 0.0
    comments: int = 0  # users whose comment on it is in force
    sentiment_mean: float = 0.0  # their scores' mean, in [−1, 1]
    polls_shown: int = 0  # poll votes in force that showed it
    polls_won: int = 0  # that chose it
    poll_strength: float = 1.0  # its Bradley-Terry strength (1: the prior's)
    # What the manipulation defences leave out of its scores (votes), by the profile's.
    damped_ratings: float = 0.0
    damped_likes: float = 0.0
    damped_dislikes: float = 0.0


def unknown_category(category: str, known: Iterable[str]) -> str:
    """Why a category is not found, naming the known ones it differs from only in case."""
    folded = category.casefold()
    alike = sorted(c for c in known if c.casefold() == folded)[:3]
    hint = f" (names are case-sensitive: did you mean {', '.join(map(repr, alike))}?)"
    return f"no product in category {category!r}" + (hint if alike else "")


class Ranker:
    def __init__(self, catalogue: Catalogue, weights: WeightsRegistry) -> None:
        self._catalogue = catalogue
        self._weights = weights
        self._refresher = Refresher()  # whole-catalogue work off the calls' path
        self._priors = PriorResolver(catalogue, background=self._refresher)
        self._share_priors = SharePriors(catalogue, background=self._refresher)
        self._columns = ScoreColumns(catalogue, self._priors, self._refresher)
        self._top_cache: dict[tuple[int, str, int], TopOrder] = {}
        self._top_lock = threading.Lock()
        # Per kept order: the rows changed since it was computed (_changed_since).
        self._changed: dict[tuple[int, str, int], tuple[TopOrder, Changed]] = {}
        self._changed_lock = threading.Lock()

    def close(self) -> None:
        self._refresher.close()

    @property
    def priors(self) -> PriorResolver:
        """The fitted priors rankings use (read by the status and metrics)."""
        return self._priors

    # -- shared ------------------------------------------------------------------------------

    def _profile(self, state: WeightsState, name: str, user_id: str = "") -> Profile:
        """The named profile, else the user's share of the traffic split, else the default."""
        profile = state.profiles.choose(name, user_id)
        if profile is None:  # (not listing the others: profile names are operators' business)
            raise InvalidArgument([("profile", f"unknown profile {name!r}")])
        return profile

    @property
    def share_priors(self) -> SharePriors:
        return self._share_priors

    def _prior(
        self,
        profile: Profile,
        category_code: npt.NDArray[np.int32],
        fit: FittedPrior | None = None,
        extra: Extra = None,
    ) -> Prior:
        """The profile's prior for products of these categories (of ``fit`` when given),
        with the share rate's when the profile weighs shares (``extra``: a preview's sums)."""
        prior = self._priors.prior(profile.prior, category_code, fit)
        weighing = profile.share_weighing
        if weighing is not None:
            shares = self._share_priors.prior(weighing, profile.shares.prior, extra)
            prior = replace(prior, shares=shares)
        return prior

    # -- use cases ---------------------------------------------------------------------------

    def rank(self, query: RankQuery) -> RankResult:
        """The query's candidates ordered (see service/app/rank_query.py)."""
        state = self._weights.current  # once: the whole call uses this one version
        profile = self._profile(state, query.profile, query.user_id)
        product_ids = query.product_ids
        most = profile.limits.max_candidates
        if most is not None and len(product_ids) > most:
            raise InvalidArgument(
                [
                    (
                        "candidates",
                        f"must contain at most {most} items with profile {profile.name!r} "
                        f"(got {len(product_ids)})",
                    )
                ]
            )
        if not query.explain and not profile.clocked:
            quick = self._rank_from_columns(state.version, profile, query)
            if quick is not None:
                order, scores = quick
                return RankResult(order, scores, None, state.version, profile.name)
        gathered = self._catalogue.gather(
            product_ids,
            profile.half_life_seconds,
            time.time(),
            encoded=query.id_bytes,
            shares=profile.share_weighing,
            comments=profile.comment_weighing,
            weighed=profile.integrity,
        )
        prior = self._prior(profile, gathered.category_code)
        breakdown = blend(
            gathered.evidence, profile, prior, np.asarray(query.relevance, dtype=np.float64)
        )
        order = rank_order(breakdown.score, gathered.evidence.amount)
        if query.limit:
            order = order[: query.limit]
        explanations = (
            explain_rows(
                breakdown,
                gathered.evidence,
                gathered.raw,
                gathered.known,
                prior,
                profile,
                order.tolist(),
                self._damped(profile, [product_ids[i] for i in order.tolist()]),
            )
            if query.explain
            else None
        )
        return RankResult(order, breakdown.score[order], explanations, state.version, profile.name)

    def _damped(
        self, profile: Profile, product_ids: Sequence[str]
    ) -> npt.NDArray[np.float64] | None:
        """What the defences leave out of these products' votes, for a profile that
        weighs votes by them (None: every vote counts in full)."""
        return self._catalogue.damped_votes(product_ids) if profile.integrity else None

    def _rank_from_columns(
        self, version: int, profile: Profile, query: RankQuery
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None:
        """Rank's usual path: each candidate's kept quality score plus its relevance term
        (service/app/score_columns.py); None when the column is being rebuilt."""
        found = self._catalogue.lookup(query.product_ids, query.id_bytes)
        kept = self._columns.gather(version, profile, found.idx, found.generation)
        if kept is None:
            return None
        score = with_relevance(kept.score, kept.relevance_weight, query.relevance)
        order = order_if_no_ties(score)
        if order is None:
            order = tie_break_order(score, self._catalogue.amount(found.idx))
        if query.limit:
            order = order[: query.limit]
        return order, score[order]

    def top(
        self,
        category: str,
        limit: int,
        page_token: str,
        profile_name: str,
        explain: bool,
        user_id: str = "",
        min_seq: int = 0,
    ) -> Ranking:
        """``limit`` 0 is the profile's default page size (20 unless it sets one); the
        order reflects every change up to ``min_seq`` (which this process has applied)."""
        state = self._weights.current  # once: the whole call uses this one version
        profile = self._profile(state, profile_name, user_id)
        limit = page_size(profile, limit)
        offset = decode_page_token(page_token, category, profile.name)
        top, changed = self._top_view(state, profile, min_seq)
        code = None
        if category:
            code = self._catalogue.code_of_category(category)
            if code is None:
                raise NotFound(unknown_category(category, self._catalogue.category_names()))
        if changed is None:
            order = top.order if code is None else top.of_category(code)
            page = order[offset : offset + limit]
            scores = top.breakdown.score[page]
            total = int(order.size)
        else:
            page, scores, total = merged_page(top, changed, code, offset, limit)
        if category and not total:  # its products were recategorised, or are all delisted
            raise NotFound(f"no listed product in category {category!r}")
        rows = [row + 1 for row in page.tolist()]  # (positions are idx - 1)
        ordered_ids = self._catalogue.ids_of(rows)
        explanations = None
        if explain:
            explanations = self._explain_page(top, changed, profile, page, ordered_ids)
        next_offset = offset + len(rows)
        token = (
            encode_page_token(next_offset, category, profile.name) if next_offset < total else ""
        )
        shown = self._catalogue.display_of(rows)
        display = [display_fields(text) for text in shown] if any(shown) else None
        return Ranking(
            ordered_ids, scores, explanations, state.version, profile.name, token, display
        )

    def _explain_page(
        self,
        top: TopOrder,
        changed: Changed | None,
        profile: Profile,
        page: npt.NDArray[np.int64],
        ids: list[str],
    ) -> list[Explanation]:
        """The explanations of a page of Top: from the kept order's breakdown, or, when
        changed rows are merged in, from the page's products scored as the order was."""
        if changed is None:
            snapshot = top.snapshot
            known = np.ones(len(snapshot.product_ids), dtype=bool)
            return explain_rows(
                top.breakdown, snapshot.evidence, snapshot.raw, known, top.prior, profile,
                page.tolist(), self._damped(profile, ids),
            )  # fmt: skip
        gathered = self._catalogue.gather(
            ids, comments=profile.comment_weighing, weighed=profile.integrity
        )
        prior = self._prior(profile, gathered.category_code, top.fit)
        breakdown = blend(gathered.evidence, profile, prior)
        return explain_rows(
            breakdown, gathered.evidence, gathered.raw, gathered.known, prior, profile,
            range(len(ids)), self._damped(profile, ids),
        )  # fmt: skip

    # -- previews: any profile, not only those in force --------------------------------------

    def order_candidates(
        self,
        profile: Profile,
        product_ids: Sequence[str],
        relevance: Sequence[float],
        extra: Extra = None,
    ) -> list[tuple[str, float]]:
        """Every candidate with its score, best first, as Rank would order them."""
        gathered = self._catalogue.gather(
            product_ids,
            profile.half_life_seconds,
            time.time(),
            extra,
            shares=profile.share_weighing,
            comments=profile.comment_weighing,
            weighed=profile.integrity,
        )
        prior = self._prior(profile, gathered.category_code, extra=extra)
        breakdown = blend(
            gathered.evidence, profile, prior, np.asarray(relevance, dtype=np.float64)
        )
        order = rank_order(breakdown.score, gathered.evidence.amount)
        scores = breakdown.score[order].tolist()
        return [(product_ids[i], s) for i, s in zip(order.tolist(), scores, strict=True)]

    def order_catalogue(
        self, profile: Profile, category: str, extra: Extra = None
    ) -> list[tuple[str, float]]:
        """Every product of a category ("" = all) with its score, best first, as Top would."""
        snapshot = self._catalogue.snapshot(
            profile.half_life_seconds,
            time.time(),
            extra,
            profile.share_weighing,
            profile.comment_weighing,
            weighed=profile.integrity,
        )
        prior = self._prior(profile, snapshot.category_code, extra=extra)
        breakdown = blend(snapshot.evidence, profile, prior)
        order = rank_order(breakdown.score, snapshot.evidence.amount)
        if category:
            code = snapshot.categories.get(category)
            order = order[:0] if code is None else order[snapshot.category_code[order] == code]
        scores = breakdown.score[order].tolist()
        rows = order.tolist()
        return list(zip(snapshot.product_ids.take(rows), scores, strict=True))

    def _top_view(
        self, state: WeightsState, profile: Profile, min_seq: int = 0
    ) -> tuple[TopOrder, Changed | None]:
        """The order Top pages through: on a large catalogue, the kept order and the rows
        changed since, merged page by page (top_order.merged_page), while a new order is
        computed on the refresher's thread once many rows have changed or the prior in
        force moved; otherwise the kept order alone (_top_order)."""
        key = (state.version, profile.name, 0)
        cached = self._top_cache.get(key)
        if (
            not profile.clocked  # (decayed scores and share rates move with the clock too)
            and cached is not None
            and cached.cost >= CHEAP_TOP_SECONDS
        ):
            changed = self._changed_since(cached, profile, min_seq)
            if changed is not None and changed.through_seq >= min_seq:
                moved = cached.fit is not self._priors.fit_of(profile.prior)
                if moved or changed.size > MOST_CHANGED_ROWS:
                    self._recompute_later(cached, profile)
                return cached, changed
        return self._top_order(state, profile, min_seq), None

    def _changed_since(self, top: TopOrder, profile: Profile, min_seq: int) -> Changed | None:
        """The rows changed since ``top`` was computed, scored as it was, as of at most
        TOP_FRESH_SECONDS ago (now, for a ``min_seq`` it does not reach); None when the
        catalogue's change log no longer reaches back to it."""
        now = time.monotonic()
        with self._changed_lock:
            kept = self._changed.get(top.key)
            changed = kept[1] if kept is not None and kept[0] is top else None
            since = top.generation if changed is None else changed.generation
            if changed is not None and (
                since == self._catalogue.generation
                or (now - changed.made_at < TOP_FRESH_SECONDS and changed.through_seq >= min_seq)
            ):
                return changed
            seq = self._catalogue.seq  # (read first: the rows reflect at least this)
            rows = self._catalogue.changed_rows(
                since=since,
                listing=True,
                comments=profile.comment_weighing,
                weighed=profile.integrity,
            )
            if rows is None:
                return None
            if changed is None:
                changed = no_change(since, top.through_seq)
            prior = self._prior(profile, rows.category_code, top.fit)
            score = blend(rows.evidence, profile, prior).score
            changed = with_rows(changed, rows, score, max(seq, top.through_seq), now)
            # (Only for orders still kept: each holds a copy of the whole catalogue.)
            self._changed = {
                key: entry
                for key, entry in self._changed.items()
                if self._top_cache.get(key) is entry[0]
            }
            self._changed[top.key] = (top, changed)
            return changed

    def _recompute_later(self, top: TopOrder, profile: Profile) -> None:
        def recompute() -> None:
            fresh = self._compute_top(top.key, profile, time.time(), in_parts=True)
            with self._top_lock:
                kept = self._top_cache.get(top.key)
                if kept is None or kept.generation <= fresh.generation:
                    self._top_cache[top.key] = fresh

        self._refresher.submit(("top order", top.key), recompute)

    def _top_order(self, state: WeightsState, profile: Profile, min_seq: int = 0) -> TopOrder:
        """The whole catalogue ranked, cached, reflecting at least ``min_seq``.

        After a write a cheap order (under CHEAP_TOP_SECONDS to compute) is recomputed at
        once. An expensive one (a large catalogue) is kept for kept_seconds(cost,
        TOP_REFRESH_SECONDS): at least that, and long enough that recomputing it takes at
        most a tenth of a core (unless _top_view merges the changed rows in). While one
        thread recomputes it, the others serve the order they have rather than queue
        behind it (on a million products a recompute costs 0.3 to 0.9 s of CPU, and Top's
        throughput used to fall from 4,000 to 150 calls/s under 50 writes a second). A
        caller whose ``min_seq`` the kept order does not reflect waits for one that does.
        """
        now = time.time()
        # A decayed score drifts with time: recompute it at least once a minute.
        epoch = int(now // 60) if profile.clocked else 0
        key = (state.version, profile.name, epoch)
        generation = self._catalogue.generation

        def usable(entry: TopOrder | None) -> bool:
            return entry is not None and entry.key == key and entry.through_seq >= min_seq

        def fresh(entry: TopOrder | None) -> bool:
            if entry is None or not usable(entry):
                return False
            if entry.generation == generation:
                return True
            return (
                entry.cost >= CHEAP_TOP_SECONDS
                and time.monotonic() - entry.computed_at
                < kept_seconds(entry.cost, TOP_REFRESH_SECONDS)
            )

        cached = self._top_cache.get(key)
        if fresh(cached):
            assert cached is not None
            return cached
        if cached is not None and usable(cached) and cached.cost >= CHEAP_TOP_SECONDS:
            if not self._top_lock.acquire(blocking=False):
                return cached  # being recomputed by another thread
        else:
            self._top_lock.acquire()
        try:
            cached = self._top_cache.get(key)
            if fresh(cached):
                assert cached is not None
                return cached
            top = self._compute_top(key, profile, now)
            if len(self._top_cache) >= 8:  # a few profiles' orders at most
                self._top_cache.clear()
            self._top_cache[key] = top
            return top
        finally:
            self._top_lock.release()

    def _compute_top(
        self, key: tuple[int, str, int], profile: Profile, now: float, in_parts: bool = False
    ) -> TopOrder:
        """The whole catalogue's order; ``in_parts`` (on the refresher's thread, plain
        counts only), read a part at a time, letting others run in between."""
        started = time.perf_counter()
        fit = self._priors.fit_of(profile.prior)
        if in_parts:
            snapshot = self._catalogue.snapshot_in_parts(
                CHUNK_ROWS, pause, profile.comment_weighing, weighed=profile.integrity
            )
        else:
            snapshot = self._catalogue.snapshot(
                profile.half_life_seconds,
                now,
                shares=profile.share_weighing,
                comments=profile.comment_weighing,
                weighed=profile.integrity,
            )
        prior = self._prior(profile, snapshot.category_code, fit)
        if in_parts:
            pause()
        breakdown = blend(snapshot.evidence, profile, prior)
        if in_parts:
            pause()
        order = rank_order(breakdown.score, snapshot.evidence.amount)
        if not snapshot.active.all():  # the shop delisted some: Top leaves them out
            order = order[snapshot.active[order]]
        return TopOrder(
            snapshot, prior, breakdown, order, snapshot.category_code[order],
            key=key, generation=snapshot.seq, through_seq=snapshot.through_seq,
            computed_at=time.monotonic(), cost=time.perf_counter() - started, fit=fit,
        )  # fmt: skip

    def product_stats(
        self, product_ids: Sequence[str], profile_name: str
    ) -> tuple[list[ProductStats], int]:
        state = self._weights.current
        profile = self._profile(state, profile_name)
        gathered = self._catalogue.gather(
            product_ids,
            profile.half_life_seconds,
            time.time(),
            shares=profile.share_weighing,
            comments=profile.comment_weighing,
            weighed=profile.integrity,
        )
        prior = self._prior(profile, gathered.category_code)
        breakdown = blend(gathered.evidence, profile, prior)
        ev = gathered.evidence
        explanations = explain_rows(
            breakdown, ev, gathered.raw, gathered.known, prior, profile, range(len(product_ids)),
            self._damped(profile, product_ids),
        )  # fmt: skip
        categories = gathered.category  # (built on each read)
        listing = self._catalogue.listing(product_ids)
        sharers = self._catalogue.sharers(product_ids)
        histograms = gathered.raw.histogram.tolist()
        stats = [
            ProductStats(
                product_id=product_ids[i],
                known=e.known,
                category=categories[i],
                rating_count=e.rating_count,
                histogram=tuple(map(int, histograms[i])),
                stars_mean=e.stars_mean,
                bayesian_average=e.bayesian_average,
                prior_mean=e.prior_mean,
                prior_strength=e.prior_strength,
                prior_source=e.prior_source,
                likes=e.likes,
                dislikes=e.dislikes,
                wilson_lower_bound=e.wilson_lower_bound,
                confidence=e.confidence,
                inactive=listing[i].inactive,
                more_categories=listing[i].more_categories,
                display=display_fields(listing[i].display) or None,
                shares=sharers[i],
                weighted_shares=e.weighted_shares,
                exposure_days=e.exposure_days,
                share_rate=e.share_rate,
                comments=e.comments,
                sentiment_mean=e.sentiment_mean,
                polls_shown=e.polls_shown,
                polls_won=e.polls_won,
                poll_strength=e.poll_strength,
                damped_ratings=e.damped_ratings,
                damped_likes=e.damped_likes,
                damped_dislikes=e.damped_dislikes,
            )
            for i, e in enumerate(explanations)
        ]
        return stats, state.version


CHEAP_TOP_SECONDS = 0.005
# Rows changed since a kept order was computed beyond which a new one is computed (on the
# refresher's thread): merging them into a page costs in their number.
MOST_CHANGED_ROWS = 8192
# How stale the changed rows merged into Top's pages may be (unless a call's min_seq asks
# for newer): bringing them up to date at every write cost 1-2 ms of CPU per write under
# 500 writes a second.
TOP_FRESH_SECONDS = 0.05
TOP_REFRESH_SECONDS = 1.0  # an expensive order is kept kept_seconds(cost, this) after a write
