"""Poll strengths (ranking.polls): the MAP of the Luce model with its Gamma prior, checked
against choix, its recovery of simulated strengths, incremental updates, and edges."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from itertools import pairwise

import choix
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reviewrank.ranking.blend import Evidence, Prior, blend
from reviewrank.ranking.polls import (
    BallotFault,
    PollPrior,
    PollSets,
    PollVotes,
    ballot_faults,
    ballots_ok,
    checked_votes,
    group_polls,
    log_posterior,
    poll_fit,
    poll_score,
    poll_strengths,
)
from reviewrank.ranking.profiles import PriorSpec, Profile
from reviewrank.ranking.quality import kendall_tau
from reviewrank.ranking.signals_evaluation import simulate_polls


def test_strengths_equal_choix_mm_top1_with_alpha_the_prior_strength() -> None:
    rng = np.random.default_rng(0)
    votes = simulate_polls(rng.normal(0, 1, 30), 400, rng)
    data = [
        (int(c), [int(p) for p in votes.shown[votes.offsets[v] : votes.offsets[v + 1]] if p != c])
        for v, c in enumerate(votes.chosen)
    ]

    ours = np.log(poll_strengths(votes, 30, PollPrior(2.0), tolerance=1e-12, max_steps=20_000))
    theirs = choix.mm_top1(30, data, alpha=2.0, tol=1e-12, max_iter=20_000)

    assert pytest.approx(theirs, abs=1e-6) == (ours - ours.mean())


@pytest.mark.parametrize("seed", range(3))
def test_strengths_from_many_polls_order_products_like_the_true_strengths(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.normal(0.0, 1.0, 50)

    fitted = poll_strengths(simulate_polls(truth, 5000, rng), 50)

    assert kendall_tau(fitted, truth) > 0.7


def test_one_won_poll_does_not_top_products_that_won_steadily() -> None:
    # Product 0 won its only poll against 1; product 2 won 8 of 10 against 3.
    votes = PollVotes.of([([0, 1], 0)] + [([2, 3], 2)] * 8 + [([2, 3], 3)] * 2)

    strengths = poll_strengths(votes, 4)

    assert strengths[2] > strengths[0] > 1.0


def test_a_product_no_poll_showed_keeps_the_prior_strength_of_1() -> None:
    votes = PollVotes.of([([0, 1], 0), ([1, 2], 2)])

    assert 1.0 == poll_strengths(votes, 4)[3]


def test_a_product_shown_and_never_chosen_ends_below_1() -> None:
    votes = PollVotes.of([([0, 1], 0), ([0, 1, 2], 2)])

    assert poll_strengths(votes, 3)[1] < 1.0


def test_no_votes_give_every_product_the_prior_strength() -> None:
    votes = PollVotes.of([])

    assert [1.0, 1.0, 1.0] == poll_strengths(votes, 3).tolist()


def test_a_warm_started_update_needs_fewer_steps_than_a_cold_fit() -> None:
    rng = np.random.default_rng(5)
    truth = rng.normal(0.0, 1.0, 200)
    earlier = simulate_polls(truth, 3000, rng)
    later = PollVotes.of(
        [(earlier.shown[earlier.offsets[v] : earlier.offsets[v + 1]].tolist(), int(c))
         for v, c in enumerate(earlier.chosen)]
        + [([1, 2], 1), ([3, 4], 4)]
    )  # fmt: skip
    before = poll_strengths(earlier, 200, tolerance=1e-9, max_steps=5000)

    warm = _steps(later, 200, before)
    cold = _steps(later, 200, np.ones(200))

    assert warm < cold


def _steps(votes: PollVotes, n: int, start: np.ndarray) -> int:
    return poll_fit(votes, n, start=start, tolerance=1e-9, max_steps=5000)[1]


def test_score_is_one_half_at_the_prior_strength() -> None:
    assert [0.5] == poll_score([1.0]).tolist()


@pytest.mark.parametrize(
    "votes",
    [
        [([0], 0)],  # one product shown
        [(list(range(11)), 0)],  # eleven
        [([0, 0], 0)],  # a product twice
        [([0, 1], 2)],  # chosen not shown
        [([-1, 1], 1)],  # negative index
    ],
)
def test_malformed_votes_are_refused(votes: list[tuple[list[int], int]]) -> None:
    with pytest.raises(ValueError):
        PollVotes.of(votes)


def test_a_vote_beyond_n_products_is_refused() -> None:
    with pytest.raises(ValueError, match="beyond"):
        poll_strengths(PollVotes.of([([0, 5], 5)]), 3)


def _ballots(drawn: list[tuple[list[int], int]]) -> list[tuple[list[int], int]]:
    """Drawn (products shown, pick) pairs as votes: the pick-th product shown chosen."""
    return [(shown, shown[pick % len(shown)]) for shown, pick in drawn]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.integers(0, 7), min_size=2, max_size=4, unique=True), st.integers(0, 3)
        ),
        min_size=1,
        max_size=40,
    ),
    st.floats(0.1, 20.0),
)
def test_every_mm_step_raises_the_posterior_and_strengths_stay_positive(
    drawn: list[tuple[list[int], int]], strength: float
) -> None:
    votes = PollVotes.of(_ballots(drawn))
    prior = PollPrior(strength)
    gamma = np.ones(8)

    for _ in range(5):
        updated = poll_strengths(votes, 8, prior, start=gamma, max_steps=1)
        assert log_posterior(votes, updated, prior) >= log_posterior(votes, gamma, prior) - 1e-9
        gamma = updated

    assert np.all(gamma > 0) and np.all(np.isfinite(gamma))


drawn_votes = st.lists(
    st.tuples(st.lists(st.integers(0, 7), min_size=2, max_size=4, unique=True), st.integers(0, 3)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(drawn_votes, st.floats(0.1, 20.0), st.lists(st.floats(0.05, 20.0), min_size=8, max_size=8))
def test_one_mm_step_and_the_posterior_are_the_formulas_taken_vote_by_vote(
    drawn: list[tuple[list[int], int]], strength: float, start: list[float]
) -> None:
    _assert_step_and_posterior_are_the_formulas(_ballots(drawn), strength, start)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.integers(0, 7), min_size=2, max_size=4, unique=True),
            st.lists(st.tuples(st.integers(0, 3), st.randoms()), min_size=1, max_size=12),
        ),
        min_size=1,
        max_size=6,
    ),
    st.floats(0.1, 20.0),
    st.lists(st.floats(0.05, 20.0), min_size=8, max_size=8),
)
def test_polls_of_many_voters_step_as_the_formulas_taken_vote_by_vote(
    polls: list[tuple[list[int], list[tuple[int, random.Random]]]],
    strength: float,
    start: list[float],
) -> None:
    """Votes showing the same products (in any order) are one row of the step, weighed by
    their voters: the step and the posterior stay the formulas'."""
    pairs = []
    for shown, voters in polls:
        for pick, rng in voters:
            order = rng.sample(shown, len(shown))
            pairs.append((order, shown[pick % len(shown)]))

    _assert_step_and_posterior_are_the_formulas(pairs, strength, start)


