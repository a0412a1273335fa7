"""Changing the weights at runtime: reload, rollback, history, preview, SIGHUP, file watch.

Every change is validated first, on the caller's thread: an invalid profile set is
refused with each bad key named and changes nothing. A valid one is applied on the
writer thread, between two transactions (Writer.run_exclusive), in this order:

1. the conditional check (``expected_version``), which is race-free there because
   every change runs on that one thread;
2. time-decayed sums for any half-life the catalogue does not keep yet, built from
   every vote in the database: no write can commit meanwhile, so none is missed;
3. the new version is recorded in the ``weights_history`` table (its own transaction);
4. the registry switches to the new state in one reference assignment.

Start-up (before the writer starts): the weights file is the source of truth when its
content differs from the last version loaded from a file (it was edited, or this is a
first start): it is applied as a new version. Otherwise the latest version applied
(which may come from an RPC reload or a rollback) is restored as it was, with its
version number, so that changes made over RPC survive a restart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import structlog

from ranking.profiles import Profile, ProfileSet
from service.app.catalogue import Catalogue, decayed_from_votes
from service.app.preview import Preview, Sample, compare
from service.app.ranker import Ranker
from service.app.settings import Settings
from service.app.store import Store
from service.app.weights import (
    ServerLimits,
    WeightsRegistry,
    WeightsState,
    content_hash,
    parse_toml,
)
from service.app.weights_history import HistoryEntry, load_history, save_entry
from service.domain.errors import (
    DeadlineExpired,
    InvalidArgument,
    NotFound,
    ReviewrankError,
    StorageUnavailable,
    StoreError,
    VersionConflict,
)

log = structlog.get_logger("reviewrank.weights")

T = TypeVar("T")
NOTE_MAX_LENGTH = 256  # actor and reason
BACKGROUND_TIMEOUT = 60.0  # seconds a SIGHUP or file-watch reload may wait for the writer
FILE_FIELD = "weights_file"  # how a problem with the file itself is named


def _check_note(value: str, field: str, violations: list[tuple[str, str]]) -> None:
    if len(value) > NOTE_MAX_LENGTH or not value.isprintable():
        violations.append((field, f"must be at most {NOTE_MAX_LENGTH} printable characters"))


def _profile_of(profiles: ProfileSet, name: str, which: str) -> Profile:
    profile = profiles.get(name)
    if profile is None:
        known = ", ".join(sorted(profiles.profiles))
        raise InvalidArgument([("profile", f"no profile {name!r} in {which} (known: {known})")])
    return profile


class WeightsAdmin:
    """Owns changes to the weights registry (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        registry: WeightsRegistry,
        store: Store,
        catalogue: Catalogue,
        ranker: Ranker,
    ) -> None:
        self._settings = settings
        self._path: Path = settings.weights
        self._registry = registry
        self._store = store
        self._catalogue = catalogue
        self._ranker = ranker
        self._limits = ServerLimits(settings.max_candidates, settings.max_top_limit)
        self._history_lock = threading.Lock()
        self._history: list[HistoryEntry] = []
        self._run_exclusive: Callable[[Callable[[], object], float | None], object] | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen_hash = ""
        self._reload_listeners: list[Callable[[str, str], None]] = []

    def add_reload_listener(self, listener: Callable[[str, str], None]) -> None:
        """Calls ``listener(trigger, outcome)`` after every reload or rollback asked for;
        outcome: applied, invalid, conflict, not_found or failed (service/ops/metrics.py)."""
        self._reload_listeners.append(listener)

    def _counted(self, trigger: str, change: Callable[[], T]) -> T:
        outcome = "failed"
        try:
            result = change()
            outcome = "applied"
            return result
        except InvalidArgument:
            outcome = "invalid"
            raise
        except VersionConflict:
            outcome = "conflict"
            raise
        except NotFound:
            outcome = "not_found"
            raise
        finally:
            for listener in self._reload_listeners:
                try:
                    listener(trigger, outcome)
                except Exception:
                    log.exception("weights reload listener failed")

    # -- start-up ----------------------------------------------------------------------------

    def start_up(self) -> WeightsState:
        """Puts the start-up weights in force (see the module docstring). Runs before the
        writer thread starts. An invalid weights file stops the start (ValueError)."""
        try:
            text = self._read_file()
            profiles = parse_toml(text, FILE_FIELD, self._limits)
        except InvalidArgument as exc:
            raise ValueError(f"invalid weights file {self._path}: {exc}") from None
        self._history = load_history(self._store)
        file_hash = content_hash(text)
        self._seen_hash = file_hash
        restored = self._restorable(file_hash)
        if restored is not None:
            entry, restored_profiles = restored
            state = entry.state(restored_profiles)
            self._registry.install(state)
            log.info(
                "weights restored",
                version=state.version,
                source=state.source,
                content_sha256=state.content_sha256,
            )
            return state
        previous = self._history[-1].version if self._history else 0
        entry = self._new_entry(text, "file", str(self._path), "startup", "", "", None)
        save_entry(self._store, entry)
        self._history.append(entry)
        state = entry.state(profiles)
        self._registry.install(state)
        log.info(
            "weights applied",
            version=state.version,
            previous_version=previous,
            trigger="startup",
            source=state.source,
            content_sha256=state.content_sha256,
        )
        return state

    def _restorable(self, file_hash: str) -> tuple[HistoryEntry, ProfileSet] | None:
        """The latest version, if the file is unchanged since last loaded and it still
        validates; None when the file is to be loaded."""
        if not self._history:
            return None
        last_file = next((e for e in reversed(self._history) if e.source_kind == "file"), None)
        if last_file is None or last_file.content_sha256 != file_hash:
            return None
        latest = self._history[-1]
        try:
            return latest, parse_toml(latest.content, "toml", self._limits)
        except InvalidArgument as exc:
            log.warning(
                "the latest weights no longer validate: loading the weights file instead",
                version=latest.version,
                problems=str(exc),
            )
            return None

    def attach(self, run_exclusive: Callable[[Callable[[], object], float | None], object]) -> None:
        """From now on, changes run through the writer thread."""
        self._run_exclusive = run_exclusive

    # -- changes -----------------------------------------------------------------------------

    def reload(
        self,
        toml: str = "",
        expected_version: int = 0,
        actor: str = "",
        reason: str = "",
        trigger: str = "rpc",
        timeout: float | None = None,
    ) -> tuple[WeightsState, int]:
        """Applies TOML sent inline, or (empty) the weights file; returns the new state and
        the version it replaced."""
        return self._counted(
            trigger,
            lambda: self._reload(toml, expected_version, actor, reason, trigger, timeout),
        )

    def _reload(
        self,
        toml: str,
        expected_version: int,
        actor: str,
        reason: str,
        trigger: str,
        timeout: float | None,
    ) -> tuple[WeightsState, int]:
        violations: list[tuple[str, str]] = []
        _check_note(actor, "actor", violations)
        _check_note(reason, "reason", violations)
        if violations:
            raise InvalidArgument(violations)
        if toml:
            text, kind, source, field = toml, "inline", "inline", "toml"
        else:
            text, kind, source, field = self._read_file(), "file", str(self._path), FILE_FIELD
        profiles = parse_toml(text, field, self._limits)

        def apply() -> tuple[WeightsState, int]:
            return self._apply(
                profiles, text, kind, source, trigger, actor, reason, None, expected_version
            )

        return self._exclusive(apply, timeout)

    def rollback(
        self,
        version: int,
        expected_version: int = 0,
        actor: str = "",
        reason: str = "",
        timeout: float | None = None,
    ) -> tuple[WeightsState, int]:
        """Re-applies an earlier version's content as a new version."""
        return self._counted(
            "rollback",
            lambda: self._rollback(version, expected_version, actor, reason, timeout),
        )

    def _rollback(
        self,
        version: int,
        expected_version: int,
        actor: str,
        reason: str,
        timeout: float | None,
    ) -> tuple[WeightsState, int]:
        violations: list[tuple[str, str]] = []
        if version == 0:
            violations.append(("version", "is required"))
        _check_note(actor, "actor", violations)
        _check_note(reason, "reason", violations)
        if violations:
            raise InvalidArgument(violations)
        entry = self.entry(version)
        profiles = parse_toml(entry.content, "version", self._limits)

        def apply() -> tuple[WeightsState, int]:
            return self._apply(
                profiles,
                entry.content,
                "rollback",
                "rollback",
                "rpc",
                actor,
                reason,
                version,
                expected_version,
            )

        return self._exclusive(apply, timeout)

    def _apply(
        self,
        profiles: ProfileSet,
        text: str,
        source_kind: str,
        source: str,
        trigger: str,
        actor: str,
        reason: str,
        rollback_of: int | None,
        expected_version: int,
    ) -> tuple[WeightsState, int]:
        """On the writer thread (or before it starts): check, prepare, record, switch."""
        current = self._registry.current
        if expected_version and expected_version != current.version:
            raise VersionConflict(
                f"version {current.version} is in force, not {expected_version}: "
                "someone changed the weights meanwhile; review them and retry"
            )
        needed = {
            p.half_life_seconds
            for p in profiles.profiles.values()
            if p.half_life_seconds is not None
        } - self._catalogue.half_lives
        if needed:
            self._catalogue.enable_decay(sorted(needed), self._store.load_votes())
        entry = self._new_entry(text, source_kind, source, trigger, actor, reason, rollback_of)
        save_entry(self._store, entry)
        with self._history_lock:
            self._history.append(entry)
        state = entry.state(profiles)
        self._registry.install(state)
        log.info(
            "weights applied",
            version=state.version,
            previous_version=current.version,
            trigger=trigger,
            source=source,
            rollback_of=rollback_of,
            actor=actor,
            reason=reason,
            content_sha256=state.content_sha256,
        )
        return state, current.version

    def _new_entry(
        self,
        text: str,
        source_kind: str,
        source: str,
        trigger: str,
        actor: str,
        reason: str,
        rollback_of: int | None,
    ) -> HistoryEntry:
        with self._history_lock:
            version = self._history[-1].version + 1 if self._history else 1
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

    def _exclusive(self, fn: Callable[[], T], timeout: float | None) -> T:
        run = self._run_exclusive
        try:
            result: Any = fn() if run is None else run(fn, timeout)
        except TimeoutError:
            raise DeadlineExpired(
                "deadline passed while the weights change waited for the writer; "
                "GetWeights tells whether it was applied"
            ) from None
        except StoreError as exc:
            raise StorageUnavailable(
                f"the weights could not be recorded, so they were not changed: {exc}"
            ) from None
        return result  # type: ignore[no-any-return]

    # -- reads -------------------------------------------------------------------------------

    def entry(self, version: int) -> HistoryEntry:
        with self._history_lock:
            for entry in reversed(self._history):
                if entry.version == version:
                    return entry
            newest = self._history[-1].version if self._history else 0
        raise NotFound(f"no weights version {version} (versions 1 to {newest} exist)")

    def history(self) -> list[HistoryEntry]:
        """Every version applied, newest first."""
        with self._history_lock:
            return list(reversed(self._history))

    def preview(
        self,
        toml: str,
        profile_name: str,
        samples: Sequence[Sample],
        categories: Sequence[str],
        top_k: int,
        timeout: float | None = None,
    ) -> Preview:
        """How each sample's top-k would change under a candidate profile set (TOML sent
        inline, or the weights file as it is now). Nothing is applied or kept."""
        text, field = (toml, "toml") if toml else (self._read_file(), FILE_FIELD)
        candidate_set = parse_toml(text, field, self._limits)
        current = self._registry.current
        current_profile = _profile_of(current.profiles, profile_name, "the weights in force")
        candidate = _profile_of(candidate_set, profile_name, "the candidate weights")
        extra = None
        half_life = candidate.half_life_seconds
        if half_life is not None and half_life not in self._catalogue.half_lives:
            # Read every vote between two transactions; the sums are built here, and dropped.
            votes = self._exclusive(self._store.load_votes, timeout)
            extra = decayed_from_votes(half_life, votes, 1)
        changes = []
        for i, sample in enumerate(samples):
            before = self._ranker.order_candidates(
                current_profile, sample.product_ids, sample.relevance
            )
            after = self._ranker.order_candidates(
                candidate, sample.product_ids, sample.relevance, extra
            )
            changes.append(compare(f"samples[{i}]", before, after, top_k))
        for category in categories:
            before = self._ranker.order_catalogue(current_profile, category)
            after = self._ranker.order_catalogue(candidate, category, extra)
            label = f"category {category}" if category else "catalogue"
            changes.append(compare(label, before, after, top_k))
        return Preview(current.version, current_profile.name, candidate.name, changes)

    # -- the weights file, SIGHUP and the file watch ------------------------------------------

    def _read_file(self) -> str:
        try:
            return self._path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problem = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise InvalidArgument([(FILE_FIELD, f"cannot read {self._path}: {problem}")]) from None

    def start_background(self) -> None:
        """Starts the thread that serves request_reload() and, when the
        weights_watch_seconds setting is > 0, polls the weights file for changes."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._background, name="reviewrank-weights", daemon=True
        )
        self._thread.start()

    def request_reload(self) -> None:
        """Asks the background thread to reload the weights file (safe in a signal handler)."""
        self._wake.set()

    def _background(self) -> None:
        interval = self._settings.weights_watch_seconds or None
        while True:
            woken = self._wake.wait(interval)
            if self._stop.is_set():
                return
            if woken:
                self._wake.clear()
                self._reload_in_background("sighup")
            elif self._file_changed():
                self._reload_in_background("file-watch")

    def _file_changed(self) -> bool:
        """True when the file's content changed since last seen and is not in force.

        The content is hashed at every poll (weights files are small): a modification time
        can miss a rewrite of the same size within one clock tick."""
        try:
            text = self._path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return False
        digest = content_hash(text)
        if digest == self._seen_hash:
            return False
        self._seen_hash = digest
        return digest != self._registry.current.content_sha256

    def _reload_in_background(self, trigger: str) -> None:
        before = self._registry.current.version
        try:
            self.reload(trigger=trigger, timeout=BACKGROUND_TIMEOUT)
        except InvalidArgument as exc:
            log.error(
                "weights reload refused: the weights in force stay",
                trigger=trigger,
                version=before,
                problems=[f"{key}: {problem}" for key, problem in exc.violations],
            )
        except ReviewrankError as exc:
            log.error("weights reload failed", trigger=trigger, version=before, error=str(exc))
        except Exception:  # the thread must survive anything
            log.exception("weights reload failed", trigger=trigger, version=before)

    def close(self) -> None:
        """Stops the background thread (before the writer closes)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(BACKGROUND_TIMEOUT)
