"""Weights profiles: how the components of a score are blended.

A profile set is parsed from a plain mapping (the service reads it from TOML)::

    default_profile = "default"

    [profiles.default]
    confidence = 0.95              # of the Wilson and the other lower bounds, in (0, 1)
    half_life_days = 365           # optional: each vote weighs 0.5^(age / half-life)
    integrity = true               # scores weigh votes by the manipulation defences
                                   # (ranking.integrity); false: every vote counts in full

    [profiles.default.weights]     # >= 0, not all 0; normalised to sum to 1
    bayesian_average = 0.6         # see COMPONENTS for the others
    wilson = 0.25
    relevance = 0.15

    [profiles.default.prior]       # prior of the Bayesian average
    mean = "auto"                  # fitted from the catalogue ("catalogue" is the same), or 1..5
    strength = "auto"              # empirical Bayes, or pseudo-ratings 0 to 1e6
    per_category = true            # category means shrunk toward the catalogue's (hierarchical)
    estimator = "marginal"         # marginal likelihood (the default) or "moments"

    [profiles.default.stars_prior] # Dirichlet prior of the star-histogram lower bound
    pseudo_count = 1               # per star value, 0.001 to 1e6

    [profiles.default.likes_prior] # Beta prior of the like share (beta_mean, beta_lower_bound)
    alpha = 1                      # or likes_prior = "auto": fitted from the catalogue's
    beta = 1                       # likes by beta-binomial marginal likelihood

    [profiles.default.shares]      # optional: the share rate (weight "shares", ranking.shares)
    half_life_days = 30            # each share, and each day listed, weighs 0.5^(age / half-life)
    prior = "auto"                 # Gamma prior fitted from the catalogue, or a table:
                                   # { shape = 0.5, rate_days = 50 } (mean rate shape/rate_days)

    [profiles.default.sentiment]   # optional: comment sentiment (weight "sentiment")
    prior = "auto"                 # (C, m) fitted from the catalogue's comments, or a table:
                                   # { mean = 0.2, strength = 5 } (mean -1..1, strength 0-1e6)

    [profiles.default.channels]    # optional: a share or comment from a channel counts this
    store = 2                      # much (0-1000); others, and those without one, count 1
    instagram = 0.5

    [profiles.default.limits]      # optional, each an integer >= 1
    max_candidates = 1000          # most candidates one Rank call may send
    top_default_limit = 20         # Top page size when the request asks for 0
    top_max_limit = 100            # largest Top page size

    [traffic]                      # optional: split users between profiles
    salt = "spring"                # changing it reshuffles who gets which profile
    shares = { default = 0.9, likes_heavy = 0.1 }   # known profiles, summing to 1

A request that names no profile but sends a user id gets the profile its user hashes
to (deterministically: sha256 of salt and user id); with no user id, or no traffic
table, it gets the default profile.

Every problem found is reported with the dotted path of the offending key.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from reviewrank.ranking.priors import StarPrior
from reviewrank.ranking.shares import ShareRatePrior

COMPONENTS = (
    "bayesian_average",  # (C·m + Σstars) / (m + n), on [1, 5] mapped to [0, 1]
    "wilson",  # Wilson lower bound of likes / (likes + dislikes)
    "relevance",  # the search engine's relevance, min-max scaled within the request
    "star_lower_bound",  # Dirichlet lower bound of the mean stars (E. Miller, 2016)
    "beta_mean",  # posterior mean of the like share under the Beta prior
    "beta_lower_bound",  # lower credible bound of the like share under the Beta prior
    "shares",  # the shrunk, time-decayed share rate r as r / (r + prior mean rate)
    "sentiment",  # the comments' Bayesian average sentiment, [-1, 1] mapped to [0, 1]
    "polls",  # the Bradley-Terry strength γ from poll votes, as γ / (γ + 1)
)
FITTED = ("auto", "catalogue")
ESTIMATORS = ("moments", "marginal")
PROFILE_KEYS = (
    "weights",
    "prior",
    "confidence",
    "half_life_days",
    "stars_prior",
    "likes_prior",
    "limits",
    "shares",
    "sentiment",
    "channels",
    "integrity",
)
LIMIT_KEYS = ("max_candidates", "top_default_limit", "top_max_limit")
MIN_STARS, MAX_STARS = 1.0, 5.0
NAME_MAX_LENGTH = 64
SALT_MAX_LENGTH = 64
SHARES_TOLERANCE = 1e-6


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
    # How a fitted prior is estimated: "marginal" (marginal likelihood, ranking.marginal;
    # per category ranking.hierarchy) or "moments" (ranking.priors, where the min_category_*
    # limits apply; the default of weights files written before 2026-12-07).
    estimator: str = "marginal"
    # The like share's Beta prior fitted from the catalogue (ranking.like_prior) rather
    # than the profile's fixed likes_prior; set by likes_prior = "auto".
    likes_fitted: bool = False
    # The comments' sentiment prior fitted from the catalogue (ranking.sentiment): set for
    # a profile weighing sentiment with its sentiment prior "auto".
    sentiment_fitted: bool = False

    @property
    def stars_fitted(self) -> bool:
        return self.mean is None or self.strength is None

    @property
    def fitted(self) -> bool:
        """Whether anything of the prior is fitted from the catalogue."""
        return self.stars_fitted or self.likes_fitted or self.sentiment_fitted


@dataclass(frozen=True)
class Limits:
    """Per-profile request limits; None leaves the server's own limit in force."""

    max_candidates: int | None = None
    top_default_limit: int | None = None
    top_max_limit: int | None = None


