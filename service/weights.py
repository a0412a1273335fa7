"""The weights in force: profiles parsed from TOML, versioned, swapped atomically."""

from __future__ import annotations

import threading
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ranking.profiles import ProfileError, ProfileSet, parse_profiles
from service.errors import InvalidArgument


@dataclass(frozen=True)
class WeightsState:
    version: int
    profiles: ProfileSet
    source_toml: str
    source: str
    loaded_at: datetime


def parse_toml(text: str) -> ProfileSet:
    """Parses and validates a weights document; InvalidArgument names every bad key."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidArgument([("weights", f"malformed TOML: {exc}")]) from None
    try:
        return parse_profiles(document)
    except ProfileError as exc:
        raise InvalidArgument(exc.violations) from None


class WeightsRegistry:
    """Holds the current WeightsState; readers take one reference, so never see a mix."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: WeightsState | None = None

    @property
    def current(self) -> WeightsState:
        state = self._state
        if state is None:
            raise RuntimeError("no weights loaded")
        return state

    def load_text(self, text: str, source: str) -> WeightsState:
        profiles = parse_toml(text)
        with self._lock:
            version = 1 if self._state is None else self._state.version + 1
            state = WeightsState(version, profiles, text, source, datetime.now(UTC))
            self._state = state
        return state

    def load_file(self, path: Path) -> WeightsState:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidArgument([("weights", f"cannot read {path}: {exc.strerror}")]) from None
        return self.load_text(text, str(path))
