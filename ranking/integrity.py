"""How much each vote weighs in the scores, so that bought or coordinated votes move a
ranking less than honest ones (issue 23): evidence about the product's own rate of votes
(bursts) and about the voters in a burst (standing).

A *vote* is one voice of a user on a product at a time (a rating, a like or a dislike).
Its weight w = trust × damping lies in [0, 1] and multiplies what it adds to the
product's sums (ratings, Σ stars, the star histogram, likes, dislikes); the vote itself
is kept and counted as before. Times are in days; a vote dated after ``now`` weighs 0.

**Standing** of a voter at a time, from their votes before it:

    standing = clip((a − Y) / A, 0, 1) · clip((d − F) / D, 0, 1)

a the days since the voter's first vote, d the distinct products they voted on, Y
``young_days``, A ``trust_age_days``, F ``few_products``, D ``trust_products``; 1 for a
vote the shop marks as a verified purchase. Both age and breadth are needed, since
either alone is cheap to fake (an old account with one vote; a new one with cover votes
on many products): with the defaults, 0 for an account younger than a month or with one
product, 1 at three months and six products. New accounts with few reviews are where
review spam concentrates (N. Jindal, B. Liu, "Opinion spam and analysis", WSDM 2008; A.
Mukherjee et al., "Spotting opinion spammers using behavioral footprints", KDD 2013: the
account's activity window and review count among the behavioural features).

A lone vote's trust is w₀ + (1 − w₀)·standing at the vote, w₀ ``new_voter_weight``: 1
by default, because most honest voters of a long-tailed shop are new accounts with one
review (on the demo's made-up history, w₀ = 0.5 moved a category's top-20 product by 59
places: a product of one review passes or drops behind the whole crowd of products with
the same one review on any change of weight). Standing acts in crowds, below.

**Bursts** of a product: for each vote at time t and each window length w in
``windows_days`` (shortest first), x the product's votes in (t − w, t] that are not in
a burst of a shorter window. The product's rate has a Gamma posterior from its votes in
the ``baseline_days`` before the window (n_B over e_B days listed), its prior the
category's median rate r_c (of its products with a vote) over E₀ = ``prior_days``:
shape n_B + r_c·E₀, rate e_B + E₀. The window is a burst when it holds at least
``min_burst_votes`` and P(X ≥ x) < α / |windows| under the negative-binomial predictive
count of that posterior (a scan over windows ending at each vote, Bonferroni over the
lengths; M. Kulldorff, "A spatial scan statistic", 1997, in its simplest,
one-dimensional form). With q the predictive quantile at 1 − ``allowance`` (the most
votes the product's own rate brings in such a window but rarely), a vote in a burst is
damped to

    damping = f + (1 − f) · standing before the earliest window covering it,
    f = q / x, the least over the windows covering it:

a crowd of new accounts counts as about q votes (none, for a product that gets a vote a
month and a burst of an hour; zero rather than a little, because a product in a crowd of
equal scores passes the crowd on any positive weight), while the same crowd of
established buyers counts in full. The votes between two bursts of a product at most
``gap_days`` apart are damped as the more lenient of the two damps its own: an attack
spread thin, its clusters bursts and its lone votes between them not, is one crowd.

Bursts are found twice over the whole history: the second time, the product's baseline
leaves out the votes of its bursts that still damp (a month-long attack would raise its
own baseline). A burst stops damping ``age_out_days`` after its last vote: its votes then
count in full and in the baselines, as the product's normal by then (so an attack kept
up at a steady pace past its first month is not held), unless an admin dismissed it (it
keeps damping, and stays out of the baselines); an admin's confirmation makes its votes
count as any others (with the default w₀, in full) and no burst is found among them.
Decisions name a burst as listed: its product and the times of its first and last vote.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import betainc, nbdtrik

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

HOUR = 1.0 / 24.0
MAX_DAYS = 1e7  # vote times, listing times and now: finite, within this many days of 0


@dataclass(frozen=True)
class IntegritySettings:
    """The defences' settings (the defaults are conservative; see the module docstring)."""

    new_voter_weight: float = 1.0
    young_days: float = 30.0
    trust_age_days: float = 60.0
    few_products: int = 1
    trust_products: float = 5.0
    windows_days: tuple[float, ...] = (HOUR, 1.0, 7.0, 30.0)
    burst_alpha: float = 1e-6
    min_burst_votes: int = 3
    allowance: float = 0.1
    baseline_days: float = 180.0
    prior_days: float = 7.0
    age_out_days: float = 30.0
    gap_days: float = 7.0

    def __post_init__(self) -> None:
        if not 0.0 < self.new_voter_weight <= 1.0:
            raise ValueError("new_voter_weight must be in (0, 1]")
        scales = (
            self.trust_age_days, self.trust_products, self.baseline_days, self.prior_days,
            self.age_out_days,
        )  # fmt: skip
        if not all(math.isfinite(v) and v > 0 for v in scales):
            raise ValueError("trust, baseline, prior and age-out scales must be positive")
        if not (0 <= self.young_days < math.inf and self.few_products >= 0):
            raise ValueError("young_days and few_products must be non-negative")
        if not self.windows_days or not all(0 < w <= 365 for w in self.windows_days):
            raise ValueError("windows_days must hold lengths in (0, 365] days")
        if not (0 < self.burst_alpha < 1 and 0 < self.allowance < 1):
            raise ValueError("burst_alpha and allowance must be in (0, 1)")
        if not 2 <= self.min_burst_votes <= 1000:
            raise ValueError("min_burst_votes must be 2 to 1000")