def test_a_poll_shown_alike_to_its_voters_is_one_row_weighed_by_them() -> None:
    votes = PollVotes.of([([1, 2, 3], 1), ([3, 1, 2], 2), ([2, 4], 4), ([1, 2, 3], 3)] * 5)

    sets = group_polls(votes)
    shown, offsets, voters = sets.shown, sets.offsets, sets.voters

    assert [[1, 2, 3], [2, 4]] == [sorted(shown[a:b].tolist()) for a, b in pairwise(offsets)]
    assert voters is not None and [15.0, 5.0] == voters.tolist()


def test_votes_whose_sets_share_a_first_sum_but_differ_are_not_merged() -> None:
    votes = PollVotes.of([([1, 2], 1), ([3, 4], 3), ([1, 2], 2), ([3, 4], 4)] * 3)
    colliding = np.array([[0] * 5, [0, 1, 2, 3, 4]], dtype=np.uint64)  # first sums all 0

    sets = group_polls(votes, marks=colliding)

    assert (votes.shown.tolist(), votes.offsets.tolist(), None) == (
        sets.shown.tolist(),
        sets.offsets.tolist(),
        sets.voters,
    )


def _votes_of(pairs: list[tuple[list[int], int]]) -> PollVotes:
    return PollVotes.of(pairs) if pairs else PollVotes(*(np.zeros(n, np.int64) for n in (0, 1, 0)))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.permutations([1, 2, 3, 4, 5]), st.integers(2, 4)), min_size=0, max_size=40
    ),
    st.integers(0, 40),
    st.integers(0, 40),
)
def test_votes_added_to_a_grouping_are_grouped_as_all_of_them_afresh(
    drawn: list[tuple[list[int], int]], first: int, second: int
) -> None:
    pairs = [(order[:size], order[0]) for order, size in drawn]  # (sets from a few: repeats)
    cut, more = sorted((min(first, len(pairs)), min(second, len(pairs))))
    known = group_polls(_votes_of(pairs[:cut]))
    known = group_polls(_votes_of(pairs[:more]), known)

    grown = group_polls(_votes_of(pairs), known)

    assert _voters_by_set(group_polls(_votes_of(pairs))) == _voters_by_set(grown)


