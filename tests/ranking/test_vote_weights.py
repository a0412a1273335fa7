"""Vote weights against manipulation (ranking.integrity): bursts against a product's own
rate, the standing of the voters in them, ageing out and admins' decisions."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reviewrank.ranking.integrity import (
    DEFAULT_SETTINGS,
    HOUR,
    NO_DECISIONS,
    Decisions,
    IntegritySettings,
    VoteLog,
    _range_min,
    _sorted,
    _within,
    category_rates,
    nb_quantile,
    nb_tail,
    standing,
    vote_weights,
)

NOW = 730.0
QUIET, BUSY, TARGET = 0, 1, 2  # products: a vote a month, twenty a day, the attacked one
PRODUCTS = 9


def history(seed: int = 0) -> tuple[list[int], list[int], list[float]]:
    """Two years of honest votes at steady rates, each from an account of its own except
    a pool of 50 established buyers who voted on the quiet products long ago."""
    rng = np.random.default_rng(seed)
    products, users, times = [], [], []
    for product, per_day in ((QUIET, 1 / 30), (BUSY, 20.0), (TARGET, 1 / 30)):
        count = rng.poisson(per_day * NOW)
        products += [product] * count
        times += sorted(rng.uniform(0, NOW, count))
    users = list(range(1000, 1000 + len(products)))
    for buyer in range(50):  # established: first vote two years ago, on 6 products
        products += [3, 4, 5, 6, 7, 8]
        users += [buyer] * 6
        times += [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    return products, users, times


def weigh(
    extra: tuple[list[int], list[int], list[float]] = ([], [], []),
    now: float = NOW,
    verified: list[bool] | None = None,
    configured: IntegritySettings = DEFAULT_SETTINGS,
    decisions: Decisions = NO_DECISIONS,
) -> tuple[np.ndarray, int]:
    """Weights of the history plus ``extra`` votes; and where the extra votes start."""
    products, users, times = history()
    start = len(products)
    log = VoteLog.of(
        products + extra[0],
        users + extra[1],
        times + extra[2],
        None if verified is None else [False] * start + verified,
    )
    listed = np.zeros(PRODUCTS)
    category = np.zeros(PRODUCTS, dtype=np.int64)
    weights, _ = vote_weights(log, now, listed, category, configured, decisions)
    return weights, start


def crowd(k: int, product: int = TARGET, first_user: int = 100_000, end: float = NOW):
    """k votes on ``product`` from k accounts never seen before, within the hour."""
    times = list(np.linspace(end - HOUR * 0.9, end, k))
    return [product] * k, list(range(first_user, first_user + k)), times


def test_honest_votes_at_their_products_own_rates_are_not_damped() -> None:
    weights, _ = weigh()

    assert 1.0 == weights.min()


def test_an_hours_crowd_of_new_accounts_on_a_quiet_product_weighs_nothing() -> None:
    weights, start = weigh(crowd(50))

    assert 0.0 == weights[start:].max()


def test_the_same_crowd_of_established_buyers_counts_in_full() -> None:
    products, _, times = crowd(50)

    weights, start = weigh((products, list(range(50)), times))

    assert 1.0 == weights[start:].min()


def test_verified_purchases_in_a_burst_count_in_full() -> None:
    weights, start = weigh(crowd(50), verified=[True] * 25 + [False] * 25)

    assert (1.0, 0.0) == (weights[start : start + 25].min(), weights[start + 25 :].max())


def test_an_hours_burst_leaves_the_products_other_votes_alone() -> None:
    products = np.asarray(history()[0])

    weights, start = weigh(crowd(50))

    assert 1.0 == weights[:start][products == TARGET].min()


def test_a_busy_product_keeps_the_votes_its_own_rate_could_bring() -> None:
    weights, start = weigh(crowd(400, product=BUSY))

    # μ is about 20 / 24 votes an hour: a burst of 400 counts as the rate's rare most.
    assert 1.0 <= weights[start:].sum() <= 5.0


def test_an_aged_out_burst_is_not_joined_to_a_new_one_with_no_vote_between() -> None:
    old = crowd(50, product=8, first_user=200_000, end=300.0)
    new = crowd(50, product=8, first_user=300_000)

    weights, start = weigh(tuple(a + b for a, b in zip(old, new, strict=True)))  # type: ignore[arg-type]

    assert (1.0, 0.0) == (weights[start : start + 50].min(), weights[start + 50 :].max())


def test_a_burst_stops_damping_once_aged_out() -> None:
    aged = NOW + DEFAULT_SETTINGS.age_out_days + 1.0

    weights, start = weigh(crowd(50), now=aged)

    assert 1.0 == weights[start:].min()


def test_a_dismissed_burst_stays_damped_after_ageing_out() -> None:
    aged = NOW + DEFAULT_SETTINGS.age_out_days + 1.0

    dismissed = Decisions(dismissed=((TARGET, NOW - HOUR, NOW),))

    weights, start = weigh(crowd(50), now=aged, decisions=dismissed)

    assert 0.0 == weights[start:].max()


def test_a_confirmed_burst_counts_in_full() -> None:
    weights, start = weigh(crowd(50), decisions=Decisions(confirmed=((TARGET, NOW - HOUR, NOW),)))

    assert 1.0 == weights[start:].min()


def test_a_confirmation_covers_only_the_bursts_it_saw() -> None:
    later = crowd(50, first_user=200_000, end=NOW)
    earlier = crowd(50, end=NOW - 3.0)
    extra = tuple(a + b for a, b in zip(earlier, later, strict=True))

    confirmed = Decisions(confirmed=((TARGET, NOW - 3.0 - HOUR, NOW - 3.0),))

    weights, start = weigh(extra, decisions=confirmed)

    assert (1.0, 0.0) == (weights[start : start + 50].min(), weights[start + 50 :].max())


def test_an_attack_spread_thin_over_a_month_counts_as_a_few_votes() -> None:
    rng = np.random.default_rng(3)
    times = sorted(NOW - rng.uniform(0, 30, 50))
    extra = ([TARGET] * 50, list(range(100_000, 100_050)), times)

    weights, start = weigh(extra)

    assert weights[start:].sum() < 5.0


def test_lone_votes_between_two_bursts_of_a_product_are_damped_with_them() -> None:
    first, second = crowd(20, end=NOW - 3.0), crowd(20, first_user=200_000)
    lone = ([TARGET] * 2, [300_000, 300_001], [NOW - 2.0, NOW - 1.0])
    extra = tuple(a + b + c for a, b, c in zip(first, lone, second, strict=True))

    weights, start = weigh(extra)

    assert 0.0 == weights[start + 20 : start + 22].max()


def test_lone_votes_of_new_accounts_weigh_the_lone_vote_weight_when_set_below_one() -> None:
    configured = replace(DEFAULT_SETTINGS, new_voter_weight=0.5)

    weights, start = weigh(([QUIET], [99_999], [NOW - 1.0]), configured=configured)

    assert 0.5 == weights[start]


@settings(max_examples=60, deadline=None)
@given(
    age=st.floats(0, 400),
    older=st.floats(0, 400),
    products=st.integers(1, 30),
    more=st.integers(0, 30),
)
def test_standing_never_falls_with_age_or_products(
    age: float, older: float, products: int, more: int
) -> None:
    def stand(days: float, count: int) -> float:
        times = [0.0] * (count - 1) + [days]
        log = VoteLog.of(list(range(count)), [0] * count, times)
        return float(standing(log)[-1])

    assert stand(age, products) <= stand(age + older, products + more)
    assert 0.0 <= stand(age, products) <= 1.0


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    votes=st.integers(1, 300),
    products=st.integers(1, 8),
    users=st.integers(1, 40),
)
def test_weights_lie_between_zero_and_one(seed: int, votes: int, products: int, users: int) -> None:
    rng = np.random.default_rng(seed)
    log = VoteLog.of(
        rng.integers(0, products, votes),
        rng.integers(0, users, votes),
        rng.uniform(0, 60, votes) ** rng.uniform(0.2, 1.5),
        rng.random(votes) < 0.1,
    )

    weights, bursts = vote_weights(log, 60.0, np.zeros(products), np.zeros(products, np.int64))

    assert weights.shape == (votes,)
    assert np.all((weights >= 0) & (weights <= 1))
    assert np.all(bursts.damping[(weights < 1) & (log.time <= 60.0)] < 1)


@pytest.mark.parametrize(
    "change",
    [
        {"new_voter_weight": 0.0},
        {"allowance": 1.0},
        {"burst_alpha": 0.0},
        {"windows_days": ()},
        {"windows_days": (400.0,)},
        {"baseline_days": float("nan")},
        {"young_days": -1.0},
    ],
)
def test_settings_out_of_range_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        replace(DEFAULT_SETTINGS, **change)


def test_a_vote_log_of_unequal_columns_is_refused() -> None:
    with pytest.raises(ValueError, match="one length"):
        VoteLog.of([0, 1], [0], [0.0, 1.0])


def test_a_crowd_is_listed_as_one_burst_of_its_product_window_and_votes() -> None:
    products, users, times = history()
    extra = crowd(50)
    log = VoteLog.of(products + extra[0], users + extra[1], times + extra[2])

    _, bursts = vote_weights(log, NOW, np.zeros(PRODUCTS), np.zeros(PRODUCTS, dtype=np.int64))

    found = [
        (int(p), round(float(s), 4), round(float(e), 4), int(v), float(d))
        for p, s, e, v, d in zip(
            bursts.product, bursts.start, bursts.end, bursts.votes, bursts.least, strict=True
        )
    ]
    assert [(TARGET, round(min(extra[2]), 4), round(NOW, 4), 50, 0.0)] == found
    assert bursts.expected[0] < 0.01


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.floats(0, 1), min_size=1, max_size=70),
    data=st.data(),
)
def test_range_minimum_equals_the_slices_minimum(values: list[float], data: st.DataObject) -> None:
    pairs = data.draw(
        st.lists(
            st.tuples(st.integers(0, len(values) - 1), st.integers(1, len(values))).map(
                lambda p: (min(p[0], p[1] - 1), max(p[0] + 1, p[1]))
            ),
            min_size=1,
            max_size=20,
        )
    )
    low = np.array([p[0] for p in pairs])
    high = np.array([p[1] for p in pairs])
    array = np.array(values)

    found = _range_min(array, low, high)

    assert [min(values[a:b]) for a, b in pairs] == found.tolist()


def test_a_vote_dated_after_now_weighs_nothing_yet() -> None:
    weights, start = weigh(crowd(50, end=NOW + 1.0))

    assert 0.0 == weights[start:].max()


@settings(max_examples=60, deadline=None)
@given(
    rates=st.lists(st.integers(0, 40), min_size=1, max_size=30),
    codes=st.lists(st.integers(-1, 4), min_size=30, max_size=30),
)
def test_reference_rates_are_each_categorys_median(rates: list[int], codes: list[int]) -> None:
    n = len(rates)
    log = VoteLog.of(np.repeat(np.arange(n), rates), np.arange(sum(rates)), np.zeros(sum(rates)))
    category = np.array(codes[:n])

    found = category_rates(log, np.full(n, -9.0), category, 1.0)

    per_day = np.array(rates) / 10.0
    overall = per_day[per_day > 0]
    for i in range(n):
        members = per_day[(category == category[i]) & (per_day > 0)]
        if category[i] < 0 or not members.size:
            members = overall
        expected = float(np.median(members)) if members.size else 0.0
        assert expected == pytest.approx(found[i])


def test_an_aged_out_burst_leaves_the_honest_vote_after_it_alone() -> None:
    old_crowd = crowd(50, end=NOW - DEFAULT_SETTINGS.age_out_days - 1.0)
    honest = ([TARGET], [300_000], [NOW - 5.0])
    extra = tuple(a + b for a, b in zip(old_crowd, honest, strict=True))

    weights, start = weigh(extra)

    assert 1.0 == weights[start:].min()


def test_a_steady_attack_stays_damped_after_its_first_month_only_if_dismissed() -> None:
    times = list(np.linspace(NOW - 90.0, NOW, 50))
    extra = ([TARGET] * 50, list(range(100_000, 100_050)), times)
    first_month = Decisions(dismissed=((TARGET, NOW - 90.0, NOW - 60.0),))

    undecided, start = weigh(extra)
    dismissed, _ = weigh(extra, decisions=first_month)

    # Undecided, its first month aged out into the product's normal rate; dismissed, it
    # stays out of the baseline, and the months after it stay bursts.
    assert (50.0, True) == (undecided[start:].sum(), dismissed[start:].sum() < 10.0)


def test_cover_votes_on_many_products_buy_a_new_account_no_standing() -> None:
    products, users, times = crowd(50)
    for account in range(100_000, 100_050):  # 15 other products each, two hours before
        products += [3 + k % 6 for k in range(15)]
        users += [account] * 15
        times += [NOW - 2 / 24] * 15

    weights, start = weigh((products, users, times))

    assert 0.0 == weights[start : start + 50].max()


def test_the_first_reviews_of_a_product_in_a_sparse_category_count_in_full() -> None:
    rng = np.random.default_rng(5)
    reviewed = 40  # of 100 products listed a year ago, the rest never voted on
    products = list(np.repeat(np.arange(reviewed), rng.integers(1, 4, reviewed)))
    times = list(rng.uniform(0, 365, len(products)))
    products += [50, 50]
    times += [355.0, 365.0]
    log = VoteLog.of(products, range(len(products)), times)

    weights, _ = vote_weights(log, 365.0, np.zeros(100), np.zeros(100, dtype=np.int64))

    assert 1.0 == weights[-2:].min()


def test_dismissing_a_burst_leaves_an_older_aged_one_aged() -> None:
    older = crowd(50, end=NOW - 300.0)
    newer = crowd(50, first_user=200_000)
    extra = tuple(a + b for a, b in zip(older, newer, strict=True))
    dismissed = Decisions(dismissed=((TARGET, NOW - HOUR, NOW),))

    weights, start = weigh(extra, decisions=dismissed)

    assert (1.0, 0.0) == (weights[start : start + 50].min(), weights[start + 50 :].max())


@pytest.mark.parametrize(
    ("listed", "now", "problem"),
    [
        (np.full(PRODUCTS, np.nan), NOW, "listing times"),
        (np.zeros(PRODUCTS), float("inf"), "now"),
        (np.zeros(PRODUCTS - 1), NOW, "listed and category"),
    ],
)
def test_weights_refuse_listing_times_and_now_that_are_not_days(
    listed: np.ndarray, now: float, problem: str
) -> None:
    products, users, times = history()
    log = VoteLog.of(products, users, times)

    with pytest.raises(ValueError, match=problem):
        vote_weights(log, now, listed, np.zeros(listed.size, dtype=np.int64))


_SHAPES = st.floats(1e-3, 1e3)
_PROBABILITIES = st.floats(1e-4, 1.0 - 1e-4)


@given(st.integers(1, 2000), _SHAPES, _PROBABILITIES)
@settings(max_examples=300, deadline=None)
def test_the_negative_binomial_tail_is_scipy_stats(x: int, r: float, p: float) -> None:
    from scipy.stats import nbinom

    expected = nbinom.sf(x - 1, r, p)

    assert expected == pytest.approx(nb_tail(np.array([x]), np.array([r]), np.array([p]))[0],
                                     rel=1e-9, abs=1e-300)  # fmt: skip


@given(st.floats(0.01, 0.999), _SHAPES, _PROBABILITIES)
@settings(max_examples=300, deadline=None)
def test_the_negative_binomial_quantile_is_scipy_stats(q: float, r: float, p: float) -> None:
    from scipy.stats import nbinom

    assert nbinom.ppf(q, r, p) == nb_quantile(q, np.array([r]), np.array([p]))[0]


@given(
    st.lists(st.tuples(st.integers(0, 3), st.floats(0, 100)), min_size=1, max_size=60),
    st.lists(st.tuples(st.integers(0, 4), st.floats(0, 100), st.floats(0, 30)), max_size=8),
)
@settings(max_examples=200, deadline=None)
def test_the_votes_within_decided_bursts_are_those_a_mask_finds(
    cast: list[tuple[int, float]], decided: list[tuple[int, float, float]]
) -> None:
    log = VoteLog.of([p for p, _ in cast], list(range(len(cast))), [t for _, t in cast])
    votes = _sorted(log, 1000.0, np.zeros(5), DEFAULT_SETTINGS)
    bursts = tuple((p, start, start + length) for p, start, length in decided)
    expected = np.zeros(votes.order.size, np.bool_)
    for product, start, end in bursts:
        expected |= (votes.product == product) & (votes.time >= start) & (votes.time <= end)

    assert expected.tolist() == _within(votes, bursts).tolist()
