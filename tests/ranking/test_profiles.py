"""Weights profiles: parsing, defaults, and every invalid key named by its path."""

from __future__ import annotations

from typing import Any

import pytest

from reviewrank.ranking.profiles import (
    DecayNeed,
    ProfileError,
    SharesSpec,
    ShareWeighing,
    decay_needs,
    parse_profiles,
)
from reviewrank.ranking.shares import ShareRatePrior


def document(**profile: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"weights": {"bayesian_average": 3, "wilson": 1}}
    base.update(profile)
    return {"default_profile": "p", "profiles": {"p": base}}


def violations(doc: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ProfileError) as info:
        parse_profiles(doc)
    return dict(info.value.violations)


def test_weights_are_rescaled_to_sum_to_one() -> None:
    profile = parse_profiles(document()).profiles["p"]

    assert {"bayesian_average": 0.75, "wilson": 0.25} == profile.weights


def test_defaults_fit_the_prior_and_use_95_percent_confidence() -> None:
    profile = parse_profiles(document()).profiles["p"]

    assert (None, None, False, 0.95, None) == (
        profile.prior.mean,
        profile.prior.strength,
        profile.prior.per_category,
        profile.confidence,
        profile.half_life_days,
    )


def test_fixed_prior_and_options_are_read() -> None:
    doc = document(
        prior={"mean": 3.5, "strength": 20},
        confidence=0.9,
        half_life_days=30,
        stars_prior={"pseudo_count": 2},
        likes_prior={"alpha": 3, "beta": 1},
    )

    profile = parse_profiles(doc).profiles["p"]

    assert (3.5, 20.0, 0.9, 30.0, 2.0, (3.0, 1.0)) == (
        profile.prior.mean,
        profile.prior.strength,
        profile.confidence,
        profile.half_life_days,
        profile.stars_pseudo_count,
        profile.likes_prior,
    )
    assert 30 * 86400.0 == profile.half_life_seconds


def test_empty_profile_name_selects_the_default() -> None:
    profiles = parse_profiles(document())

    assert "p" == profiles.get("").name  # type: ignore[union-attr]
    assert profiles.get("other") is None


@pytest.mark.parametrize(
    ("profile", "key"),
    [
        ({"weights": {"wilson": -1, "bayesian_average": 1}}, "profiles.p.weights.wilson"),
        ({"weights": {"wilson": 0, "bayesian_average": 0}}, "profiles.p.weights"),
        ({"weights": {"wilson": "much"}}, "profiles.p.weights.wilson"),
        ({"weights": {"wilson": float("nan")}}, "profiles.p.weights.wilson"),
        ({"weights": {"popularity": 1}}, "profiles.p.weights.popularity"),
        ({"weights": {"wilson": True}}, "profiles.p.weights.wilson"),
        ({"weights": 3}, "profiles.p.weights"),
        ({"confidence": 1.0}, "profiles.p.confidence"),
        ({"confidence": 0}, "profiles.p.confidence"),
        ({"confidence": -0.5}, "profiles.p.confidence"),
        ({"prior": {"mean": 6}}, "profiles.p.prior.mean"),
        ({"prior": {"mean": "median"}}, "profiles.p.prior.mean"),
        ({"prior": {"strength": -1}}, "profiles.p.prior.strength"),
        ({"prior": {"strength": "lots"}}, "profiles.p.prior.strength"),
        ({"prior": {"strength": 1e308}}, "profiles.p.prior.strength"),  # (C·m overflowed)
        ({"prior": {"per_category": "yes"}}, "profiles.p.prior.per_category"),
        (
            {"prior": {"mean": 4, "strength": 5, "per_category": True}},
            "profiles.p.prior.per_category",
        ),
        ({"prior": {"min_category_ratings": 0}}, "profiles.p.prior.min_category_ratings"),
        ({"prior": {"shape": 1}}, "profiles.p.prior.shape"),
        ({"half_life_days": 0}, "profiles.p.half_life_days"),
        ({"stars_prior": {"pseudo_count": 0}}, "profiles.p.stars_prior.pseudo_count"),
        ({"likes_prior": {"alpha": -1}}, "profiles.p.likes_prior.alpha"),
        ({"likes_prior": {"gamma": 1}}, "profiles.p.likes_prior.gamma"),
        ({"colour": "red"}, "profiles.p.colour"),
        ({"shares": {"half_life_days": 0}}, "profiles.p.shares.half_life_days"),
        ({"shares": {"half_life_days": 1e9}}, "profiles.p.shares.half_life_days"),
        ({"shares": {"prior": "flat"}}, "profiles.p.shares.prior"),
        ({"shares": {"prior": {"shape": 0}}}, "profiles.p.shares.prior.shape"),
        ({"shares": {"prior": {"rate_days": -5}}}, "profiles.p.shares.prior.rate_days"),
        ({"shares": {"prior": {"mean": 1}}}, "profiles.p.shares.prior.mean"),
        ({"shares": {"decay": 1}}, "profiles.p.shares.decay"),
        ({"shares": {"prior": {"shape": 1}}}, "profiles.p.shares.prior.rate_days"),
        ({"shares": 30}, "profiles.p.shares"),
        ({"channels": {"store": -1}}, "profiles.p.channels.store"),
        ({"channels": {"store": 1001}}, "profiles.p.channels.store"),
        ({"channels": {"store": "twice"}}, "profiles.p.channels.store"),
        ({"channels": {"a\tb": 1}}, "profiles.p.channels.a\tb"),
        ({"channels": {f"c{i}": 1 for i in range(33)}}, "profiles.p.channels"),
        ({"channels": 2}, "profiles.p.channels"),
    ],
)
def test_invalid_value_is_reported_with_its_key(profile: dict[str, Any], key: str) -> None:
    assert key in violations(document(**profile))