def _voters_by_set(sets: PollSets) -> dict[tuple[int, ...], float]:
    """Each product set's voters, what a step depends on (a grouping may merge them or
    not: below MERGE_SHARE of repeats, grouping every vote afresh does not)."""
    out: dict[tuple[int, ...], float] = {}
    for row, (a, b) in enumerate(pairwise(sets.offsets.tolist())):
        key = tuple(sorted(sets.shown[a:b].tolist()))
        out[key] = out.get(key, 0.0) + (1.0 if sets.voters is None else sets.voters[row])
    return out


def test_votes_added_to_a_grouping_are_grouped_from_it_not_afresh() -> None:
    earlier = [([1, 2, 3], 1), ([2, 4], 4)] * 5
    known = group_polls(PollVotes.of(earlier))

    grown = group_polls(PollVotes.of([*earlier, ([3, 2, 1], 2), ([5, 6], 6)]), known)

    assert grown.voters is not None and [6.0, 5.0, 1.0] == grown.voters.tolist()
    assert known.salts is not None and grown.salts is not None
    assert known.salts.tolist() == grown.salts.tolist()  # (afresh: salts of its own)


def test_an_added_vote_whose_first_sum_is_a_different_sets_groups_every_vote_afresh() -> None:
    colliding = np.array([[0] * 7, list(range(7))], dtype=np.uint64)  # first sums all 0
    earlier = [([1, 2], 1)] * 6
    known = group_polls(PollVotes.of(earlier), marks=colliding)

    grown = group_polls(PollVotes.of([*earlier, ([3, 4], 3)]), known)

    assert grown.voters is not None and [6.0, 1.0] == grown.voters.tolist()
    assert grown.marks is None  # grouped afresh, with marks of its own


def _assert_step_and_posterior_are_the_formulas(
    pairs: list[tuple[list[int], int]], strength: float, start: list[float]
) -> None:
    votes, prior, b = PollVotes.of(pairs), PollPrior(strength), strength
    wins = [sum(chosen == i for _, chosen in pairs) for i in range(8)]
    shown_in = [
        sum(1 / sum(start[j] for j in shown) for shown, _ in pairs if i in shown) for i in range(8)
    ]
    expected_step = [(b + wins[i]) / (b + shown_in[i]) for i in range(8)]
    expected_posterior = sum(
        math.log(start[chosen]) - math.log(sum(start[j] for j in shown)) for shown, chosen in pairs
    ) + sum(b * math.log(g) - b * g for g in start)

    stepped = poll_strengths(votes, 8, prior, start=np.array(start), max_steps=1)

    assert pytest.approx(expected_step, rel=1e-12) == stepped.tolist()
    assert pytest.approx(expected_posterior, rel=1e-12, abs=1e-9) == log_posterior(
        votes, start, prior
    )


@settings(max_examples=300, deadline=None)
@given(drawn_votes, st.floats(0.01, 30.0))
def test_a_fit_given_more_steps_never_ends_at_a_lower_posterior(
    drawn: list[tuple[list[int], int]], strength: float
) -> None:
    # (weak priors and lopsided votes are where a jump can overshoot: then it is not taken)
    votes = PollVotes.of(_ballots(drawn))
    prior = PollPrior(strength)

    posteriors = [
        log_posterior(votes, poll_strengths(votes, 8, prior, max_steps=k), prior)
        for k in range(1, 40)
    ]

    assert all(b >= a - 1e-9 for a, b in pairwise(posteriors))


@settings(max_examples=100, deadline=None)
@given(drawn_votes, st.floats(0.1, 20.0))
def test_the_fit_ends_where_a_plain_mm_step_no_longer_moves(
    drawn: list[tuple[list[int], int]], strength: float
) -> None:
    votes = PollVotes.of(_ballots(drawn))
    prior = PollPrior(strength)
    fitted = poll_strengths(votes, 8, prior, tolerance=1e-11, max_steps=100_000)

    stepped = poll_strengths(votes, 8, prior, start=fitted, max_steps=1)

    np.testing.assert_allclose(fitted, stepped, rtol=1e-9)


def _chain() -> PollVotes:
    """Products 0-30 each met only their neighbours: information crosses the chain slowly."""
    return PollVotes.of([([i, i + 1], i if k % 3 else i + 1) for i in range(30) for k in range(20)])


