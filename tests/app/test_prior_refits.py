"""When a fitted prior is refitted (service/app/priors.py), and who waits for it."""

from __future__ import annotations

import threading
import time

import pytest

from reviewrank.ranking.profiles import PriorSpec
from reviewrank.service.app import priors as priors_module
from reviewrank.service.app.catalogue import Catalogue
from reviewrank.service.app.priors import FittedPrior, PriorResolver
from tests.helpers import product_row

AUTO = PriorSpec(mean=None, strength=None)


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
