"""The poll fitter's pace (service/app/poll_fitter.py, paced_wait): a tenth of a core, the
last fit's cost scaled by how much the votes in force grew since."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reviewrank.service.app.poll_fitter import paced_wait
from reviewrank.service.app.priors import COST_SHARE

costs = st.floats(0.0, 100.0)
weights = st.integers(0, 10**9)


@given(cost=costs, weight=weights)
def test_votes_that_did_not_grow_keep_the_rule_of_the_priors(cost: float, weight: int) -> None:
    assert max(0.05, cost / COST_SHARE) == paced_wait(cost, weight, weight, 0.05)


@given(cost=st.floats(0.01, 100.0), then=st.integers(1, 10**6), factor=st.integers(2, 50))
def test_votes_grown_some_times_wait_as_many_times_longer(
    cost: float, then: int, factor: int
) -> None:
    assert factor * cost / COST_SHARE == paced_wait(cost, then, then * factor, 0.0)


@given(cost=costs, then=weights, now=weights)
def test_fewer_votes_never_bring_the_next_fit_forward(cost: float, then: int, now: int) -> None:
    assert paced_wait(cost, then, min(then, now), 0.05) == paced_wait(cost, then, then, 0.05)