DEFAULT_SHARES_HALF_LIFE_DAYS = 30.0
# A share half-life, in days, from an hour to about 30 years.
SHARES_HALF_LIFE_RANGE = (1.0 / 24.0, 1e4)


MAX_CHANNEL_WEIGHT = 1000.0
CHANNEL_NAME_MAX_LENGTH = 64  # as the API's channel (service/api/validation.py)
MAX_NAMED_CHANNELS = 32  # per profile: each named channel keeps its own decayed sums


class ShareWeighing(NamedTuple):
    """What share sums a profile reads: their half-life (seconds), and the weights of
    the channels it names, (channel, weight) in name order (others count 1)."""

    half_life: float
    channels: tuple[tuple[str, float], ...] = ()

    @property
    def names(self) -> frozenset[str]:
        """The channels weighed apart."""
        return frozenset(channel for channel, _ in self.channels)


class CommentWeighing(NamedTuple):
    """How a profile weighing sentiment counts comments: the weights of the channels it
    names, (channel, weight) in name order; a comment from one counts that much in the
    product's Bayesian average (others count 1)."""

    channels: tuple[tuple[str, float], ...]

    @property
    def names(self) -> frozenset[str]:
        """The channels weighed apart."""
        return frozenset(channel for channel, _ in self.channels)


class DecayNeed(NamedTuple):
    """What time-decayed sums of one half-life must hold: the star and like sums (a
    profile's half_life_days), and the channels whose shares are summed apart."""

    stars: bool = False
    channels: frozenset[str] = frozenset()

    def with_(self, other: DecayNeed) -> DecayNeed:
        return DecayNeed(self.stars or other.stars, self.channels | other.channels)

    def within(self, held: DecayNeed) -> bool:
        """Whether sums holding ``held`` serve this need."""
        return (held.stars or not self.stars) and self.channels <= held.channels


@dataclass(frozen=True)
class SharesSpec:
    """How a profile measures the share rate: the half-life of shares and of exposure,
    and the Gamma prior (None: fitted from the catalogue, ranking.shares)."""

    half_life_days: float = DEFAULT_SHARES_HALF_LIFE_DAYS
    prior: ShareRatePrior | None = None

    @property
    def half_life_seconds(self) -> float:
        return self.half_life_days * 86400.0


