"""The weights history: every version applied, as the weights_history table keeps it,
read at start-up and appended to (on the writer thread) with each change; and which
version is put in force at start-up.

Start-up (before the writer starts): the weights file is the source of truth when its
content differs from the last version loaded from a file (it was edited, or this is a
first start): it is applied as a new version. Otherwise the latest version applied
(which may come from an RPC reload or a rollback) is restored as it was, with its
version number, so that changes made over RPC survive a restart.
"""

from __future__ import annotations

import threading
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from reviewrank.ranking.profiles import ProfileSet
from reviewrank.service.app.store import Store
from reviewrank.service.app.weights import (
    FILE_FIELD,
    ServerLimits,
    WeightsRegistry,
    WeightsState,
    content_hash,
    parse_toml,
    read_file,
)
from reviewrank.service.domain.errors import InvalidArgument, NotFound

log = structlog.get_logger("reviewrank.weights")


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


class WeightsHistory:
    """The versions applied, oldest first, in memory: read from the table at start-up,
    appended to on the writer thread, read from any thread."""

    def __init__(self, entries: list[HistoryEntry]) -> None:
        self._lock = threading.Lock()
        self._entries = entries

    def new_entry(
        self,
        text: str,
        source_kind: str,
        source: str,
        trigger: str,
        actor: str,
        reason: str,
        rollback_of: int | None,
    ) -> HistoryEntry:
        """The next version (not yet recorded nor appended)."""
        with self._lock:
            version = self._entries[-1].version + 1 if self._entries else 1
        return HistoryEntry(
            version=version,
            applied_at=datetime.now(UTC),
            source_kind=source_kind,
            source=source,
            trigger=trigger,
            actor=actor,
            reason=reason,
            rollback_of=rollback_of,
            content_sha256=content_hash(text),
            content=text,
        )

    def append(self, entry: HistoryEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def entry(self, version: int) -> HistoryEntry:
        with self._lock:
            for entry in reversed(self._entries):
                if entry.version == version:
                    return entry
            newest = self._entries[-1].version if self._entries else 0
        raise NotFound(f"no weights version {version} (versions 1 to {newest} exist)")

    def newest_first(self) -> list[HistoryEntry]:
        """Every version applied, newest first."""
        with self._lock:
            return list(reversed(self._entries))


def start_up(
    path: Path, limits: ServerLimits, registry: WeightsRegistry, store: Store
) -> tuple[WeightsHistory, str]:
    """Puts the start-up weights in force (see the module docstring); returns the history
    and the weights file's content hash. Runs before the writer thread starts. An invalid
    weights file stops the start (ValueError)."""
    try:
        text = read_file(path)
        profiles = parse_toml(text, FILE_FIELD, limits)
    except InvalidArgument as exc:
        raise ValueError(f"invalid weights file {path}: {exc}") from None
    entries = load_history(store)
    history = WeightsHistory(entries)
    file_hash = content_hash(text)
    restored = _restorable(entries, file_hash, limits)
    if restored is not None:
        entry, restored_profiles = restored
        state = entry.state(restored_profiles)
        registry.install(state)
        log.info(
            "weights restored",
            version=state.version,
            source=state.source,
            content_sha256=state.content_sha256,
        )
        return history, file_hash
    previous = entries[-1].version if entries else 0
    entry = history.new_entry(text, "file", str(path), "startup", "", "", None)
    save_entry(store, entry)
    history.append(entry)
    state = entry.state(profiles)
    registry.install(state)
    log.info(
        "weights applied",
        version=state.version,
        previous_version=previous,
        trigger="startup",
        source=state.source,
        content_sha256=state.content_sha256,
    )
    return history, file_hash


def _restorable(
    entries: list[HistoryEntry], file_hash: str, limits: ServerLimits
) -> tuple[HistoryEntry, ProfileSet] | None:
    """The latest version, if the file is unchanged since last loaded and it still
    validates; None when the file is to be loaded."""
    if not entries:
        return None
    last_file = next((e for e in reversed(entries) if e.source_kind == "file"), None)
    if last_file is None or last_file.content_sha256 != file_hash:
        return None
    latest = entries[-1]
    try:
        return latest, parse_toml(latest.content, "toml", limits)
    except InvalidArgument as exc:
        log.warning(
            "the latest weights no longer validate: loading the weights file instead",
            version=latest.version,
            problems=str(exc),
        )
        return None
