"""When a fitted prior is refitted (service/app/priors.py), and who waits for it."""

from __future__ import annotations

import threading
import time

import pytest

from reviewrank.ranking.hierarchy import fit_hierarchical_prior
from reviewrank.ranking.marginal import fit_marginal_prior
from reviewrank.ranking.profiles import PriorSpec
from reviewrank.ranking.rating_groups import rating_groups
from reviewrank.service.app import priors as priors_module
from reviewrank.service.app.catalogue import Catalogue
from reviewrank.service.app.priors import FittedPrior, PriorResolver
from reviewrank.service.app.refresher import Refresher
from tests.helpers import product_row

AUTO = PriorSpec(mean=None, strength=None)
MARGINAL = PriorSpec(mean=None, strength=None, estimator="marginal")
BY_CATEGORY = PriorSpec(mean=None, strength=None, per_category=True)


def _write(catalogue: Catalogue, idx: int, stars: int, count: int) -> None:
    seq = catalogue.seq + 1
    catalogue.apply([product_row(idx, stars, count, seq)], seq)


def _seeded() -> Catalogue:
    catalogue = Catalogue()
    for idx in range(1, 41):
        _write(catalogue, idx, 1 + idx % 5, 3 + idx % 7)
    return catalogue


def test_a_cheap_fit_is_refitted_at_the_next_change() -> None:
    catalogue = _seeded()
    resolver = PriorResolver(catalogue, refresh_seconds=3600)
    before = resolver.fitted(AUTO)

    _write(catalogue, 41, 5, 500)

    after = resolver.fitted(AUTO)
    assert after is not before
    assert after.global_prior.mean > before.global_prior.mean


def test_an_expensive_fit_is_kept_ten_times_its_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(priors_module, "CHEAP_FIT_SECONDS", 0.0)  # every fit is expensive
    catalogue = _seeded()
    resolver = PriorResolver(catalogue, refresh_seconds=1.0)
    fit = resolver.fitted(AUTO)
    _write(catalogue, 41, 5, 500)

    def aged(seconds: float) -> FittedPrior:  # a fit that took 0.5 s, made `seconds` ago
        made = FittedPrior(fit.seq, time.monotonic() - seconds, 0.5, fit.global_prior, None, None)
        resolver._fits[AUTO] = made
        resolver._checked[AUTO] = priors_module._Check(made.seq, made.fitted_at, made.cost)
        return made

    young = aged(4.8)
    kept = resolver.fitted(AUTO) is young
    old = aged(5.2)
    refitted = resolver.fitted(AUTO) is not old

    assert (True, True) == (kept, refitted)


def test_callers_use_the_fit_they_have_while_another_refits_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(priors_module, "CHEAP_FIT_SECONDS", 0.0)
    monkeypatch.setattr(priors_module, "COST_SHARE", 1e12)  # stale after any write
    catalogue = _seeded()
    resolver = PriorResolver(catalogue, refresh_seconds=0.0)
    first = resolver.fitted(AUTO)
    _write(catalogue, 41, 5, 500)
    # The refit, held until released: a refit of a large catalogue in progress.
    fit, started, release = resolver._fit, threading.Event(), threading.Event()

    def slow_fit(spec: PriorSpec, previous: FittedPrior | None) -> FittedPrior:
        started.set()
        release.wait(10)
        return fit(spec, previous)

    monkeypatch.setattr(resolver, "_fit", slow_fit)
    refitting = threading.Thread(target=resolver.fitted, args=(AUTO,))
    refitting.start()
    assert started.wait(10)
    answers: list[FittedPrior] = []
    caller = threading.Thread(target=lambda: answers.append(resolver.fitted(AUTO)))

    caller.start()
    caller.join(5)
    waited = caller.is_alive()
    release.set()
    refitting.join(10)
    caller.join(10)

    assert (False, [first]) == (waited, answers)
    assert resolver.fitted(AUTO).global_prior.mean > first.global_prior.mean


def test_the_catalogue_keeps_the_sums_of_its_histograms_through_writes() -> None:
    catalogue = _seeded()
    for seq_offset, (idx, stars, count) in enumerate([(3, 5, 9), (41, 2, 4), (3, 1, 1)]):
        _write(catalogue, idx, stars, count + seq_offset)

    kept = catalogue.rating_groups()[1]
    expected = rating_groups(catalogue.histograms().histogram)

    assert (expected.counts.tolist(), expected.star_sum_squared.tolist()) == (
        kept.counts.tolist(),
        kept.star_sum_squared.tolist(),
    )
    assert (expected.products.tolist(), expected.square_sum) == (
        kept.products.tolist(),
        kept.square_sum,
    )


def _large(
    monkeypatch: pytest.MonkeyPatch, tolerance: float, hold: float, urgent: float = 0.5
) -> tuple[Catalogue, PriorResolver, FittedPrior]:
    """A seeded catalogue counted as large, refitted after any write, with these limits on
    putting a refit in force; its resolver and the first fit."""
    monkeypatch.setattr(priors_module, "EXACT_BELOW", 0)
    monkeypatch.setattr(priors_module, "COST_SHARE", 1e12)  # refits wait refresh_seconds: 0
    monkeypatch.setattr(priors_module, "PRIOR_TOLERANCE", tolerance)
    monkeypatch.setattr(priors_module, "PRIOR_HOLD_SECONDS", hold)
    monkeypatch.setattr(priors_module, "PRIOR_URGENT", urgent)
    catalogue = _seeded()
    resolver = PriorResolver(catalogue, refresh_seconds=0.0)
    return catalogue, resolver, resolver.fitted(MARGINAL)


