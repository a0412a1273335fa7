"""Per-profile limits and the traffic split of a profile set: parsing, and who gets what."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reviewrank.ranking.profiles import Limits, ProfileError, ProfileSet, parse_profiles
from reviewrank.service.app.weights import ServerLimits, parse_toml
from reviewrank.service.domain.errors import InvalidArgument


def document(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "default_profile": "a",
        "profiles": {
            "a": {"weights": {"bayesian_average": 1}},
            "b": {"weights": {"wilson": 1}},
            "c": {"weights": {"relevance": 1}},
        },
    }
    doc.update(extra)
    return doc


def violations(doc: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ProfileError) as info:
        parse_profiles(doc)
    return dict(info.value.violations)


def split(shares: dict[str, float], salt: str = "") -> ProfileSet:
    return parse_profiles(document(traffic={"shares": shares, "salt": salt}))


def test_limits_are_read() -> None:
    doc = document()
    doc["profiles"]["a"]["limits"] = {
        "max_candidates": 100,
        "top_default_limit": 5,
        "top_max_limit": 50,
    }

    profile = parse_profiles(doc).profiles["a"]

    assert Limits(100, 5, 50) == profile.limits


def test_a_profile_without_limits_leaves_the_servers_in_force() -> None:
    assert Limits(None, None, None) == parse_profiles(document()).profiles["a"].limits


@pytest.mark.parametrize(
    ("limits", "key"),
    [
        ({"max_candidates": 0}, "profiles.a.limits.max_candidates"),
        ({"max_candidates": 2.5}, "profiles.a.limits.max_candidates"),
        ({"max_candidates": True}, "profiles.a.limits.max_candidates"),
        ({"top_max_limit": -1}, "profiles.a.limits.top_max_limit"),
        ({"top_default_limit": "20"}, "profiles.a.limits.top_default_limit"),
        ({"top_default_limit": 30, "top_max_limit": 10}, "profiles.a.limits.top_default_limit"),
        ({"max_results": 3}, "profiles.a.limits.max_results"),
        (7, "profiles.a.limits"),
    ],
)
def test_invalid_limits_are_named_by_key(limits: Any, key: str) -> None:
    doc = document()
    doc["profiles"]["a"]["limits"] = limits

    assert key in violations(doc)


@pytest.mark.parametrize(
    ("limits", "key"),
    [
        ("max_candidates = 5001", "profiles.a.limits.max_candidates"),
        ("top_max_limit = 1001", "profiles.a.limits.top_max_limit"),
        ("top_default_limit = 1001", "profiles.a.limits.top_default_limit"),
    ],
)
def test_profile_limits_above_the_servers_are_refused(limits: str, key: str) -> None:
    text = f"""
default_profile = "a"
[profiles.a]
weights = {{ wilson = 1 }}
limits = {{ {limits} }}
"""
    with pytest.raises(InvalidArgument) as info:
        parse_toml(text, limits=ServerLimits(max_candidates=5000, max_top_limit=1000))

    assert [key] == [k for k, _ in info.value.violations]


def test_traffic_shares_are_kept_in_profile_name_order() -> None:
    profiles = split({"c": 0.25, "a": 0.75}, salt="spring")

    assert ((("a", 0.75), ("c", 0.25)), "spring") == (profiles.traffic, profiles.traffic_salt)


@pytest.mark.parametrize(
    ("traffic", "key"),
    [
        ({"shares": {"a": 0.5, "b": 0.4}}, "traffic.shares"),
        ({"shares": {"a": 0.5, "b": 0.6}}, "traffic.shares"),
        ({"shares": {"a": 1.0, "nope": 0.0}}, "traffic.shares.nope"),
        ({"shares": {"a": 1.5, "b": -0.5}}, "traffic.shares.a"),
        ({"shares": {"a": "half", "b": 0.5}}, "traffic.shares.a"),
        ({"shares": {}}, "traffic.shares"),
        ({"shares": 1}, "traffic.shares"),
        ({}, "traffic.shares"),
        ({"shares": {"a": 1}, "salt": 5}, "traffic.salt"),
        ({"shares": {"a": 1}, "seed": "x"}, "traffic.seed"),
        ("half", "traffic"),
    ],
)
def test_invalid_traffic_is_named_by_key(traffic: Any, key: str) -> None:
    assert key in violations(document(traffic=traffic))


def test_without_a_user_id_the_default_profile_is_used() -> None:
    profiles = split({"b": 0.5, "c": 0.5})

    assert "a" == profiles.choose("", "").name  # type: ignore[union-attr]


def test_a_named_profile_overrides_the_split() -> None:
    profiles = split({"b": 1.0})

    assert "c" == profiles.choose("c", "user-1").name  # type: ignore[union-attr]


@given(st.text(min_size=1, max_size=40), st.text(max_size=10))
def test_the_same_user_always_gets_the_same_profile(user_id: str, salt: str) -> None:
    first = split({"a": 0.2, "b": 0.3, "c": 0.5}, salt)
    second = split({"a": 0.2, "b": 0.3, "c": 0.5}, salt)

    assert first.assign(user_id) == second.assign(user_id)


@given(st.text(min_size=1, max_size=40))
def test_a_profile_with_no_share_gets_no_user(user_id: str) -> None:
    profiles = split({"a": 0.0, "b": 1.0, "c": 0.0})

    assert "b" == profiles.assign(user_id)


def test_shares_over_many_users_are_close_to_the_configured_ones() -> None:
    profiles = split({"a": 0.6, "b": 0.3, "c": 0.1}, salt="exp-7")

    counts = Counter(profiles.assign(f"user-{i}") for i in range(20_000))

    # Binomial standard deviations are at most 0.0035 here: 0.015 is over four of them.
    assert {"a": 0.6, "b": 0.3, "c": 0.1} == pytest.approx(
        {name: n / 20_000 for name, n in counts.items()}, abs=0.015
    )


def test_another_salt_reshuffles_users() -> None:
    users = [f"user-{i}" for i in range(2000)]
    one = split({"a": 0.5, "b": 0.5}, salt="one")
    two = split({"a": 0.5, "b": 0.5}, salt="two")

    same = sum(one.assign(u) == two.assign(u) for u in users)

    assert 0.4 < same / len(users) < 0.6
