"""Time decay kept incrementally in a growing scale, with rebasing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from reviewrank.ranking.decay import (
    REBASE_AFTER_HALF_LIVES,
    decay_factor,
    decay_weight,
    decayed_value,
    growth_weight,
    needs_rebase,
    rebase,
)

DAY = 86_400.0
half_lives = st.floats(min_value=1.0, max_value=1e8)
votes = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=5.0),  # value, e.g. stars
        st.floats(min_value=0.0, max_value=2_000.0),  # time in half-lives
    ),
    min_size=1,
    max_size=60,
)


def test_weight_of_a_new_vote_is_one() -> None:
    assert 1.0 == float(decay_weight(0.0, 30 * DAY))


def test_weight_after_one_half_life_is_a_half() -> None:
    assert 0.5 == pytest.approx(float(decay_weight(30 * DAY, 30 * DAY)))


def test_weights_are_vectorised_over_ages() -> None:
    assert [1.0, 0.5, 0.25] == decay_weight([0.0, DAY, 2 * DAY], DAY).tolist()


def test_rejects_a_non_positive_half_life() -> None:
    with pytest.raises(ValueError, match="half-life"):
        decay_weight(1.0, 0.0)


@settings(max_examples=200, deadline=None)
@given(
    st.floats(min_value=-1e9, max_value=1e9),
    st.floats(min_value=-1e9, max_value=1e9),
    st.floats(min_value=0.0, max_value=1e9),
    half_lives,
)
def test_growth_times_decay_factor_is_the_decay_weight(
    reference: float, event: float, lag: float, half_life: float
) -> None:
    """2^((t − r)/h) · 2^(−(now − r)/h) = 0.5^((now − t)/h), within the range of float64."""
    now = event + lag
    assume(abs(event - reference) / half_life < 500 and abs(now - reference) / half_life < 500)
    combined = float(growth_weight(event, reference, half_life)) * decay_factor(
        now, reference, half_life
    )
    assert float(decay_weight(now - event, half_life)) == pytest.approx(combined, rel=1e-9)


@settings(max_examples=150, deadline=None)
@given(votes, half_lives, st.floats(min_value=0.0, max_value=50.0))
def test_incremental_sums_with_rebasing_equal_a_direct_recomputation(
    stream: list[tuple[float, float]], half_life: float, wait: float
) -> None:
    stream = sorted(stream, key=lambda vote: vote[1])
    reference, stored = 0.0, 0.0
    for value, t in stream:
        time = t * half_life
        if needs_rebase(time, reference, half_life):
            stored = float(rebase(stored, reference, time, half_life))
            reference = time
        stored += value * float(growth_weight(time, reference, half_life))
    now = (stream[-1][1] + wait) * half_life
    values = np.array([v for v, _ in stream])
    ages = now - np.array([t for _, t in stream]) * half_life
    direct = float(np.sum(values * decay_weight(ages, half_life)))
    incremental = float(decayed_value(stored, now, reference, half_life))
    # Weights under 1e-200 (hundreds of half-lives old) underflow differently on the two
    # paths; they are zero for any ranking purpose.
    assert direct == pytest.approx(incremental, rel=1e-9, abs=1e-200)


@settings(max_examples=150, deadline=None)
@given(
    st.floats(min_value=0.0, max_value=1e6),
    st.floats(min_value=-300.0, max_value=300.0),
    st.floats(min_value=0.0, max_value=300.0),
    half_lives,
)
def test_rebasing_preserves_the_decayed_value(
    stored: float, moved_by: float, now_after: float, half_life: float
) -> None:
    old, new = 0.0, moved_by * half_life
    now = max(old, new) + now_after * half_life
    before = float(decayed_value(stored, now, old, half_life))
    after = float(decayed_value(rebase(stored, old, new, half_life), now, new, half_life))
    assert before == pytest.approx(after, rel=1e-9, abs=1e-300)


def test_rebase_is_vectorised_over_sums() -> None:
    assert [2.0, 4.0] == rebase([1.0, 2.0], 0.0, -DAY, DAY).tolist()


def test_rebase_is_due_after_the_documented_number_of_half_lives() -> None:
    due = REBASE_AFTER_HALF_LIVES * DAY
    assert (False, True) == (needs_rebase(due, 0.0, DAY), needs_rebase(due + 1.0, 0.0, DAY))


def test_growing_weights_overflow_without_rebasing() -> None:
    with np.errstate(over="ignore"):
        assert np.isinf(growth_weight(1100 * DAY, 0.0, DAY))