DEFAULT_SETTINGS = IntegritySettings()


# The negative binomial of r successes at success probability p (failures counted), by
# scipy.special rather than scipy.stats, which takes about half a second to import: its
# CDF at k is the regularised incomplete beta I_p(r, k + 1).
def nb_tail(x: FloatArray, r: FloatArray, p: FloatArray) -> FloatArray:
    """P(X ≥ x) for whole x ≥ 1: 1 − I_p(r, x) = I_(1−p)(x, r)."""
    tail: FloatArray = betainc(x, r, 1.0 - p)
    return tail


def nb_quantile(q: float, r: FloatArray, p: FloatArray) -> FloatArray:
    """The least whole k with P(X ≤ k) ≥ q: from the continuous inverse (nbdtrik), then
    moved by one where rounding put it on the wrong side."""
    k = np.maximum(np.ceil(np.nan_to_num(nbdtrik(q, r, p), nan=0.0)), 0.0)
    below = np.maximum(k - 1.0, 0.0)
    k = np.where((k >= 1) & (betainc(r, below + 1.0, p) >= q), below, k)
    quantile: FloatArray = np.where(betainc(r, k + 1.0, p) < q, k + 1.0, k)
    return quantile


Burst = tuple[int, float, float]  # (product, first vote's time, last vote's time)


@dataclass(frozen=True)
class Decisions:
    """An admin's decisions on bursts, each naming a burst as it was listed (product,
    first and last vote time): confirmed (the votes of the product within that time
    count in full, and no burst is found among them) or dismissed (a burst found over
    any of them stays damped, never ageing out)."""

    confirmed: tuple[Burst, ...] = ()
    dismissed: tuple[Burst, ...] = ()


NO_DECISIONS = Decisions()


@dataclass(frozen=True)
class VoteLog:
    """Votes, one element per vote: the product (an index), the voter (an index), the
    time in days, and whether the shop marked it a verified purchase."""

    product: IntArray
    user: IntArray
    time: FloatArray
    verified: BoolArray

    @classmethod
    def of(
        cls,
        product: npt.ArrayLike,
        user: npt.ArrayLike,
        time: npt.ArrayLike,
        verified: npt.ArrayLike | None = None,
    ) -> VoteLog:
        p = np.asarray(product, dtype=np.int64)
        u = np.asarray(user, dtype=np.int64)
        t = np.asarray(time, dtype=np.float64)
        v = np.zeros(p.shape, np.bool_) if verified is None else np.asarray(verified, np.bool_)
        if not (p.ndim == 1 and p.shape == u.shape == t.shape == v.shape):
            raise ValueError("product, user, time and verified must be 1-d of one length")
        if p.size and (p.min() < 0 or u.min() < 0):
            raise ValueError("product and user indices must be non-negative")
        if not np.all(np.abs(t) <= MAX_DAYS):
            raise ValueError(f"vote times must be finite days within ±{MAX_DAYS:g}")
        if u.size:  # voters numbered densely (memory goes by the largest number)
            u = np.unique(u, return_inverse=True)[1].astype(np.int64).reshape(u.shape)
        return cls(p, u, t, v)

    @property
    def size(self) -> int:
        return int(self.product.size)


