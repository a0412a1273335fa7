"""The attack benchmark's made-up history and attacks (ranking.integrity_evaluation)."""

from __future__ import annotations

import numpy as np

from reviewrank.ranking.integrity_evaluation import (
    COVER_VOTES,
    HORIZON_DAYS,
    SLOW_DAYS,
    attack,
    honest_history,
)

PRODUCTS = 40


def small_history(seed: int = 0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    index = rng.integers(0, PRODUCTS, 2000)
    return honest_history(
        index, rng.integers(1, 6, 2000), rng.random(2000) < 0.8, np.arange(PRODUCTS) % 3, rng
    )


def test_honest_reviews_fall_between_their_products_listing_and_now() -> None:
    history = small_history()

    listed = history.listed[history.log.product]
    assert np.all((listed <= history.log.time) & (history.log.time <= HORIZON_DAYS))


def test_honest_accounts_review_one_product_or_many() -> None:
    history = small_history()

    per_account = np.bincount(history.log.user)
    assert 1 == per_account[per_account > 0].min()
    assert per_account.max() >= 5


def test_fast_shilling_adds_k_five_star_likes_from_new_accounts_within_the_hour() -> None:
    history = small_history()

    attacked = attack(history, "fast shilling", 50, 7, np.random.default_rng(1))

    new = slice(history.log.size, None)
    assert 50 == np.unique(attacked.log.user[new]).size
    assert not np.isin(attacked.log.user[new], history.log.user).any()
    assert (5, True, 7) == (attacked.stars[new].min(), bool(attacked.liked[new].all()),
                            int(attacked.log.product[new].max()))  # fmt: skip
    assert HORIZON_DAYS - attacked.log.time[new].min() <= 1 / 24


def test_slow_shilling_accounts_cast_cover_votes_before_their_own() -> None:
    history = small_history()

    attacked = attack(history, "slow shilling", 20, 7, np.random.default_rng(2))

    user = attacked.log.user[history.log.size :]
    time = attacked.log.time[history.log.size :]
    shill_time = dict(zip(user[:20].tolist(), time[:20].tolist(), strict=True))
    cover = [(u, t) for u, t in zip(user[20:].tolist(), time[20:].tolist(), strict=True)]
    assert 20 * COVER_VOTES == len(cover)
    assert all(t <= shill_time[u] for u, t in cover)
    assert HORIZON_DAYS - time[:20].min() <= SLOW_DAYS
