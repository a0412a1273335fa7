"""The weights in force: profiles parsed from TOML, versioned, swapped atomically.

A WeightsState is immutable; the registry holds one reference to the current state
and replaces it in one assignment. A reader (service/app/ranker.py) takes that reference
once per call, so it computes with one version from start to end, never a mix.
Changing the weights (reload, rollback, preview) is service/app/weights_admin.py's job;
their history and the choice at start-up, service/app/weights_history.py's; SIGHUP and
the file watch, service/app/weights_watch.py's.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from reviewrank.ranking.profiles import ProfileError, ProfileSet, parse_profiles
from reviewrank.service.app.toml_limits import toml_shape_problem
from reviewrank.service.domain.errors import InvalidArgument

SOURCE_KINDS = ("file", "inline", "rollback")
TRIGGERS = ("startup", "rpc", "sighup", "file-watch")
FILE_FIELD = "weights_file"  # how a problem with the file itself is named


def read_file(path: Path) -> str:
    """The weights file's text; InvalidArgument naming the file when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InvalidArgument([(FILE_FIELD, f"cannot read {path}: {problem}")]) from None


def content_hash(text: str) -> str:
    """Hex SHA-256 of a weights document, as kept in the history."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class WeightsState:
    """One version of the weights: what it contains, and how it came to be applied."""

    version: int
    profiles: ProfileSet
    source_toml: str
    source: str  # the file path, "inline" or "rollback"
    loaded_at: datetime  # when this version was first applied
    source_kind: str = "file"  # one of SOURCE_KINDS
    trigger: str = "startup"  # one of TRIGGERS
    actor: str = ""
    reason: str = ""
    rollback_of: int | None = None
    content_sha256: str = ""


@dataclass(frozen=True)
class ServerLimits:
    """The server-wide limits no profile may exceed."""

    max_candidates: int
    max_top_limit: int


def parse_toml(text: str, field: str = "toml", limits: ServerLimits | None = None) -> ProfileSet:
    """Parses and validates a weights document; InvalidArgument names every bad key.

    ``field`` names the document itself (a malformed one has no keys to name). The
    document's size and shape are checked before it is parsed (service/app/toml_limits.py),
    and any failure of the parser is the document's fault: never an internal error.
    """
    problem = toml_shape_problem(text)
    if problem is not None:
        raise InvalidArgument([(field, problem)])
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidArgument([(field, f"malformed TOML: {exc}")]) from None
    except (RecursionError, MemoryError) as exc:  # (if a shape slipped past the scan)
        raise InvalidArgument([(field, f"cannot be parsed: {type(exc).__name__}")]) from None
    try:
        profiles = parse_profiles(document)
    except ProfileError as exc:
        raise InvalidArgument(exc.violations) from None
    if limits is not None:
        check_server_limits(profiles, limits)
    return profiles


def check_server_limits(profiles: ProfileSet, limits: ServerLimits) -> None:
    """A profile's limits may tighten the server's, never loosen them."""
    violations: list[tuple[str, str]] = []
    for name, profile in profiles.profiles.items():
        key = f"profiles.{name}.limits"
        own = profile.limits
        if own.max_candidates is not None and own.max_candidates > limits.max_candidates:
            violations.append(
                (
                    f"{key}.max_candidates",
                    f"must be at most the server's max_candidates ({limits.max_candidates})",
                )
            )
        for item in ("top_default_limit", "top_max_limit"):
            value = getattr(own, item)
            if value is not None and value > limits.max_top_limit:
                violations.append(
                    (
                        f"{key}.{item}",
                        f"must be at most the server's max_top_limit ({limits.max_top_limit})",
                    )
                )
    if violations:
        raise InvalidArgument(violations)


class WeightsRegistry:
    """Holds the current WeightsState; readers take one reference, so never see a mix."""

    def __init__(self) -> None:
        self._state: WeightsState | None = None

    @property
    def current(self) -> WeightsState:
        state = self._state
        if state is None:
            raise RuntimeError("no weights loaded")
        return state

    def install(self, state: WeightsState) -> None:
        """Puts ``state`` in force (one reference assignment: atomic for readers)."""
        self._state = state
