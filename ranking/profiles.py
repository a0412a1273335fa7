"""Weights profiles: how the components of a score are blended.

A profile set is parsed from a plain mapping (the service reads it from TOML)::

    default_profile = "default"

    [profiles.default]
    confidence = 0.95              # of the Wilson and the other lower bounds, in (0, 1)
    half_life_days = 365           # optional: each vote weighs 0.5^(age / half-life)

    [profiles.default.weights]     # >= 0, not all 0; normalised to sum to 1
    bayesian_average = 0.6         # see COMPONENTS for the others
    wilson = 0.25
    relevance = 0.15

    [profiles.default.prior]       # prior of the Bayesian average
    mean = "auto"                  # fitted from the catalogue ("catalogue" is the same), or 1..5
    strength = "auto"              # empirical Bayes, or pseudo-ratings >= 0
    per_category = true            # fit per category (small ones fall back to the global prior)

    [profiles.default.stars_prior] # Dirichlet prior of the star-histogram lower bound
    pseudo_count = 1               # per star value, > 0

    [profiles.default.likes_prior] # Beta prior of the like share (beta_mean, beta_lower_bound)
    alpha = 1
    beta = 1

Every problem found is reported with the dotted path of the offending key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

COMPONENTS = (
    "bayesian_average",  # (C·m + Σstars) / (m + n), on [1, 5] mapped to [0, 1]
    "wilson",  # Wilson lower bound of likes / (likes + dislikes)
    "relevance",  # the search engine's relevance, min-max scaled within the request
    "star_lower_bound",  # Dirichlet lower bound of the mean stars (E. Miller, 2016)
    "beta_mean",  # posterior mean of the like share under the Beta prior
    "beta_lower_bound",  # lower credible bound of the like share under the Beta prior
)
FITTED = ("auto", "catalogue")
PROFILE_KEYS = ("weights", "prior", "confidence", "half_life_days", "stars_prior", "likes_prior")
MIN_STARS, MAX_STARS = 1.0, 5.0
NAME_MAX_LENGTH = 64


class ProfileError(ValueError):
    """The profile document is invalid; ``violations`` holds (key path, problem) pairs."""

    def __init__(self, violations: list[tuple[str, str]]) -> None:
        self.violations = tuple(violations)
        super().__init__("; ".join(f"{key}: {problem}" for key, problem in self.violations))


@dataclass(frozen=True)
class PriorSpec:
    """Prior of the Bayesian average: mean C and strength m, each fixed or fitted (None).

    A fitted prior is estimated from the catalogue by empirical Bayes (ranking.priors),
    per category when ``per_category`` is set.
    """

    mean: float | None
    strength: float | None
    per_category: bool = False
    min_category_ratings: float = 50.0
    min_category_products: float = 10.0

    @property
    def fitted(self) -> bool:
        return self.mean is None or self.strength is None


@dataclass(frozen=True)
class Profile:
    name: str
    weights: Mapping[str, float]  # component -> weight, summing to 1
    prior: PriorSpec
    confidence: float
    half_life_days: float | None = None
    stars_pseudo_count: float = 1.0
    likes_prior: tuple[float, float] = (1.0, 1.0)

    @property
    def half_life_seconds(self) -> float | None:
        return None if self.half_life_days is None else self.half_life_days * 86400.0


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
    bad = False
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
            continue
        bad = True
    total = sum(weights.values())
    if not bad and total <= 0:
        check.fail(key, "at least one weight must be positive")
        return {}
    return {name: w / total for name, w in weights.items()} if total > 0 else {}


def _positive(
    check: _Checker, table: Mapping[str, Any], key: str, prefix: str, default: float
) -> float:
    number = _number(table.get(key, default))
    if number is None or number <= 0:
        check.fail(f"{prefix}.{key}", "must be a finite number > 0")
        return default
    return number


def _parse_prior(check: _Checker, raw: Any, key: str) -> PriorSpec:
    table = check.table(raw, key)
    if table is None:
        return PriorSpec(None, None)
    allowed = ("mean", "strength", "per_category", "min_category_ratings", "min_category_products")
    check.unknown_keys(table, allowed, key)
    raw_mean = table.get("mean", "auto")
    mean: float | None = None
    if raw_mean not in FITTED:
        mean = _number(raw_mean)
        if mean is None or not MIN_STARS <= mean <= MAX_STARS:
            check.fail(f"{key}.mean", 'must be "auto", "catalogue" or a number in [1, 5]')
    raw_strength = table.get("strength", "auto")
    strength: float | None = None
    if raw_strength != "auto":
        strength = _number(raw_strength)
        if strength is None or strength < 0:
            check.fail(f"{key}.strength", 'must be "auto" or a finite number >= 0')
            strength = 0.0
    per_category = table.get("per_category", False)
    if not isinstance(per_category, bool):
        check.fail(f"{key}.per_category", "must be true or false")
        per_category = False
    elif per_category and mean is not None and strength is not None:
        check.fail(f"{key}.per_category", 'needs a fitted mean or strength ("auto")')
    min_ratings = _positive(check, table, "min_category_ratings", key, 50.0)
    min_products = _positive(check, table, "min_category_products", key, 10.0)
    return PriorSpec(mean, strength, per_category, min_ratings, min_products)


def _parse_profile(check: _Checker, name: str, raw: Any, key: str) -> Profile | None:
    table = check.table(raw, key)
    if table is None:
        return None
    if not name or len(name) > NAME_MAX_LENGTH or not name.isprintable():
        check.fail(key, f"profile names must be 1-{NAME_MAX_LENGTH} printable characters")
    check.unknown_keys(table, PROFILE_KEYS, key)
    if "weights" not in table:
        check.fail(f"{key}.weights", "is required")
    weights = _parse_weights(check, table.get("weights", {}), f"{key}.weights")
    prior = _parse_prior(check, table.get("prior", {}), f"{key}.prior")
    confidence = _number(table.get("confidence", 0.95))
    if confidence is None or not 0.0 < confidence < 1.0:
        check.fail(f"{key}.confidence", "must be a number strictly between 0 and 1")
        confidence = 0.95
    half_life: float | None = None
    if "half_life_days" in table:
        half_life = _number(table["half_life_days"])
        if half_life is None or half_life <= 0:
            check.fail(f"{key}.half_life_days", "must be a finite number of days > 0")
            half_life = None
    stars = check.table(table.get("stars_prior", {}), f"{key}.stars_prior") or {}
    check.unknown_keys(stars, ("pseudo_count",), f"{key}.stars_prior")
    pseudo_count = _positive(check, stars, "pseudo_count", f"{key}.stars_prior", 1.0)
    likes = check.table(table.get("likes_prior", {}), f"{key}.likes_prior") or {}
    check.unknown_keys(likes, ("alpha", "beta"), f"{key}.likes_prior")
    alpha = _positive(check, likes, "alpha", f"{key}.likes_prior", 1.0)
    beta = _positive(check, likes, "beta", f"{key}.likes_prior", 1.0)
    return Profile(
        name=name,
        weights=weights,
        prior=prior,
        confidence=confidence,
        half_life_days=half_life,
        stars_pseudo_count=pseudo_count,
        likes_prior=(alpha, beta),
    )


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
