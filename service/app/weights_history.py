"""The weights history: every version applied, as the weights_history table keeps it,
read at start-up and appended to (on the writer thread) with each change."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime

from ranking.profiles import ProfileSet
from service.app.store import Store
from service.app.weights import WeightsState


@dataclass(frozen=True)
class HistoryEntry:
    """One applied version, as kept in the weights_history table."""

    version: int
    applied_at: datetime
    source_kind: str
    source: str
    trigger: str
    actor: str
    reason: str
    rollback_of: int | None
    content_sha256: str
    content: str

    def state(self, profiles: ProfileSet) -> WeightsState:
        return WeightsState(
            version=self.version,
            profiles=profiles,
            source_toml=self.content,
            source=self.source,
            loaded_at=self.applied_at,
            source_kind=self.source_kind,
            trigger=self.trigger,
            actor=self.actor,
            reason=self.reason,
            rollback_of=self.rollback_of,
            content_sha256=self.content_sha256,
        )

    def summary(self) -> tuple[str, tuple[str, ...]]:
        """The default profile and the profile names (best effort: no validation)."""
        try:
            document = tomllib.loads(self.content)
        except tomllib.TOMLDecodeError:
            return "", ()
        profiles = document.get("profiles")
        names = tuple(str(n) for n in profiles) if isinstance(profiles, dict) else ()
        return str(document.get("default_profile", "default")), names


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def load_history(store: Store) -> list[HistoryEntry]:
    """Every recorded version, oldest first."""
    return [
        HistoryEntry(
            version=row[0],
            applied_at=datetime.fromtimestamp(row[1] / 1_000_000, UTC),
            source_kind=row[2],
            source=row[3],
            trigger=row[4],
            actor=row[5],
            reason=row[6],
            rollback_of=row[7],
            content_sha256=row[8],
            content=row[9],
        )
        for row in store.load_weights_history()
    ]


def save_entry(store: Store, entry: HistoryEntry) -> None:
    """Records one version, committed before returning (on the writer thread)."""
    store.save_weights_entry(
        (
            entry.version,
            _micros(entry.applied_at),
            entry.source_kind,
            entry.source,
            entry.trigger,
            entry.actor,
            entry.reason,
            entry.rollback_of,
            entry.content_sha256,
            entry.content,
        )
    )