@dataclass(frozen=True)
class Bursts:
    """The bursts found, one element per burst (a run of a product's votes, in time,
    that burst windows cover): its product, first and last vote time, votes, the most
    votes its product's rate expected in one of those windows, and the least damping of
    its votes; and ``damping``, each vote's in the log's order (1 outside every burst)."""

    product: IntArray
    start: FloatArray
    end: FloatArray
    votes: IntArray
    expected: FloatArray
    least: FloatArray
    damping: FloatArray


def _standing(days: FloatArray, distinct: IntArray, settings: IntegritySettings) -> FloatArray:
    """Standing from an account's age and the distinct products it voted on: both are
    needed (either alone is cheap to fake: an old account with one vote, or a new one
    with cover votes on many products)."""
    age = np.clip((days - settings.young_days) / settings.trust_age_days, 0.0, 1.0)
    breadth = np.clip((distinct - settings.few_products) / settings.trust_products, 0.0, 1.0)
    value: FloatArray = age * breadth
    return value


def standing(log: VoteLog, settings: IntegritySettings = DEFAULT_SETTINGS) -> FloatArray:
    """Each vote's voter standing at the vote (see the module docstring): from the
    voter's first vote and the distinct products they voted on up to and with it."""
    if not log.size:
        return np.zeros(0)
    at_vote = _VoterHistory(log, settings).standing(log.user, log.time, with_then=True)
    result: FloatArray = np.where(log.verified, 1.0, at_vote)
    return result


def trust(stand: FloatArray, settings: IntegritySettings = DEFAULT_SETTINGS) -> FloatArray:
    """A lone vote's weight by its voter's standing: w₀ + (1 − w₀)·standing."""
    w0 = settings.new_voter_weight
    weight: FloatArray = w0 + (1.0 - w0) * stand
    return weight


class _VoterHistory:
    """Each voter's first vote and the times they first voted on each product: their
    standing at any time, from their votes before it."""

    def __init__(self, log: VoteLog, settings: IntegritySettings) -> None:
        self._settings = settings
        self._first = np.full(int(log.user.max()) + 1, np.inf)
        np.minimum.at(self._first, log.user, log.time)
        order = np.lexsort((log.time, log.product, log.user))
        user, product, time = log.user[order], log.product[order], log.time[order]
        fresh = np.r_[True, (user[1:] != user[:-1]) | (product[1:] != product[:-1])]
        self._low = float(time.min())
        self._span = float(time.max()) - self._low + 2.0
        self._keys = np.sort(user[fresh] * self._span + (time[fresh] - self._low))

    def standing(self, user: IntArray, at: FloatArray, with_then: bool = False) -> FloatArray:
        """These voters' standing at ``at``, from their votes before it (and, with
        ``with_then``, at it)."""
        base = user * self._span
        then = np.searchsorted(
            self._keys, base + (at - self._low), "right" if with_then else "left"
        )
        distinct = then - np.searchsorted(self._keys, base, side="left")
        result: FloatArray = _standing(at - self._first[user], distinct, self._settings)
        return result


