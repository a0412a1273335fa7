"""The pure ranking core: scores over numpy arrays, no I/O.

Imports only numpy, scipy and the standard library (tests/ranking/test_ranking_purity.py
checks it), so it can be used and tested apart from the service.
"""

from reviewrank.ranking.blend import (
    Breakdown,
    Component,
    Evidence,
    Prior,
    Quality,
    blend,
    quality,
    rank_order,
    with_relevance,
)
from reviewrank.ranking.profiles import PriorSpec, Profile, ProfileError, ProfileSet, parse_profiles
from reviewrank.ranking.scores import (
    bayesian_average,
    mean_stars,
    wilson_lower_bound,
    z_for_confidence,
)

__all__ = [
    "Breakdown",
    "Component",
    "Evidence",
    "Prior",
    "PriorSpec",
    "Profile",
    "ProfileError",
    "ProfileSet",
    "Quality",
    "bayesian_average",
    "blend",
    "mean_stars",
    "parse_profiles",
    "quality",
    "rank_order",
    "wilson_lower_bound",
    "with_relevance",
    "z_for_confidence",
]