def test_on_a_large_catalogue_a_refit_that_moves_nothing_that_matters_is_not_put_in_force(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    catalogue, resolver, before = _large(monkeypatch, tolerance=0.5, hold=0.0, urgent=1.0)

    _write(catalogue, 41, 5, 1)  # one rating more: the prior moves by far less than 0.5

    assert before is resolver.fitted(MARGINAL)
    assert catalogue.generation == resolver._checked[MARGINAL].seq  # (it was refitted)


def test_on_a_large_catalogue_a_refit_that_moves_a_score_more_than_the_tolerance_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    catalogue, resolver, before = _large(monkeypatch, tolerance=0.5, hold=0.0, urgent=1.0)

    _write(catalogue, 41, 5, 500)  # a product of 500 five-star ratings: C moves about 1

    after = resolver.fitted(MARGINAL)
    assert after.global_prior.mean > before.global_prior.mean + 0.5


def test_below_the_large_catalogue_size_every_refit_is_put_in_force() -> None:
    catalogue = _seeded()
    resolver = PriorResolver(catalogue, refresh_seconds=0.0)
    before = resolver.fitted(MARGINAL)

    _write(catalogue, 41, 4, 1)

    assert before is not resolver.fitted(MARGINAL)


def test_the_usual_prior_is_fitted_from_the_kept_sums_as_from_every_row() -> None:
    catalogue = _seeded()
    _write(catalogue, 7, 5, 30)

    fitted = PriorResolver(catalogue).fitted(MARGINAL).global_prior

    assert fit_marginal_prior(catalogue.histograms().histogram) == fitted


def test_the_per_category_prior_is_fitted_from_the_kept_sums_as_from_every_row() -> None:
    catalogue = _seeded()
    _write(catalogue, 7, 5, 30)
    seq = catalogue.seq + 1
    moved = [product_row(i, 2, 12 + i, seq)._replace(category="tops") for i in (8, 9)]
    catalogue.apply([*moved, product_row(50, 1, 4, seq)], seq)  # two change category
    data = catalogue.histograms()

    fitted = PriorResolver(catalogue).fitted(BY_CATEGORY)

    expected = fit_hierarchical_prior(data.histogram, data.category_code, data.n_categories)
    assert 2 == data.n_categories
    assert (list(expected.means), list(expected.strengths), expected.catalogue) == (
        list(fitted.category_means),
        list(fitted.category_strengths),
        fitted.global_prior,
    )


def _held(monkeypatch: pytest.MonkeyPatch, stars: int, count: int) -> bool:
    """Whether a refit after this write stays out of force while the fit is young."""
    catalogue, resolver, before = _large(monkeypatch, tolerance=0.001, hold=3600.0)
    _write(catalogue, 41, stars, count)
    return before is resolver.fitted(MARGINAL)


def test_a_refit_that_matters_waits_until_the_fit_in_force_is_old_enough(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _held(monkeypatch, 5, 3)  # C moves by well over 0.001, under 0.5


def test_a_refit_that_moves_a_score_by_more_than_the_urgent_shift_goes_in_force_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert not _held(monkeypatch, 5, 500)


def test_on_a_large_catalogue_even_a_cheap_refit_waits_the_refresh_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(priors_module, "EXACT_BELOW", 0)
    catalogue = _seeded()
    resolver = PriorResolver(catalogue, refresh_seconds=3600.0)
    resolver.fitted(MARGINAL)
    checked = resolver._checked[MARGINAL]

    _write(catalogue, 41, 5, 500)
    resolver.fitted(MARGINAL)

    assert checked is resolver._checked[MARGINAL]


def test_on_a_large_catalogue_a_refit_runs_in_the_background_and_then_goes_in_force(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(priors_module, "EXACT_BELOW", 0)
    monkeypatch.setattr(priors_module, "COST_SHARE", 1e12)  # refits wait refresh_seconds: 0
    monkeypatch.setattr(priors_module, "PRIOR_HOLD_SECONDS", 0.0)
    catalogue = _seeded()
    background = Refresher()
    resolver = PriorResolver(catalogue, refresh_seconds=0.0, background=background)
    before = resolver.fitted(BY_CATEGORY)
    started = threading.Event()
    release = threading.Event()
    background.submit("held", lambda: (started.set(), release.wait(10)))  # busy meanwhile
    started.wait(10)

    _write(catalogue, 41, 5, 500)  # moves C by about 1
    served = resolver.fitted(BY_CATEGORY)
    release.set()
    background.wait_idle(10)

    try:
        assert served is before  # the caller did not wait for the refit
        assert resolver.fitted(BY_CATEGORY).global_prior.mean > before.global_prior.mean + 0.5
    finally:
        background.close()