@dataclass(frozen=True)
class SentimentSpec:
    """The prior of a profile's comment sentiment (ranking.sentiment): mean C in [−1, 1]
    and strength m in pseudo-comments; None: fitted from the catalogue's comments."""

    prior: StarPrior | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    weights: Mapping[str, float]  # component -> weight, summing to 1
    prior: PriorSpec
    confidence: float
    half_life_days: float | None = None
    stars_pseudo_count: float = 1.0
    likes_prior: tuple[float, float] = (1.0, 1.0)
    limits: Limits = Limits()
    shares: SharesSpec = SharesSpec()
    sentiment: SentimentSpec = SentimentSpec()
    # (channel, weight) in name order: a share from a named channel counts that much.
    channels: tuple[tuple[str, float], ...] = ()
    # Whether its scores take the votes' weights from the manipulation defences
    # (ranking.integrity: the damped part of each product's sums left out).
    integrity: bool = True

    @property
    def half_life_seconds(self) -> float | None:
        return None if self.half_life_days is None else self.half_life_days * 86400.0

    @property
    def weighs_shares(self) -> bool:
        return self.weights.get("shares", 0.0) > 0

    @property
    def weighs_sentiment(self) -> bool:
        return self.weights.get("sentiment", 0.0) > 0

    @property
    def share_weighing(self) -> ShareWeighing | None:
        """The share sums its scores read (None: it weighs no shares)."""
        if not self.weighs_shares:
            return None
        return ShareWeighing(self.shares.half_life_seconds, self.channels)

    @property
    def comment_weighing(self) -> CommentWeighing | None:
        """The comment channels its sentiment weighs apart (None: every comment counts 1)."""
        if not self.weighs_sentiment or not self.channels:
            return None
        return CommentWeighing(self.channels)

    @property
    def clocked(self) -> bool:
        """Whether its scores move with the clock (time-decayed votes, or share rates)."""
        return self.half_life_days is not None or self.weighs_shares

    @property
    def decay_needs(self) -> dict[float, DecayNeed]:
        """The time-decayed sums its scores read, by half-life (seconds)."""
        needs: dict[float, DecayNeed] = {}
        if self.half_life_seconds is not None:
            needs[self.half_life_seconds] = DecayNeed(stars=True)
        weighing = self.share_weighing
        if weighing is not None:
            need = DecayNeed(channels=weighing.names)
            needs[weighing.half_life] = need.with_(needs.get(weighing.half_life, DecayNeed()))
        return needs


def comment_channel_needs(profiles: Iterable[Profile]) -> frozenset[str]:
    """The comment channels some profile weighs apart (their sums are kept)."""
    names: frozenset[str] = frozenset()
    for profile in profiles:
        weighing = profile.comment_weighing
        if weighing is not None:
            names |= weighing.names
    return names


def decay_needs(profiles: Iterable[Profile]) -> dict[float, DecayNeed]:
    """Profile.decay_needs of several profiles, merged."""
    needs: dict[float, DecayNeed] = {}
    for profile in profiles:
        for half_life, need in profile.decay_needs.items():
            needs[half_life] = need.with_(needs.get(half_life, DecayNeed()))
    return needs