def category_rates(log: VoteLog, listed: FloatArray, category: IntArray, now: float) -> FloatArray:
    """Each product's reference rate r_c: the median, over the products of its category
    listed before ``now`` and voted on, of votes per day listed (a product without a
    category, or of a category none of whose products has a vote: the catalogue's)."""
    n = listed.size
    votes = np.bincount(log.product[log.time <= now], minlength=n).astype(np.float64)
    rate = votes / np.maximum(now - listed, 1.0)
    live = (listed < now) & (votes > 0)
    out = np.full(n, float(np.median(rate[live])) if np.any(live) else 0.0)
    codes = np.asarray(category, dtype=np.int64)
    known = np.flatnonzero((codes >= 0) & live)
    if known.size:  # each category's median: its rates sorted, the middle one or two
        known = known[np.lexsort((rate[known], codes[known]))]
        code, start, size = np.unique(codes[known], return_index=True, return_counts=True)
        middle = (rate[known][start + (size - 1) // 2] + rate[known][start + size // 2]) / 2
        out[codes >= 0] = np.nan  # (a category none of whose products is listed yet)
        place = np.searchsorted(code, codes)
        found = (codes >= 0) & (place < code.size)
        found[found] = code[place[found]] == codes[found]
        out[found] = middle[place[found]]
        out[np.isnan(out)] = float(np.median(rate[live]))
    return out


@dataclass(frozen=True)
class _Sorted:
    """The votes up to ``now`` by product and time: ``key`` sorts them in one array
    (products a span apart that no window reaches across), ``order`` maps them back."""

    order: IntArray
    product: IntArray
    time: FloatArray
    key: FloatArray


def _sorted(log: VoteLog, now: float, listed: FloatArray, settings: IntegritySettings) -> _Sorted:
    order = np.lexsort((log.time, log.product))
    order = order[log.time[order] <= now]
    product, time = log.product[order], log.time[order]
    if not order.size:
        return _Sorted(order, product, time, time)
    low = min(float(time.min()), float(listed.min()))
    span = float(time.max()) - low + 2 * (max(settings.windows_days) + settings.baseline_days) + 1
    return _Sorted(order, product, time, product * span + (time - low))


@dataclass
class _Found:
    """What a scan found, per sorted vote: the least f of the burst windows covering it
    (inf: none), the votes its product's rate expected in one of them, and its
    damping."""

    least: FloatArray
    expected: FloatArray
    damping: FloatArray

    @classmethod
    def none(cls, size: int) -> _Found:
        return cls(np.full(size, np.inf), np.zeros(size), np.ones(size))

    @property
    def covered(self) -> BoolArray:
        result: BoolArray = np.isfinite(self.least)
        return result


def find_bursts(
    log: VoteLog,
    now: float,
    listed: FloatArray,
    reference_rate: FloatArray,
    settings: IntegritySettings = DEFAULT_SETTINGS,
    decisions: Decisions = NO_DECISIONS,
) -> Bursts:
    """The bursts among the votes up to ``now`` that still damp (see the module
    docstring); ``listed``: each product's listing time, ``reference_rate``: r_c.

    Bursts are found over the whole history, so that one that aged out still sets its
    votes apart from the windows after it (else a month's window after an aged-out crowd
    finds the crowd again, with the honest votes beside it); ageing out lifts its
    damping, and its votes count in the baselines again, as normal by then (leaving them
    out made a popular product's launch set its whole life apart)."""
    damping = np.ones(log.size)
    votes = _sorted(log, now, listed, settings)
    if not votes.order.size:
        return _no_bursts(damping)
    history = _VoterHistory(log, settings)
    confirmed = _within(votes, decisions.confirmed)
    dismissed = _within(votes, decisions.dismissed)
    found = _Found.none(votes.order.size)
    abnormal = np.zeros(votes.order.size, np.bool_)
    for _ in range(2):  # the second scan's baselines leave out the first's live bursts
        found = _scan(votes, log, history, listed, reference_rate, settings, abnormal,
                      confirmed)  # fmt: skip
        runs = _runs(votes, found, max(settings.windows_days))
        live = np.array(
            [votes.time[high] >= now - settings.age_out_days or dismissed[low : high + 1].any()
             for low, high in runs.tolist()], dtype=np.bool_,
        )  # fmt: skip
        abnormal = np.zeros(votes.order.size, np.bool_)
        for low, high in runs[live].tolist():
            abnormal[low : high + 1] = True
    if not np.any(live):
        return _no_bursts(damping)
    for low, high in runs[~live].tolist():  # aged out: counted in full again
        found.damping[low : high + 1] = 1.0
    runs = runs[live]
    _between(runs, votes, log, history, settings, found)
    damping[votes.order] = found.damping
    return _bursts(runs, votes, found, damping)


def _within(votes: _Sorted, bursts: tuple[Burst, ...]) -> BoolArray:
    """Which sorted votes fall in these bursts (their product, between their times): a
    range of the sorted votes each, found by bisection (a mask over every vote per burst
    took 3 s more per pass at 2,000 decisions on 0.7 million votes)."""
    marks = np.zeros(votes.order.size + 1, np.int64)
    for product, start, end in bursts:
        first, last = np.searchsorted(votes.product, [product, product + 1])
        times = votes.time[first:last]
        low = first + int(np.searchsorted(times, start, side="left"))
        high = first + int(np.searchsorted(times, end, side="right"))
        if low < high:
            marks[low] += 1
            marks[high] -= 1
    inside: BoolArray = np.cumsum(marks[:-1]) > 0
    return inside


def _runs(votes: _Sorted, found: _Found, longest: float) -> IntArray:
    """The bursts as (first, last) sorted votes: runs of covered votes of one product,
    none more than ``longest`` (the longest window) after the one before it (no window
    holds both: an old burst aged out and a new one with no vote between are two)."""
    covered = found.covered
    index = np.flatnonzero(covered)
    if not index.size:
        return np.zeros((0, 2), dtype=np.int64)
    opens = np.r_[
        True,
        (np.diff(index) > 1)
        | (np.diff(votes.product[index]) != 0)
        | (np.diff(votes.time[index]) > longest),
    ]
    starts = index[opens]
    ends = index[np.r_[opens[1:], True]]
    runs: IntArray = np.stack([starts, ends], axis=1)
    return runs


def _between(
    runs: IntArray,
    votes: _Sorted,
    log: VoteLog,
    history: _VoterHistory,
    s: IntegritySettings,
    found: _Found,
) -> None:
    """Damps the votes between two bursts of a product at most ``gap_days`` apart as
    the more lenient of the two damps its votes: one attack spread thin, in bursts with
    lone votes between, is one crowd."""
    for (low, high), (next_low, next_high) in itertools.pairwise(runs.tolist()):
        if votes.product[low] != votes.product[next_low]:
            continue
        if votes.time[next_low] - votes.time[high] > s.gap_days:
            continue
        least = max(found.least[low : high + 1].min(), found.least[next_low : next_high + 1].min())
        inside = np.arange(high + 1, next_low)
        at = np.full(inside.size, votes.time[low])
        _damp(found.damping, inside, np.full(inside.size, least), at, votes, log, history)


def _damp(
    damping: FloatArray,
    inside: IntArray,
    least: FloatArray,
    at: FloatArray,
    votes: _Sorted,
    log: VoteLog,
    history: _VoterHistory,
) -> None:
    """Damps these sorted votes of crowds that formed at ``at`` to f + (1 − f)·standing,
    their voters' standing from before then (a verified purchase: 1)."""
    voters = votes.order[inside]
    stand = np.where(log.verified[voters], 1.0, history.standing(log.user[voters], at))
    damping[inside] = np.minimum(damping[inside], least + (1.0 - least) * stand)


def _range_min(values: FloatArray, low: IntArray, high: IntArray) -> FloatArray:
    """min(values[low:high]) for each pair (high > low), by a sparse table."""
    table = [values]
    while 2 ** len(table) <= values.size:
        step = 2 ** (len(table) - 1)
        table.append(np.minimum(table[-1][:-step], table[-1][step:]))
    level = np.floor(np.log2(high - low)).astype(np.int64)
    out = np.empty(low.size)
    for k in np.unique(level):
        at = level == k
        rows = table[k]
        out[at] = np.minimum(rows[low[at]], rows[high[at] - 2**k])
    return out


def _scan(
    votes: _Sorted,
    log: VoteLog,
    history: _VoterHistory,
    listed: FloatArray,
    reference_rate: FloatArray,
    s: IntegritySettings,
    abnormal: BoolArray,
    confirmed: BoolArray,
) -> _Found:
    """One scan of find_bursts; ``abnormal`` votes count in no baseline, ``confirmed``
    ones (an admin's) in no burst."""
    key, product, time = votes.key, votes.product, votes.time
    found = _Found.none(key.size)
    skipped = np.r_[0, np.cumsum(abnormal)]
    explained = confirmed.copy()  # in a burst of a shorter window, or confirmed
    everyone = np.arange(key.size)
    for w in sorted(s.windows_days):
        first = np.searchsorted(key, key - w, side="right")
        counted = np.r_[0, np.cumsum(explained)]
        x = everyone - first + 1 - (counted[1:] - counted[first])
        base = np.searchsorted(key, key - w - s.baseline_days, side="right")
        before = first - base - (skipped[first] - skipped[base])
        exposure = np.clip(time - w - listed[product], 0.0, s.baseline_days)
        # The rate's posterior Gamma(shape, days) and the window's predictive count.
        shape = np.maximum(before + reference_rate[product] * s.prior_days, 1e-9)
        days = exposure + s.prior_days
        ends = np.flatnonzero(x >= s.min_burst_votes)
        if ends.size:
            tail = nb_tail(x[ends], shape[ends], days[ends] / (days[ends] + w))
            ends = ends[tail < s.burst_alpha / len(s.windows_days)]
        if not ends.size:
            continue
        f = np.minimum(
            nb_quantile(1.0 - s.allowance, shape[ends], days[ends] / (days[ends] + w)) / x[ends],
            1.0,
        )
        # The windows covering vote i are ends[lo:hi]: both their first and last votes
        # rise with their index.
        starts = first[ends]
        lo = np.searchsorted(ends, everyone, side="left")
        hi = np.searchsorted(starts, everyone, side="right")
        inside = np.flatnonzero((lo < hi) & ~explained)
        if not inside.size:
            continue
        least = _range_min(f, lo[inside], hi[inside])
        # Standing from before the crowd formed: before the earliest window covering it.
        at = time[starts[lo[inside]]]
        _damp(found.damping, inside, least, at, votes, log, history)
        found.least[inside] = np.minimum(found.least[inside], least)
        found.expected[inside] = (shape[ends] * w / days[ends])[hi[inside] - 1]
        explained[inside] = True
    return found


def _no_bursts(damping: FloatArray) -> Bursts:
    none = np.zeros(0)
    return Bursts(none.astype(np.int64), none, none, none.astype(np.int64), none, none, damping)


def _bursts(runs: IntArray, votes: _Sorted, found: _Found, damping: FloatArray) -> Bursts:
    """The runs as Bursts (each one's expected votes: the most any of its votes'
    windows expected)."""
    if not runs.size:
        return _no_bursts(damping)
    low, high = runs[:, 0], runs[:, 1]
    return Bursts(
        votes.product[low],
        votes.time[low],
        votes.time[high],
        high - low + 1,
        np.array([found.expected[a : b + 1].max() for a, b in runs.tolist()]),
        np.array([found.damping[a : b + 1].min() for a, b in runs.tolist()]),
        damping,
    )


def vote_weights(
    log: VoteLog,
    now: float,
    listed: FloatArray,
    category: IntArray,
    settings: IntegritySettings = DEFAULT_SETTINGS,
    decisions: Decisions = NO_DECISIONS,
) -> tuple[FloatArray, Bursts]:
    """Each vote's weight at ``now``, trust × damping (see the module docstring; a vote
    dated after ``now`` weighs 0: not yet cast), and the bursts that damp."""
    listed = np.asarray(listed, dtype=np.float64)
    category = np.asarray(category, dtype=np.int64)
    if not (math.isfinite(now) and abs(now) <= MAX_DAYS):
        raise ValueError(f"now must be finite days within ±{MAX_DAYS:g}")
    if listed.ndim != 1 or category.shape != listed.shape:
        raise ValueError("listed and category must be 1-d, one element per product")
    if not np.all(np.abs(listed) <= MAX_DAYS):
        raise ValueError(f"listing times must be finite days within ±{MAX_DAYS:g}")
    if log.size and int(log.product.max()) >= listed.size:
        raise ValueError("a vote names a product beyond listed and category")
    weights = np.ones(log.size)
    if not log.size:
        return weights, _no_bursts(weights)
    rates = category_rates(log, listed, category, now)
    bursts = find_bursts(log, now, listed, rates, settings, decisions)
    weights = trust(standing(log, settings), settings) * bursts.damping
    return np.where(log.time <= now, weights, 0.0), bursts
