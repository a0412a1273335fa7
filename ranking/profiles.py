"""Weights profiles: how the components of a score are blended.

A profile set is parsed from a plain mapping (the service reads it from TOML)::

    default_profile = "default"

    [profiles.default]
    confidence = 0.95              # Wilson lower bound confidence, in (0, 1)

    [profiles.default.weights]     # >= 0, not all 0; normalised to sum to 1
    bayesian_average = 0.6
    wilson = 0.25
    relevance = 0.15

    [profiles.default.prior]       # prior of the Bayesian average
    mean = "catalogue"             # or a number in [1, 5]
    strength = 10                  # pseudo-ratings, >= 0

Every problem found is reported with the dotted path of the offending key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

COMPONENTS = ("bayesian_average", "wilson", "relevance")
PRIOR_MEAN_FROM_CATALOGUE = "catalogue"
MIN_STARS, MAX_STARS = 1.0, 5.0
NAME_MAX_LENGTH = 64


class ProfileError(ValueError):
    """The profile document is invalid; ``violations`` holds (key path, problem) pairs."""

    def __init__(self, violations: list[tuple[str, str]]) -> None:
        self.violations = tuple(violations)
        super().__init__("; ".join(f"{key}: {problem}" for key, problem in self.violations))


@dataclass(frozen=True)
class PriorSpec:
    """Prior of the Bayesian average: mean C (None = the catalogue's mean) and strength m."""

    mean: float | None
    strength: float


@dataclass(frozen=True)
class Profile:
    name: str
    weights: Mapping[str, float]  # component -> weight, summing to 1
    prior: PriorSpec
    confidence: float


@dataclass(frozen=True)
class ProfileSet:
    default: str
    profiles: Mapping[str, Profile] = field(default_factory=dict)

    def get(self, name: str) -> Profile | None:
        """The named profile; the default one for an empty name; None if unknown."""
        return self.profiles.get(name or self.default)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class _Checker:
    def __init__(self) -> None:
        self.violations: list[tuple[str, str]] = []

    def fail(self, key: str, problem: str) -> None:
        self.violations.append((key, problem))

    def table(self, value: Any, key: str) -> Mapping[str, Any] | None:
        if isinstance(value, Mapping):
            return value
        self.fail(key, "must be a table")
        return None

    def unknown_keys(self, table: Mapping[str, Any], allowed: tuple[str, ...], prefix: str) -> None:
        for key in table:
            if key not in allowed:
                self.fail(f"{prefix}.{key}", f"unknown key (expected one of {', '.join(allowed)})")


def _parse_weights(check: _Checker, raw: Any, key: str) -> dict[str, float]:
    table = check.table(raw, key)
    if table is None:
        return {}
    check.unknown_keys(table, COMPONENTS, key)
    weights: dict[str, float] = {}
    for name in COMPONENTS:
        if name not in table:
            continue
        number = _number(table[name])
        if number is None:
            check.fail(f"{key}.{name}", "must be a finite number")
        elif number < 0:
            check.fail(f"{key}.{name}", "must not be negative")
        else:
            weights[name] = number
    total = sum(weights.values())
    if len(check.violations) == 0 and total <= 0:
        check.fail(key, "at least one weight must be positive")
        return {}
    return {name: w / total for name, w in weights.items()} if total > 0 else {}


def _parse_prior(check: _Checker, raw: Any, key: str) -> PriorSpec:
    table = check.table(raw, key)
    if table is None:
        return PriorSpec(None, 0.0)
    check.unknown_keys(table, ("mean", "strength"), key)
    raw_mean = table.get("mean", PRIOR_MEAN_FROM_CATALOGUE)
    mean: float | None = None
    if raw_mean != PRIOR_MEAN_FROM_CATALOGUE:
        mean = _number(raw_mean)
        if mean is None or not MIN_STARS <= mean <= MAX_STARS:
            check.fail(
                f"{key}.mean", f'must be "{PRIOR_MEAN_FROM_CATALOGUE}" or a number in [1, 5]'
            )
    strength = _number(table.get("strength", 10))
    if strength is None or strength < 0:
        check.fail(f"{key}.strength", "must be a finite number >= 0")
        strength = 0.0
    return PriorSpec(mean, strength)


def _parse_profile(check: _Checker, name: str, raw: Any, key: str) -> Profile | None:
    table = check.table(raw, key)
    if table is None:
        return None
    if not name or len(name) > NAME_MAX_LENGTH or not name.isprintable():
        check.fail(key, f"profile names must be 1-{NAME_MAX_LENGTH} printable characters")
    check.unknown_keys(table, ("weights", "prior", "confidence"), key)
    if "weights" not in table:
        check.fail(f"{key}.weights", "is required")
    weights = _parse_weights(check, table.get("weights", {}), f"{key}.weights")
    prior = _parse_prior(check, table.get("prior", {}), f"{key}.prior")
    confidence = _number(table.get("confidence", 0.95))
    if confidence is None or not 0.0 < confidence < 1.0:
        check.fail(f"{key}.confidence", "must be a number strictly between 0 and 1")
        confidence = 0.95
    return Profile(name=name, weights=weights, prior=prior, confidence=confidence)


def parse_profiles(document: Mapping[str, Any]) -> ProfileSet:
    """Validates a whole profile document; raises ProfileError listing every problem."""
    check = _Checker()
    check.unknown_keys(document, ("default_profile", "profiles"), "")
    raw_profiles = document.get("profiles")
    profiles: dict[str, Profile] = {}
    if raw_profiles is None:
        check.fail("profiles", "at least one profile is required")
    else:
        table = check.table(raw_profiles, "profiles")
        for name, raw in (table or {}).items():
            profile = _parse_profile(check, str(name), raw, f"profiles.{name}")
            if profile is not None:
                profiles[str(name)] = profile
        if table is not None and not table:
            check.fail("profiles", "at least one profile is required")
    default = document.get("default_profile", "default")
    if not isinstance(default, str):
        check.fail("default_profile", "must be a string")
    elif profiles and default not in profiles:
        check.fail("default_profile", f"names no profile (have: {', '.join(sorted(profiles))})")
    # unknown_keys reports top-level keys as ".key"; strip the leading dot.
    violations = [(key.lstrip("."), problem) for key, problem in check.violations]
    if violations:
        raise ProfileError(violations)
    return ProfileSet(default=str(default), profiles=profiles)
