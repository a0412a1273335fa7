"""Top's pieces beside the Ranker: the cached whole-catalogue order, the rows changed
since it was computed and how a page merges the two, the page size and the page token
(an offset bound to its category and profile)."""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from reviewrank.ranking.blend import Breakdown, Prior
from reviewrank.ranking.profiles import Profile
from reviewrank.service.app.catalogue_views import ScoringRows, Snapshot
from reviewrank.service.app.priors import FittedPrior
from reviewrank.service.domain.errors import InvalidArgument


@dataclass(frozen=True)
class TopOrder:
    snapshot: Snapshot
    prior: Prior
    breakdown: Breakdown
    order: np.ndarray
    codes_in_order: np.ndarray
    key: tuple[int, str, int]
    generation: int
    through_seq: int
    computed_at: float
    cost: float
    fit: FittedPrior | None = None  # the prior's fit it was computed with (None: fixed)
    by_category: dict[int, np.ndarray] = field(default_factory=dict)

    def of_category(self, code: int) -> np.ndarray:
        """The order restricted to one category: the products of that category and those
        the shop also lists in it (computed once per cached order)."""
        order = self.by_category.get(code)
        if order is None:
            members = self.codes_in_order == code
            also = self.snapshot.also_in.get(code)
            if also is not None:
                members |= np.isin(self.order, also)
            order = self.order[members]
            self.by_category[code] = order
        return order


IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
UNPLACED = -1


@dataclass(frozen=True)
class Placed:
    """Where each changed row goes in one category's kept order (UNPLACED: not yet asked,
    or not in it): ``held``, the index of the row as the order holds it (to skip it);
    ``goes``, how many rows of the order rank before its key now. They do not change
    while the row does not, so they are carried from one generation's Changed to the next
    and only new rows are searched for."""

    held: IntArray
    goes: IntArray


@dataclass(frozen=True)
class Cut:
    """What a page of one category needs of the changed rows (merged_page)."""

    skipped: IntArray  # indices of the kept order to skip, ascending
    fresh: IntArray  # the changed rows now in the category, best first
    into: IntArray  # how many unskipped rows of the kept order precede each of fresh
    total: int  # products in the merged order
    # The same as lists, for bisect (a page's searches: numpy's cost per call dominated).
    skipped_list: list[int] = field(default_factory=list)
    into_list: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Changed:
    """The rows written since a kept order was computed, scored with its profile and
    prior, best first (score, then evidence, then position, as rank_order): Top merges
    them into the kept order (merged_page) rather than sorting every product again after
    each write. Positions are the snapshot's (idx - 1)."""

    generation: int  # of the catalogue it reflects
    through_seq: int  # every change up to this sequence number is in it
    positions: IntArray
    score: FloatArray
    amount: FloatArray
    code: npt.NDArray[np.int32]  # their categories now
    active: npt.NDArray[np.bool_]  # whether they are listed now
    # position -> the codes of its other categories now, for those that have some
    more: dict[int, tuple[int, ...]]
    # Category code -> which of them the shop also lists in it now.
    also_in: dict[int, IntArray] = field(default_factory=dict)
    # Per category code (None: every category), filled as pages are asked for.
    placed: dict[int | None, Placed] = field(default_factory=dict)
    cuts: dict[int | None, Cut] = field(default_factory=dict)
    made_at: float = 0.0  # time.monotonic() when made

    @property
    def size(self) -> int:
        return int(self.positions.size)


def no_change(generation: int, through_seq: int) -> Changed:
    empty = np.zeros(0, dtype=np.int64)
    return Changed(
        generation, through_seq, empty, np.zeros(0), np.zeros(0),
        np.zeros(0, dtype=np.int32), np.zeros(0, dtype=bool), {},
    )  # fmt: skip


