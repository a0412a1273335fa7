"""A profile's prior fitted by marginal likelihood (estimator = "marginal"), through
a real server: the prior in force is the fit of the catalogue's histogram."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from reviewrank.ranking.marginal import fit_marginal_prior
from reviewrank.service.app import priors as priors_module
from reviewrank.v1 import admin_pb2, ranking_pb2
from tests.conftest import Client
from tests.helpers import batch, rating

WEIGHTS = """
default_profile = "marginal"

[profiles.marginal]
weights = { bayesian_average = 1 }
prior = { mean = "auto", strength = "auto", estimator = "marginal" }
"""
STARS = {"a": [5, 5, 4, 5], "b": [2, 1], "c": [3], "d": [4, 4, 5], "e": [1, 2, 2]}


def test_the_marginal_prior_in_force_is_the_fit_of_the_catalogue(
    start_server: Callable[..., Client], tmp_path: Path
) -> None:
    weights = tmp_path / "marginal.toml"
    weights.write_text(WEIGHTS)
    client = start_server(weights=weights)
    events = [rating(p, f"{p}-u{i}", s) for p, stars in STARS.items() for i, s in enumerate(stars)]
    client.feedback.SubmitBatch(batch(*events))

    request = ranking_pb2.GetProductStatsRequest(product_ids=["c"])
    [stats] = client.ranking.GetProductStats(request, timeout=10).stats

    histogram = np.array([np.bincount(np.array(s) - 1, minlength=5) for s in STARS.values()])
    expected = fit_marginal_prior(histogram)
    assert "auto/marginal" == stats.prior_source
    assert (expected.mean, expected.strength) == pytest.approx(
        (stats.prior_mean, stats.prior_strength)
    )


def test_an_unknown_estimator_is_refused_naming_its_key(client: Client) -> None:
    toml = WEIGHTS.replace('"marginal" }', '"likelihood" }')

    with pytest.raises(grpc.RpcError) as refused:
        client.admin.ReloadWeights(admin_pb2.ReloadWeightsRequest(toml=toml), timeout=10)

    assert grpc.StatusCode.INVALID_ARGUMENT == refused.value.code()
    assert "profiles.marginal.prior.estimator" in (refused.value.details() or "")


def _prior_of(client: Client) -> tuple[float, float]:
    request = ranking_pb2.GetProductStatsRequest(product_ids=["c"])
    [stats] = client.ranking.GetProductStats(request, timeout=10).stats
    return stats.prior_mean, stats.prior_strength


def test_a_refit_that_moves_no_score_by_the_tolerance_leaves_the_prior_in_force(
    start_server: Callable[..., Client], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(priors_module, "EXACT_BELOW", 0)  # this catalogue counts as large
    monkeypatch.setattr(priors_module, "PRIOR_TOLERANCE", 0.2)
    monkeypatch.setattr(priors_module, "PRIOR_HOLD_SECONDS", 0.0)
    monkeypatch.setattr(priors_module, "PRIOR_URGENT", float("inf"))
    monkeypatch.setattr(priors_module, "kept_seconds", lambda cost, floor: 0.0)  # no wait
    weights = tmp_path / "marginal.toml"
    weights.write_text(WEIGHTS)
    client = start_server(weights=weights)
    events = [rating(p, f"{p}-u{i}", s) for p, stars in STARS.items() for i, s in enumerate(stars)]
    client.feedback.SubmitBatch(batch(*events))
    before = _prior_of(client)

    # On a large catalogue refits run on the server's background thread: the calls read
    # the prior in force meanwhile, so each reading is repeated for a while.
    client.feedback.SubmitBatch(batch(rating("f", "f-u0", 4)))  # moves C by under 0.2
    kept = {_prior_of(client) for _ in _for_seconds(1.0)}
    client.feedback.SubmitBatch(batch(*(rating("g", f"g-u{i}", 5) for i in range(40))))
    moved = next((p for _ in _for_seconds(10.0) if (p := _prior_of(client)) != before), before)

    assert {before} == kept
    assert moved[0] > before[0] + 0.2


def _for_seconds(seconds: float) -> Iterator[None]:
    """Yields every 20 ms for this long."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        yield
        time.sleep(0.02)