def test_missing_weights_are_reported() -> None:
    doc = {"profiles": {"p": {"confidence": 0.9}}, "default_profile": "p"}

    assert "profiles.p.weights" in violations(doc)


def test_default_profile_must_exist() -> None:
    doc = document()
    doc["default_profile"] = "q"

    assert "default_profile" in violations(doc)


def test_at_least_one_profile_is_required() -> None:
    assert "profiles" in violations({"profiles": {}})


def test_unknown_top_level_key_is_reported() -> None:
    doc = document()
    doc["extra"] = 1

    assert "extra" in violations(doc)


def test_every_problem_is_reported_at_once() -> None:
    doc = document(confidence=2, prior={"mean": 0})
    doc["profiles"]["q"] = {"weights": {"wilson": -1}}

    assert {
        "profiles.p.confidence",
        "profiles.p.prior.mean",
        "profiles.q.weights.wilson",
    } <= set(violations(doc))


def test_all_zero_weights_are_caught_even_when_another_profile_is_bad() -> None:
    doc = document(confidence=2)
    doc["profiles"]["q"] = {"weights": {"wilson": 0}}

    assert "profiles.q.weights" in violations(doc)


def test_shares_default_to_a_fitted_prior_over_30_days_and_are_not_weighed() -> None:
    profile = parse_profiles(document()).profiles["p"]

    assert (SharesSpec(30.0, None), False, None) == (
        profile.shares,
        profile.weighs_shares,
        profile.share_weighing,
    )


def test_a_profile_weighing_shares_reads_their_half_life_and_prior_and_moves_with_the_clock() -> (
    None
):
    shares = {"half_life_days": 7, "prior": {"shape": 2, "rate_days": 40}}
    profile = parse_profiles(document(weights={"shares": 1, "wilson": 1}, shares=shares)).profiles[
        "p"
    ]

    assert (SharesSpec(7.0, ShareRatePrior(2.0, 40.0)), ShareWeighing(7 * 86400.0), True) == (
        profile.shares,
        profile.share_weighing,
        profile.clocked,
    )
    assert {7 * 86400.0: DecayNeed(stars=False)} == profile.decay_needs


def test_channel_weights_are_kept_in_name_order_and_ask_for_their_own_share_sums() -> None:
    doc = document(
        weights={"shares": 1, "relevance": 1},
        half_life_days=90,
        channels={"store": 2, "instagram": 0.5},
    )
    profile = parse_profiles(doc).profiles["p"]

    assert (("instagram", 0.5), ("store", 2.0)) == profile.channels
    assert {
        90 * 86400.0: DecayNeed(stars=True),
        30 * 86400.0: DecayNeed(stars=False, channels=frozenset({"instagram", "store"})),
    } == profile.decay_needs


def test_the_decay_needs_of_several_profiles_are_merged_per_half_life() -> None:
    one = parse_profiles(document(weights={"shares": 1}, channels={"a": 2})).profiles["p"]
    two = parse_profiles(
        document(weights={"shares": 1}, half_life_days=30, channels={"b": 0})
    ).profiles["p"]

    assert {30 * 86400.0: DecayNeed(True, frozenset({"a", "b"}))} == decay_needs([one, two])