def with_rows(
    changed: Changed, rows: ScoringRows, score: FloatArray, through_seq: int, now: float
) -> Changed:
    """``changed`` with ``rows`` (their state now, ``score`` their scores) in place of what
    it held of them. ``rows`` must carry their listing (changed_rows(listing=True))."""
    assert rows.active is not None and rows.more is not None
    positions = rows.idx - 1
    keep = ~_among(changed.positions, np.sort(positions))
    all_positions = np.concatenate((changed.positions[keep], positions))
    all_score = np.concatenate((changed.score[keep], score))
    amount = rows.evidence.amount.astype(np.float64)
    all_amount = np.concatenate((changed.amount[keep], amount))
    order = np.lexsort((all_positions, -all_amount, -all_score))
    ordered = all_positions[order]
    more = dict(changed.more)
    for position, others in zip(positions.tolist(), rows.more, strict=True):
        if others:
            more[position] = others
        else:
            more.pop(position, None)
    also_in: dict[int, list[int]] = {}
    for position, others in more.items():
        for code in others:
            also_in.setdefault(code, []).append(position)
    by_position = np.argsort(ordered)
    unplaced = np.full(positions.size, UNPLACED, dtype=np.int64)
    placed = {
        code: Placed(
            np.concatenate((p.held[keep], unplaced))[order],
            np.concatenate((p.goes[keep], unplaced))[order],
        )
        for code, p in changed.placed.items()
    }
    return Changed(
        generation=rows.generation,
        through_seq=through_seq,
        positions=ordered,
        score=all_score[order],
        amount=all_amount[order],
        code=np.concatenate((changed.code[keep], rows.category_code))[order],
        active=np.concatenate((changed.active[keep], rows.active))[order],
        more=more,
        also_in={
            code: by_position[np.searchsorted(ordered[by_position], np.array(listed))]
            for code, listed in also_in.items()
        },
        placed=placed,
        made_at=now,
    )


def _among(values: IntArray, ascending: IntArray) -> npt.NDArray[np.bool_]:
    """Whether each value is one of ``ascending`` (sorted)."""
    if not ascending.size or not values.size:
        return np.zeros(values.shape, dtype=bool)
    at = np.minimum(np.searchsorted(ascending, values), ascending.size - 1)
    found: npt.NDArray[np.bool_] = ascending[at] == values
    return found


def _cut(top: TopOrder, changed: Changed, code: int | None, stale: IntArray) -> Cut:
    """The changed rows placed in the kept order of category ``code`` (see merged_page)."""
    snapshot = top.snapshot
    now_in = changed.active.copy()
    if code is not None:
        inside = changed.code == code
        inside[changed.also_in.get(code, changed.positions[:0])] = True
        now_in &= inside
    # Those the kept order holds here (as it was computed).
    known = changed.positions < snapshot.active.size
    held_positions = changed.positions[known]
    was = snapshot.active[held_positions]
    if code is not None:
        was &= (snapshot.category_code[held_positions] == code) | np.isin(
            held_positions, snapshot.also_in.get(code, held_positions[:0])
        )
    was_in = np.zeros(changed.size, dtype=bool)
    was_in[np.flatnonzero(known)[was]] = True
    kept = changed.placed.get(code)
    held = kept.held.copy() if kept is not None else np.full(changed.size, UNPLACED)
    goes = kept.goes.copy() if kept is not None else np.full(changed.size, UNPLACED)
    new = np.flatnonzero(was_in & (held == UNPLACED))
    if new.size:
        rows = changed.positions[new]
        held[new] = _places(top, stale, top.breakdown.score[rows], _amount(top, rows), rows)
    new = np.flatnonzero(now_in & (goes == UNPLACED))
    if new.size:
        goes[new] = _places(
            top, stale, changed.score[new], changed.amount[new], changed.positions[new]
        )
    changed.placed[code] = Placed(held, goes)
    skipped = np.sort(held[was_in])
    fresh = np.flatnonzero(now_in)
    before = goes[fresh]
    into = before - np.searchsorted(skipped, before, side="left")
    total = int(stale.size) - int(skipped.size) + int(fresh.size)
    return Cut(skipped, fresh, into, total, skipped.tolist(), into.tolist())


def merged_page(
    top: TopOrder, changed: Changed, code: int | None, offset: int, limit: int
) -> tuple[IntArray, FloatArray, int]:
    """Positions and scores of a page of Top (``code`` None: every category) of the kept
    order with the changed rows merged in, and how many products the whole order has.

    The kept order less the changed rows (S) is in order still: nothing else moved. Each
    changed row now in the category (F, in order) is placed in it by binary search on
    (score, evidence, position), as is each changed row the kept order holds here (D, to
    be skipped): once per row and category, carried to later generations while the row
    does not change (Placed), and once per generation and category the rest (Cut). A page
    is then cut from the two by index arithmetic, however deep."""
    stale = top.order if code is None else top.of_category(code)
    cut = changed.cuts.get(code)
    if cut is None:
        cut = _cut(top, changed, code, stale)
        changed.cuts[code] = cut
    skipped, fresh, into = cut.skipped, cut.fresh, cut.into
    if not skipped.size and not fresh.size:  # nothing changed here: the kept order's page
        page = stale[offset : offset + limit]
        return page.astype(np.int64), top.breakdown.score[page], cut.total
    kept_size = int(stale.size) - int(skipped.size)
    into_list, skipped_list = cut.into_list, cut.skipped_list

    def first_of_s(at: int) -> int:  # the first element of S at merged index >= at
        lo, hi = 0, kept_size
        while lo < hi:
            mid = (lo + hi) // 2
            if mid + bisect.bisect_right(into_list, mid) < at:
                lo = mid + 1
            else:
                hi = mid
        return lo

    s0, s1 = first_of_s(offset), first_of_s(offset + limit)
    # S's elements s0 .. s1 - 1 in the kept order: from the first index t of it with
    # t - (skipped at or before t) >= s0, leaving the skipped out.
    lo, hi = 0, int(stale.size)
    while lo < hi:
        mid = (lo + hi) // 2
        if mid - bisect.bisect_right(skipped_list, mid) < s0:
            lo = mid + 1
        else:
            hi = mid
    window = np.arange(lo, min(lo + (s1 - s0) + int(skipped.size), int(stale.size)))
    window = window[~_among(window, skipped)][: s1 - s0]
    from_kept = stale[window]
    s_range = np.arange(s0, s0 + window.size)
    kept_at = s_range + np.searchsorted(into, s_range, side="right")
    fresh_at = into + np.arange(into.size)
    on_page = np.flatnonzero((fresh_at >= offset) & (fresh_at < offset + limit))
    positions = np.concatenate((from_kept, changed.positions[fresh[on_page]]))
    score = np.concatenate((top.breakdown.score[from_kept], changed.score[fresh[on_page]]))
    order = np.argsort(np.concatenate((kept_at, fresh_at[on_page])), kind="stable")
    return positions[order].astype(np.int64), score[order], cut.total


