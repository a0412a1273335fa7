"""Top's pieces beside the Ranker: the cached whole-catalogue order, the page size and
the page token (an offset bound to its category and profile)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

import numpy as np

from reviewrank.ranking.blend import Breakdown, Prior
from reviewrank.ranking.profiles import Profile
from reviewrank.service.app.catalogue_views import Snapshot
from reviewrank.service.domain.errors import InvalidArgument


@dataclass(frozen=True)
class TopOrder:
    snapshot: Snapshot
    prior: Prior
    breakdown: Breakdown
    order: np.ndarray
    codes_in_order: np.ndarray
    key: tuple[int, str, int]
    generation: int
    through_seq: int
    computed_at: float
    cost: float
    by_category: dict[int, np.ndarray] = field(default_factory=dict)

    def of_category(self, code: int) -> np.ndarray:
        """The order restricted to one category: the products of that category and those
        the shop also lists in it (computed once per cached order)."""
        order = self.by_category.get(code)
        if order is None:
            members = self.codes_in_order == code
            also = self.snapshot.also_in.get(code)
            if also is not None:
                members |= np.isin(self.order, also)
            order = self.order[members]
            self.by_category[code] = order
        return order


DEFAULT_TOP_LIMIT = 20


def page_size(profile: Profile, limit: int) -> int:
    """The Top page size: as asked, or the profile's default; within the profile's maximum."""
    most = profile.limits.top_max_limit
    if limit == 0:
        default = profile.limits.top_default_limit or DEFAULT_TOP_LIMIT
        return default if most is None else min(default, most)
    if most is not None and limit > most:
        raise InvalidArgument(
            [("limit", f"must be at most {most} with profile {profile.name!r} (got {limit})")]
        )
    return limit


def encode_page_token(offset: int, category: str, profile: str) -> str:
    raw = json.dumps({"o": offset, "c": category, "p": profile}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(token: str, category: str, profile: str) -> int:
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        offset = data["o"]
        ok = (
            isinstance(offset, int)
            and offset >= 0
            and data["c"] == category
            and data["p"] == profile
        )
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeEncodeError):
        ok = False
    if not ok:
        raise InvalidArgument(
            [("page_token", "not a token returned by Top for this category and profile")]
        )
    return int(offset)