def traffic_point(salt: str, user_id: str) -> float:
    """Where a user falls in [0, 1): the same for the same salt and user, everywhere."""
    digest = hashlib.sha256(f"{salt}\x00{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


@dataclass(frozen=True)
class ProfileSet:
    default: str
    profiles: Mapping[str, Profile] = field(default_factory=dict)
    # (profile name, share) in name order, shares summing to 1; empty = no split.
    traffic: tuple[tuple[str, float], ...] = ()
    traffic_salt: str = ""

    def get(self, name: str) -> Profile | None:
        """The named profile; the default one for an empty name; None if unknown."""
        return self.profiles.get(name or self.default)

    def assign(self, user_id: str) -> str:
        """The profile a user gets from the traffic split (the default without one)."""
        if not self.traffic or not user_id:
            return self.default
        point = traffic_point(self.traffic_salt, user_id)
        cumulative = 0.0
        for name, share in self.traffic:
            cumulative += share
            if point < cumulative:
                return name
        # Rounding: the shares sum to 1 within SHARES_TOLERANCE; the last non-zero one takes it.
        return next(name for name, share in reversed(self.traffic) if share > 0)

    def choose(self, name: str, user_id: str) -> Profile | None:
        """The profile a request gets: the one it names, else its user's share of the
        traffic split, else the default. None if the named profile is unknown."""
        return self.profiles.get(name or self.assign(user_id))


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


def _parse_limits(check: _Checker, raw: Any, key: str) -> Limits:
    table = check.table(raw, key)
    if table is None:
        return Limits()
    check.unknown_keys(table, LIMIT_KEYS, key)
    values: dict[str, int] = {}
    for name in LIMIT_KEYS:
        if name not in table:
            continue
        value = table[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            check.fail(f"{key}.{name}", "must be an integer >= 1")
        else:
            values[name] = value
    default, most = values.get("top_default_limit"), values.get("top_max_limit")
    if default is not None and most is not None and default > most:
        check.fail(f"{key}.top_default_limit", f"must not exceed top_max_limit ({most})")
    return Limits(**values)


def _parse_traffic(
    check: _Checker, raw: Any, profiles: Mapping[str, Profile]
) -> tuple[tuple[tuple[str, float], ...], str]:
    table = check.table(raw, "traffic")
    if table is None:
        return (), ""
    check.unknown_keys(table, ("shares", "salt"), "traffic")
    salt = table.get("salt", "")
    if not isinstance(salt, str) or len(salt) > SALT_MAX_LENGTH:
        check.fail("traffic.salt", f"must be a string of at most {SALT_MAX_LENGTH} characters")
        salt = ""
    if "shares" not in table:
        check.fail("traffic.shares", "is required (profile name = share of users)")
        return (), salt
    shares_table = check.table(table["shares"], "traffic.shares")
    if shares_table is None:
        return (), salt
    shares: dict[str, float] = {}
    bad = False
    for name, value in shares_table.items():
        key = f"traffic.shares.{name}"
        share = _number(value)
        if share is None or not 0.0 <= share <= 1.0:
            check.fail(key, "must be a number in [0, 1]")
            bad = True
        elif name not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            check.fail(key, f"names no profile (have: {known})")
            bad = True
        else:
            shares[str(name)] = share
    if not shares_table:
        check.fail("traffic.shares", "must give at least one profile a share")
    elif not bad and abs(sum(shares.values()) - 1.0) > SHARES_TOLERANCE:
        check.fail("traffic.shares", f"shares must sum to 1 (they sum to {sum(shares.values()):g})")
    if bad:
        return (), salt
    return tuple(sorted(shares.items())), salt


def _positive(
    check: _Checker, table: Mapping[str, Any], key: str, prefix: str, default: float
) -> float:
    number = _number(table.get(key, default))
    if number is None or not 0 < number <= 1e9:
        check.fail(f"{prefix}.{key}", "must be a number > 0 and at most 1e9")
        return default
    return number


# A fixed prior's pseudo-counts (a Beta's a and b, a Dirichlet's per star) lie in this
# range: beyond it the scipy functions of the bounds overflow or lose all precision.
PSEUDO_COUNT_RANGE = (1e-3, 1e6)
# A fixed prior strength (pseudo-ratings) at most: C·m must stay finite (1e308 was taken,
# and every Bayesian average became inf).
MAX_FIXED_STRENGTH = 1e6


def _pseudo_count(
    check: _Checker, table: Mapping[str, Any], key: str, prefix: str, default: float
) -> float:
    number = _number(table.get(key, default))
    low, high = PSEUDO_COUNT_RANGE
    if number is None or not low <= number <= high:
        check.fail(f"{prefix}.{key}", f"must be a number from {low:g} to {high:g}")
        return default
    return number


def _parse_prior(check: _Checker, raw: Any, key: str) -> PriorSpec:
    table = check.table(raw, key)
    if table is None:
        return PriorSpec(None, None)
    allowed = (
        "mean", "strength", "per_category", "min_category_ratings", "min_category_products",
        "estimator",
    )  # fmt: skip
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
        if strength is None or not 0 <= strength <= MAX_FIXED_STRENGTH:
            check.fail(
                f"{key}.strength", f'must be "auto" or a number from 0 to {MAX_FIXED_STRENGTH:g}'
            )
            strength = 0.0
    per_category = table.get("per_category", False)
    if not isinstance(per_category, bool):
        check.fail(f"{key}.per_category", "must be true or false")
        per_category = False
    elif per_category and mean is not None and strength is not None:
        check.fail(f"{key}.per_category", 'needs a fitted mean or strength ("auto")')
    min_ratings = _positive(check, table, "min_category_ratings", key, 50.0)
    min_products = _positive(check, table, "min_category_products", key, 10.0)
    estimator = table.get("estimator", "marginal")
    if estimator not in ESTIMATORS:
        check.fail(f"{key}.estimator", 'must be "moments" or "marginal"')
        estimator = "marginal"
    elif "estimator" in table and mean is not None and strength is not None:
        check.fail(f"{key}.estimator", 'needs a fitted mean or strength ("auto")')
    return PriorSpec(mean, strength, per_category, min_ratings, min_products, estimator)


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
    pseudo_count = _pseudo_count(check, stars, "pseudo_count", f"{key}.stars_prior", 1.0)
    raw_likes = table.get("likes_prior", {})
    alpha = beta = 1.0
    if raw_likes in FITTED:
        prior = replace(prior, likes_fitted=True)
    elif isinstance(raw_likes, str):
        check.fail(f"{key}.likes_prior", 'must be "auto" or a table of alpha and beta')
    else:
        likes = check.table(raw_likes, f"{key}.likes_prior") or {}
        check.unknown_keys(likes, ("alpha", "beta"), f"{key}.likes_prior")
        alpha = _pseudo_count(check, likes, "alpha", f"{key}.likes_prior", 1.0)
        beta = _pseudo_count(check, likes, "beta", f"{key}.likes_prior", 1.0)
    limits = _parse_limits(check, table.get("limits", {}), f"{key}.limits")
    shares = _parse_shares(check, table.get("shares", {}), f"{key}.shares")
    sentiment = _parse_sentiment(check, table.get("sentiment", {}), f"{key}.sentiment")
    if sentiment.prior is None and weights.get("sentiment", 0.0) > 0:
        prior = replace(prior, sentiment_fitted=True)
    channels = _parse_channels(check, table.get("channels", {}), f"{key}.channels")
    integrity = table.get("integrity", True)
    if not isinstance(integrity, bool):
        check.fail(f"{key}.integrity", "must be true or false")
        integrity = True
    return Profile(
        name=name,
        weights=weights,
        prior=prior,
        confidence=confidence,
        half_life_days=half_life,
        stars_pseudo_count=pseudo_count,
        likes_prior=(alpha, beta),
        limits=limits,
        shares=shares,
        sentiment=sentiment,
        channels=channels,
        integrity=integrity,
    )


def _parse_channels(check: _Checker, raw: Any, key: str) -> tuple[tuple[str, float], ...]:
    table = check.table(raw, key)
    if table is None:
        return ()
    if len(table) > MAX_NAMED_CHANNELS:
        check.fail(key, f"at most {MAX_NAMED_CHANNELS} channels may be named")
        return ()
    weights: dict[str, float] = {}
    for raw_name, value in table.items():
        name = str(raw_name)
        if not name or len(name) > CHANNEL_NAME_MAX_LENGTH or not name.isprintable():
            check.fail(
                f"{key}.{name}",
                f"channel names are 1-{CHANNEL_NAME_MAX_LENGTH} printable characters",
            )
            continue
        weight = _number(value)
        if weight is None or not 0.0 <= weight <= MAX_CHANNEL_WEIGHT:
            check.fail(f"{key}.{name}", f"must be a number from 0 to {MAX_CHANNEL_WEIGHT:g}")
            continue
        weights[name] = weight
    return tuple(sorted(weights.items()))


def _parse_shares(check: _Checker, raw: Any, key: str) -> SharesSpec:
    table = check.table(raw, key)
    if table is None:
        return SharesSpec()
    check.unknown_keys(table, ("half_life_days", "prior"), key)
    low, high = SHARES_HALF_LIFE_RANGE
    half_life = _number(table.get("half_life_days", DEFAULT_SHARES_HALF_LIFE_DAYS))
    if half_life is None or not low <= half_life <= high:
        check.fail(f"{key}.half_life_days", f"must be a number of days from {low:.4g} to {high:g}")
        half_life = DEFAULT_SHARES_HALF_LIFE_DAYS
    raw_prior = table.get("prior", "auto")
    if raw_prior in FITTED:
        return SharesSpec(half_life, None)
    if isinstance(raw_prior, str):
        check.fail(f"{key}.prior", 'must be "auto" or a table of shape and rate_days')
        return SharesSpec(half_life, None)
    prior = check.table(raw_prior, f"{key}.prior") or {}
    check.unknown_keys(prior, ("shape", "rate_days"), f"{key}.prior")
    for needed in ("shape", "rate_days"):
        if prior and needed not in prior:
            check.fail(f"{key}.prior.{needed}", 'is required in a fixed prior (or "auto")')
    shape = _pseudo_count(check, prior, "shape", f"{key}.prior", 0.5)
    rate = _pseudo_count(check, prior, "rate_days", f"{key}.prior", 50.0)
    return SharesSpec(half_life, ShareRatePrior(shape, rate))


def _parse_sentiment(check: _Checker, raw: Any, key: str) -> SentimentSpec:
    table = check.table(raw, key)
    if table is None:
        return SentimentSpec()
    check.unknown_keys(table, ("prior",), key)
    raw_prior = table.get("prior", "auto")
    if raw_prior in FITTED:
        return SentimentSpec()
    if isinstance(raw_prior, str):
        check.fail(f"{key}.prior", 'must be "auto" or a table of mean and strength')
        return SentimentSpec()
    prior = check.table(raw_prior, f"{key}.prior") or {}
    check.unknown_keys(prior, ("mean", "strength"), f"{key}.prior")
    for needed in ("mean", "strength"):
        if needed not in prior:
            check.fail(f"{key}.prior.{needed}", 'is required in a fixed prior (or "auto")')
    mean = _number(prior.get("mean", 0.0))
    if mean is None or not -1.0 <= mean <= 1.0:
        check.fail(f"{key}.prior.mean", "must be a number from -1 to 1")
        mean = 0.0
    strength = _number(prior.get("strength", 1.0))
    if strength is None or not 0.0 <= strength <= MAX_FIXED_STRENGTH:
        check.fail(f"{key}.prior.strength", f"must be a number from 0 to {MAX_FIXED_STRENGTH:g}")
        strength = 1.0
    return SentimentSpec(StarPrior(mean, strength))


def parse_profiles(document: Mapping[str, Any]) -> ProfileSet:
    """Validates a whole profile document; raises ProfileError listing every problem."""
    check = _Checker()
    check.unknown_keys(document, ("default_profile", "profiles", "traffic"), "")
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
    traffic: tuple[tuple[str, float], ...] = ()
    salt = ""
    if "traffic" in document:
        traffic, salt = _parse_traffic(check, document["traffic"], profiles)
    # unknown_keys reports top-level keys as ".key"; strip the leading dot.
    violations = [(key.lstrip("."), problem) for key, problem in check.violations]
    if violations:
        raise ProfileError(violations)
    return ProfileSet(default=str(default), profiles=profiles, traffic=traffic, traffic_salt=salt)