def _amount(top: TopOrder, positions: IntArray) -> FloatArray:
    """The evidence of these products when the order was computed (the tie-break)."""
    e = top.snapshot.evidence
    total = e.rating_count[positions] + e.likes[positions] + e.dislikes[positions]
    return np.asarray(total, dtype=np.float64)


def _before(
    score: Any, amount: Any, position: Any, than_score: Any, than_amount: Any, than_position: Any
) -> Any:
    """Whether the first key ranks before the second, as rank_order ranks: higher score,
    then more evidence, then earlier position (numbers, or arrays element by element)."""
    return (score > than_score) | (
        (score == than_score)
        & ((amount > than_amount) | ((amount == than_amount) & (position < than_position)))
    )


def _places(
    top: TopOrder,
    stale: IntArray,
    score: FloatArray,
    amount: FloatArray,
    position: IntArray,
) -> IntArray:
    """For each key (score, amount, position), how many rows of ``stale`` (positions in
    rank_order's order of the kept order's keys) rank before it: binary searches, all at
    once (one at a time for a few keys: numpy's cost per call would dominate)."""
    base_score = top.breakdown.score
    if position.size <= 4:
        e = top.snapshot.evidence
        found = []
        for s, a, p in zip(score.tolist(), amount.tolist(), position.tolist(), strict=True):
            first, last = 0, int(stale.size)
            while first < last:
                half = (first + last) // 2
                at = int(stale[half])
                ra = float(e.rating_count[at] + e.likes[at] + e.dislikes[at])
                if _before(float(base_score[at]), ra, at, s, a, p):
                    first = half + 1
                else:
                    last = half
            found.append(first)
        return np.array(found, dtype=np.int64)
    lo = np.zeros(position.size, dtype=np.int64)
    hi = np.full(position.size, stale.size, dtype=np.int64)
    while True:
        searching = lo < hi
        if not searching.any():
            return lo
        mid = (lo + hi) // 2
        row = stale[np.minimum(mid, stale.size - 1)]
        earlier = _before(base_score[row], _amount(top, row), row, score, amount, position)
        lo = np.where(searching & earlier, mid + 1, lo)
        hi = np.where(searching & ~earlier, mid, hi)


DEFAULT_TOP_LIMIT = 20


def page_size(profile: Profile, limit: int) -> int:
    """The Top page size: as asked, or the profile's default; within the profile's maximum."""
    most = profile.limits.top_max_limit
    if limit == 0:
        default = profile.limits.top_default_limit or DEFAULT_TOP_LIMIT
        return default if most is None else min(default, most)
    if most is not None and limit > most:
        raise InvalidArgument(
            [("limit", f"must be at most {most} with profile {profile.name!r} (got {limit})")]
        )
    return limit


def encode_page_token(offset: int, category: str, profile: str) -> str:
    raw = json.dumps({"o": offset, "c": category, "p": profile}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(token: str, category: str, profile: str) -> int:
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        offset = data["o"]
        ok = (
            isinstance(offset, int)
            and not isinstance(offset, bool)  # (JSON true is no offset)
            and offset >= 0
            and data["c"] == category
            and data["p"] == profile
        )
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeEncodeError):
        ok = False
    if not ok:
        raise InvalidArgument(
            [("page_token", "not a token returned by Top for this category and profile")]
        )
    return int(offset)