def test_the_jumps_reach_a_chain_of_products_in_a_fraction_of_plain_mm_steps() -> None:
    votes = _chain()
    gamma, plain = np.ones(31), 0
    while True:  # plain MM: one step at a time
        stepped = poll_strengths(votes, 31, start=gamma, max_steps=1)
        plain += 1
        if np.max(np.abs(stepped - gamma) / gamma) <= 1e-9:
            break
        gamma = stepped

    fitted, steps = poll_fit(votes, 31, tolerance=1e-9, max_steps=100_000)

    assert steps * 3 < plain
    np.testing.assert_allclose(stepped, fitted, rtol=1e-6)


def _polled(strengths: list[float]) -> tuple[Evidence, Profile, Prior]:
    n = len(strengths)
    zeros = np.zeros(n, dtype=np.int64)
    evidence = Evidence(
        zeros, zeros, zeros, zeros, np.zeros((n, 5), dtype=np.int64),
        poll_strength=np.asarray(strengths),
    )  # fmt: skip
    profile = Profile("p", {"polls": 1.0}, PriorSpec(mean=3.0, strength=2.0), 0.95)
    return evidence, profile, Prior(mean=3.0, strength=2.0, source="fixed")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(1e-6, 1e6), min_size=1, max_size=20))
def test_the_polls_component_is_the_strength_over_one_plus_it(strengths: list[float]) -> None:
    breakdown = blend(*_polled(strengths))

    [polls] = breakdown.components
    expected = np.asarray(strengths) / (np.asarray(strengths) + 1)
    assert ("polls", 1.0) == (polls.name, polls.weight)
    assert expected == pytest.approx(breakdown.score, rel=1e-12)


def test_the_polls_component_orders_products_by_strength() -> None:
    breakdown = blend(*_polled([0.5, 2.0, 1.0]))

    assert [1, 2, 0] == np.argsort(-breakdown.score).tolist()


def test_without_poll_strengths_the_polls_component_is_dropped() -> None:
    evidence, profile, prior = _polled([1.0])
    profile = replace(profile, weights={"polls": 0.5, "bayesian_average": 0.5})

    breakdown = blend(replace(evidence, poll_strength=None), profile, prior)

    assert ["bayesian_average"] == [c.name for c in breakdown.components]


@given(st.lists(st.sampled_from("abcdefghijkl"), max_size=12), st.sampled_from("abcdefghijklm"))
def test_a_ballot_has_no_fault_exactly_when_the_model_takes_its_votes(
    shown: list[str], chosen: str
) -> None:
    index = {product: i for i, product in enumerate("abcdefghijklm")}
    try:
        checked_votes(
            np.array([index[p] for p in shown]),
            np.array([0, len(shown)]),
            np.array([index[chosen]]),
        )
        taken = True
    except ValueError:
        taken = False

    assert taken == (ballot_faults(shown, chosen) == ())


@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from("abcdefghijkl"), max_size=12), st.sampled_from("abcdefghijklm")
        ),
        max_size=6,
    )
)
def test_a_batch_of_ballots_is_taken_exactly_when_none_has_a_fault(
    votes: list[tuple[list[str], str]],
) -> None:
    shown, chosen = [s for s, _ in votes], [c for _, c in votes]

    assert all(ballot_faults(s, c) == () for s, c in votes) == ballots_ok(shown, chosen)


def test_a_batch_of_ballots_needs_a_choice_for_each() -> None:
    with pytest.raises(ValueError, match="as many votes"):
        ballots_ok([["a", "b"]], [])


def test_each_fault_of_a_ballot_is_named() -> None:
    assert (BallotFault.SIZE, BallotFault.NOT_SHOWN) == ballot_faults(["a"], "b")
    assert (BallotFault.TWICE,) == ballot_faults(["a", "a", "b"], "a")
    assert () == ballot_faults(["a", "b"], "b")


def test_strengths_stay_positive_numbers_under_a_prior_of_almost_no_strength() -> None:
    votes = PollVotes.of([([i, i + 1], i) for i in range(29)])  # each beats the next
    prior = PollPrior(1e-300)

    fitted = poll_strengths(votes, 30, prior, tolerance=1e-10, max_steps=10_000)

    assert np.all(fitted > 0) and np.isfinite(log_posterior(votes, fitted, prior))


@pytest.mark.parametrize("strength", [0.0, -1.0, float("nan"), float("inf")])
def test_a_prior_strength_that_is_not_a_positive_number_is_refused(strength: float) -> None:
    with pytest.raises(ValueError, match="positive number"):
        PollPrior(strength)
